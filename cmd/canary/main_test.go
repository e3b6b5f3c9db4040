package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/eventgate/fakeintake"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// world starts a schema host, a schemasync stand-in that answers every title with safe version 1.0.0 of
// test/event, and an intake. It returns a config body for the given stream list.
func world(t *testing.T) (configFor func(extra string) string, g *fakeintake.Intake) {
	t.Helper()
	repo := schemarepo.Demo()
	host := httptest.NewServer(schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": repo}))
	t.Cleanup(host.Close)
	base := host.URL + "/repositories/primary/jsonschema"
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		title, _ := strings.CutPrefix(r.URL.Path, "/v1/repositories/primary/schemas/")
		vs := repo.Versions(title)
		if len(vs) == 0 {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"error":"unknown"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"repository": "primary", "title": title, "safe_version": vs[len(vs)-1], "latest_version": vs[len(vs)-1]})
	}))
	t.Cleanup(node.Close)
	g, err := fakeintake.New(fakeintake.Config{SchemaBaseURIs: []string{base}, Streams: map[string]string{"test.event": "test/event", "page": "mediawiki/page/change"}}, fakeintake.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := httptest.NewServer(g)
	t.Cleanup(in.Close)
	return func(extra string) string {
		return "schemasync: [" + node.URL + "]\nschema_base_uris: [" + base + "]\nretry_backoff: 1ms\n" +
			strings.ReplaceAll(extra, "INTAKE", in.URL+"/v1/events")
	}, g
}

// withoutSchemasync drops the schemasync line that world's configs start with.
func withoutSchemasync(config string) string {
	_, rest, _ := strings.Cut(config, "\n")
	return rest
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "canary.yml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	configFor, g := world(t)
	good := "streams:\n  - {name: test.event, schema_title: test/event, destinations: [INTAKE]}\n  - {name: page, schema_title: mediawiki/page/change, destinations: [INTAKE]}\n"
	bad := "streams:\n  - {name: test.event, schema_title: test/event, destinations: [INTAKE]}\n  - {name: ghost, schema_title: no/such/title, destinations: [INTAKE]}\n"
	textfile := filepath.Join(t.TempDir(), "canary.prom")

	tests := []struct {
		name      string
		args      func() []string
		wantCode  int
		stdout    []string
		notStdout []string
		stderr    []string
		posted    int
	}{
		{name: "help", args: func() []string { return []string{"run", "--help"} }, wantCode: 0, stdout: []string{"Usage: canary run", "Examples:"}},
		{name: "no config", args: func() []string { return []string{"run"} }, wantCode: 2, stderr: []string{"--config is required"}},
		{name: "stray argument", args: func() []string { return []string{"run", "--config", "x", "extra"} }, wantCode: 2},
		{name: "missing file", args: func() []string { return []string{"run", "--config", "/nonexistent/canary.yml"} }, wantCode: 2, stderr: []string{"no such file"}},
		{name: "unknown key", args: func() []string { return []string{"run", "--config", writeConfig(t, configFor(good)+"colour: blue\n")} }, wantCode: 2, stderr: []string{"field colour not found"}},
		{name: "bad version source", args: func() []string {
			return []string{"run", "--config", writeConfig(t, configFor(good)), "--version-source", "newest"}
		}, wantCode: 2, stderr: []string{`"newest" is neither safe nor latest`}},
		{name: "all ok, table", args: func() []string { return []string{"run", "--config", writeConfig(t, configFor(good))} }, wantCode: 0, stdout: []string{"STREAM", "test.event", "1.0.0", "2 streams, 2 ok, 0 failed"}, posted: 2},
		{name: "one failed, json", args: func() []string { return []string{"run", "--json", "--config", writeConfig(t, configFor(bad))} }, wantCode: 1, stdout: []string{`"stream": "ghost"`, `"failed_step": "resolve-version"`, `"ok": true`}, posted: 1},
		{name: "dry run", args: func() []string { return []string{"run", "--dry-run", "--config", writeConfig(t, configFor(good))} }, wantCode: 0, stdout: []string{"ok (dry run)"}},
		{name: "textfile", args: func() []string {
			return []string{"run", "--textfile", textfile, "--config", writeConfig(t, configFor(bad))}
		}, wantCode: 1, stdout: []string{"FAILED"}, posted: 1},
		{name: "latest mode", args: func() []string {
			return []string{"run", "--version-source", "latest", "--config", writeConfig(t, configFor(good))}
		}, wantCode: 0, stdout: []string{"latest"}, posted: 2},
		{name: "latest mode, no schemasync nodes", args: func() []string {
			return []string{"run", "--version-source", "latest", "--config", writeConfig(t, withoutSchemasync(configFor(good)))}
		}, wantCode: 0, stdout: []string{"latest", "2 streams, 2 ok, 0 failed"}, posted: 2},
		{name: "safe mode, no schemasync nodes", args: func() []string {
			return []string{"run", "--config", writeConfig(t, withoutSchemasync(configFor(good)))}
		}, wantCode: 2, stderr: []string{"schemasync: at least one node URL is required with version_source safe"}},
		{name: "check-config", args: func() []string { return []string{"check-config", "--config", writeConfig(t, configFor(good))} }, wantCode: 0, stdout: []string{"ok, version source safe, 2 streams", "test.event (test/event) -> http://"}},
		{name: "check-config json", args: func() []string {
			return []string{"check-config", "--json", "--config", writeConfig(t, configFor(good))}
		}, wantCode: 0, stdout: []string{`"version_source": "safe"`, `"schema_title": "mediawiki/page/change"`, `"ok": true`, `"problems": 0`}},
		{name: "check-config bad", args: func() []string { return []string{"check-config", "--config", writeConfig(t, "schemasync: []\n")} }, wantCode: 2, stderr: []string{"schema_base_uris: at least one URL is required"}},
		{name: "stream config unreadable", args: func() []string {
			return []string{"run", "--config", writeConfig(t, configFor("stream_config: /nonexistent/streams.json\ndestinations: {eventgate-main: [INTAKE]}\n"))}
		}, wantCode: 1, stderr: []string{"stream config /nonexistent/streams.json"}},
		{name: "stream config invalid", args: func() []string {
			p := writeConfig(t, `{"streams": []}`)
			return []string{"run", "--config", writeConfig(t, configFor("stream_config: "+p+"\ndestinations: {eventgate-main: [INTAKE]}\n"))}
		}, wantCode: 2, stderr: []string{"not EventStreamConfig JSON"}},
		{name: "check-config stream problem", args: func() []string {
			p := writeConfig(t, `{"streams": {"x": {"schema_title": "test/event", "destination_event_service": "nowhere", "canary_events_enabled": true},
				"test.event": {"schema_title": "test/event", "destination_event_service": "eventgate-main", "canary_events_enabled": true}}}`)
			return []string{"check-config", "--config", writeConfig(t, configFor("stream_config: "+p+"\ndestinations: {eventgate-main: [INTAKE]}\n"))}
		}, wantCode: 1, stdout: []string{`: valid, but 1 of 2 streams cannot run`, `x (test/event): PROBLEM: destination_event_service "nowhere"`, `test.event (test/event) -> http://`}, notStdout: []string{": ok,"}},
		{name: "check-config stream problem, json", args: func() []string {
			p := writeConfig(t, `{"streams": {"x": {"schema_title": "test/event", "destination_event_service": "nowhere", "canary_events_enabled": true}}}`)
			return []string{"check-config", "--json", "--config", writeConfig(t, configFor("stream_config: "+p+"\ndestinations: {eventgate-main: [INTAKE]}\n"))}
		}, wantCode: 1, stdout: []string{`"ok": false`, `"problems": 1`, `"problem": "destination_event_service \"nowhere\"`}},
		{name: "check-config stream config unreadable", args: func() []string {
			return []string{"check-config", "--config", writeConfig(t, configFor("stream_config: /nonexistent/streams.json\ndestinations: {eventgate-main: [INTAKE]}\n"))}
		}, wantCode: 1, stderr: []string{"stream config /nonexistent/streams.json"}},
		{name: "check-config stream config invalid", args: func() []string {
			p := writeConfig(t, `{"streams": []}`)
			return []string{"check-config", "--config", writeConfig(t, configFor("stream_config: "+p+"\ndestinations: {eventgate-main: [INTAKE]}\n"))}
		}, wantCode: 2, stderr: []string{"not EventStreamConfig JSON"}},
		{name: "unknown command", args: func() []string { return []string{"fly"} }, wantCode: 2, stderr: []string{`unknown command "fly"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.Reset()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args(), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout.String(), stderr.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.notStdout {
				if strings.Contains(stdout.String(), s) {
					t.Errorf("stdout has %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			if n := g.Stats().Accepted; n != tt.posted {
				t.Errorf("intake accepted %d events, want %d", n, tt.posted)
			}
		})
	}
	data, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`canary_stream_success{stream="ghost"} 0`, `canary_stream_success{stream="test.event"} 1`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("textfile lacks %q:\n%s", want, data)
		}
	}
}

func TestRunJSONIsAList(t *testing.T) {
	configFor, _ := world(t)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", "--json", "--config", writeConfig(t, configFor("streams:\n  - {name: test.event, schema_title: test/event, destinations: [INTAKE]}\n"))}, &stdout, &stderr)
	var out []map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || code != 0 || len(out) != 1 || out[0]["ok"] != true || out[0]["version"] != "1.0.0" {
		t.Fatalf("code %d err %v out %s stderr %s", code, err, stdout.String(), stderr.String())
	}
}

// TestHelpOnce: every subcommand's --help prints its usage once, on stdout, and nothing on stderr.
func TestHelpOnce(t *testing.T) {
	for _, args := range [][]string{{"run", "--help"}, {"run", "-h"}, {"check-config", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), args, &stdout, &stderr)
			if code != 0 || strings.Count(stdout.String(), "Usage: canary "+args[0]) != 1 || stderr.Len() != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
		})
	}
}

// TestPushgatewaySlowPushes: each stream's push has its own timeout (the config's), so 20 streams pushed two at
// a time to a Pushgateway that takes 150 ms per push (1.5 s in all) all get through a 1 s timeout. Each push
// has 850 ms to spare, so a loaded machine does not make one miss it.
func TestPushgatewaySlowPushes(t *testing.T) {
	configFor, _ := world(t)
	var pushes atomic.Int64
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(150 * time.Millisecond):
			pushes.Add(1)
		case <-r.Context().Done():
		}
	}))
	defer gw.Close()
	streams := "timeout: 1s\nconcurrency: 2\nstreams:\n"
	for i := range 20 {
		streams += fmt.Sprintf("  - {name: ghost%02d, schema_title: no/such/title, destinations: [INTAKE]}\n", i)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", "--pushgateway", gw.URL, "--config", writeConfig(t, configFor(streams))}, &stdout, &stderr)
	if code != 1 || strings.Contains(stderr.String(), "pushing metrics") || pushes.Load() != 20 {
		t.Fatalf("exit %d (want 1: the streams fail), %d pushes (want 20)\nstderr:\n%s", code, pushes.Load(), stderr.String())
	}
}

// TestCorruptTextfileWarns: a previous textfile that does not parse is reported at the default log level, and
// kept aside as <textfile>.corrupt.
func TestCorruptTextfileWarns(t *testing.T) {
	configFor, _ := world(t)
	textfile := filepath.Join(t.TempDir(), "canary.prom")
	if err := os.WriteFile(textfile, []byte("canary_stream_success{stream=\"x\" 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"run", "--textfile", textfile, "--config", writeConfig(t, configFor("streams:\n  - {name: test.event, schema_title: test/event, destinations: [INTAKE]}\n"))}, &stdout, &stderr)
	if code != 0 || !strings.Contains(stderr.String(), "level=WARN") || !strings.Contains(stderr.String(), "previous file kept as "+textfile+".corrupt") {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	if _, err := os.Stat(textfile + ".corrupt"); err != nil {
		t.Fatal(err)
	}
}
