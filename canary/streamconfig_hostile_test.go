package canary

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// TestStreamConfigErrorsAreSafe: a stream config URL that serves a document quoting escape sequences
// (which the YAML decoder repeats in its error) gives an error that is escaped and bounded, and never shows
// the URL's credentials. On main the decoder's quote of the document reached the error raw.
func TestStreamConfigErrorsAreSafe(t *testing.T) {
	for _, body := range []string{
		"streams: \"\\e]0;owned\\a\\e[2J" + strings.Repeat("x", 100000) + "\"\n",
		"streams:\n  \"\\e[2J\": 1\n",
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) }))
		t.Cleanup(srv.Close)
		cfg := testConfig("http://127.0.0.1:1", []string{"http://127.0.0.1:1/"}, nil)
		cfg.StreamConfig = strings.Replace(srv.URL, "http://", "http://u:hunter2@", 1) + "/streams.yaml"
		_, err := Run(context.Background(), cfg, Options{})
		var sce *StreamConfigError
		if !errors.As(err, &sce) || !sce.Invalid {
			t.Fatalf("err = %v, want an invalid stream config", err)
		}
		if msg := err.Error(); strings.ContainsAny(msg, "\x1b\x07") || strings.Contains(msg, "hunter2") || len(msg) > MaxErrorBytes {
			t.Fatalf("error not escaped, redacted or bounded (%d bytes): %.300q", len(msg), msg)
		}
	}
}

// TestStreamConfigStreamsBounded: a stream config that enables more than MaxStreams streams is refused as
// invalid, rather than fanning a run out to each. On main, every one of them became a stream to run.
func TestStreamConfigStreamsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"streams":{`)
	for i := 0; i <= MaxStreams; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"s%d":{"schema_title":"test/event","destination_event_service":"eg","canary_events_enabled":true}`, i)
	}
	b.WriteString("}}")
	_, err := ParseStreamConfig([]byte(b.String()), map[string][]string{"eg": {"http://eg/v1/events"}})
	if err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("err = %v", err)
	}
}

// TestYAMLStreamConfigBounded: a YAML stream config of many small values (16 MiB of list items, which YAML
// parses into a node each, read or not) is refused before decoding, allocating little. On main it allocated
// 400 MB and was accepted.
func TestYAMLStreamConfigBounded(t *testing.T) {
	doc := "streams:\n  s:\n    junk:\n" + strings.Repeat("      - 0\n", (16<<20)/10)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	_, err := ParseStreamConfig([]byte(doc), nil)
	runtime.ReadMemStats(&m1)
	if err == nil || !strings.Contains(err.Error(), "too complex") {
		t.Fatalf("err = %v", err)
	}
	if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 64<<20 {
		t.Fatalf("refusing it allocated %d MiB", alloc>>20)
	}
}

// TestStreamConfigFileBounded: a stream config file is read up to MaxSchemaBytes, so that /dev/zero or a
// runaway file is "too large", not the end of the canary's memory. On main the whole file was read.
func TestStreamConfigFileBounded(t *testing.T) {
	cfg := testConfig("http://127.0.0.1:1", []string{"http://127.0.0.1:1/"}, nil)
	cfg.StreamConfig = "/dev/zero"
	_, err := Run(context.Background(), cfg, Options{})
	var sce *StreamConfigError
	if !errors.As(err, &sce) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want a stream config that is too large", err)
	}
}
