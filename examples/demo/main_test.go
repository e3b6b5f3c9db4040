package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemoTellsTheStory runs the demo and checks the story it prints: the safe version is held at 1.1.0 until
// the last host has 1.2.0, the canary in latest mode has events rejected during the rollout, and in safe mode
// none.
func TestDemoTellsTheStory(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	var rows []string
	for _, line := range strings.Split(text, "\n") {
		if regexp.MustCompile(`^\s*\d+\.\ds  `).MatchString(line) {
			rows = append(rows, line)
		}
	}
	if len(rows) != 8 {
		t.Fatalf("want 8 rollout rows, got %d:\n%s", len(rows), text)
	}
	// Per step: the safe version, dirty, stale. While schema2002 is down the other three agree (not dirty),
	// but the schema is stale and the safe version is held.
	want := [][3]string{
		{"1.1.0", "no", "no"},
		{"1.1.0", "YES", "no"},
		{"1.1.0", "YES", "no"},
		{"1.1.0", "YES", "no"},
		{"1.1.0", "YES", "YES"},
		{"1.1.0", "no", "YES"},
		{"1.1.0", "YES", "no"},
		{"1.2.0", "no", "no"},
	}
	for i, row := range rows {
		f := strings.Fields(row)
		got := [3]string{f[len(f)-3], f[len(f)-2], f[len(f)-1]}
		if got != want[i] {
			t.Errorf("step %d: safe, dirty, stale = %v, want %v:\n%s", i, got, want[i], row)
		}
	}
	m := regexp.MustCompile(`latest mode (\d+) of (\d+) events rejected; safe mode (\d+) of (\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no canary totals:\n%s", text)
	}
	latestRejected, _ := strconv.Atoi(m[1])
	safeRejected, _ := strconv.Atoi(m[3])
	if latestRejected == 0 || safeRejected != 0 {
		t.Fatalf("latest mode %s rejected, safe mode %s: want some and none\n%s", m[1], m[3], text)
	}
	if !strings.Contains(text, "HTTP 500: error: Failed loading schema at /mediawiki/page/change/1.2.0") {
		t.Fatalf("the rejection does not quote the intake's error:\n%s", text)
	}
}
