package canary

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func results(ok bool, at time.Time) []Result {
	return []Result{
		{Stream: "a.stream", Version: "1.1.0", OK: ok, Started: at, Duration: 250 * time.Millisecond},
		{Stream: "b.stream", Version: "2.0.0", OK: true, Started: at, Duration: time.Second},
	}
}

func TestWriteTextfileReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "canary.prom")
	t1 := time.Unix(1_800_000_000, 0)
	if warn, err := WriteTextfile(path, results(true, t1)); err != nil || warn != nil {
		t.Fatal(warn, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`canary_stream_success{stream="a.stream"} 1`,
		`canary_stream_last_success_timestamp_seconds{stream="a.stream"} 1.80000000025e+09`,
		`canary_stream_last_run_timestamp_seconds{stream="b.stream"} 1.8e+09`,
		`canary_stream_duration_seconds{stream="a.stream"} 0.25`,
		`canary_stream_version_info{stream="b.stream",version="2.0.0"} 1`,
		`# TYPE canary_stream_success gauge`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("textfile lacks %q:\n%s", want, data)
		}
	}
	// A later failed run keeps a.stream's last success and moves b.stream's on.
	t2 := t1.Add(time.Hour)
	if _, err := WriteTextfile(path, results(false, t2)); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	last, err := ParseLastSuccess(f)
	if err != nil {
		t.Fatal(err)
	}
	if last["a.stream"] != 1_800_000_000.25 || last["b.stream"] != 1_800_003_601 {
		t.Fatalf("last success %v", last)
	}
	data, _ = os.ReadFile(path)
	if !strings.Contains(string(data), `canary_stream_success{stream="a.stream"} 0`) {
		t.Fatalf("textfile:\n%s", data)
	}
}

// failHalfway passes the first n bytes, then fails: a disk that fills up, or a crash mid-write.
type failHalfway struct {
	w io.Writer
	n int
}

func (f *failHalfway) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		f.n = 0
		return k, errors.New("no space left on device")
	}
	f.n -= len(p)
	return f.w.Write(p)
}

var wrapMu sync.Mutex // wrapWriter is a package variable: tests that replace it do not run in parallel

func TestWriteTextfileFailureLeavesOldFile(t *testing.T) {
	wrapMu.Lock()
	defer wrapMu.Unlock()
	dir := t.TempDir()
	path := filepath.Join(dir, "canary.prom")
	if _, err := WriteTextfile(path, results(true, time.Unix(1_800_000_000, 0))); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	wrapWriter = func(w io.Writer) io.Writer { return &failHalfway{w: w, n: len(before) / 2} }
	defer func() { wrapWriter = func(w io.Writer) io.Writer { return w } }()
	_, err := WriteTextfile(path, results(false, time.Unix(1_900_000_000, 0)))
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("err = %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatalf("the old file changed:\n%s", after)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only canary.prom", names)
	}
}

func TestWriteTextfileIgnoresCorruptPrevious(t *testing.T) {
	path := filepath.Join(t.TempDir(), "canary.prom")
	const corrupt = "canary_stream_success{stream=\"a\" 1\n"
	writeFile(t, path, corrupt)
	warn, err := WriteTextfile(path, results(true, time.Unix(1_800_000_000, 0)))
	if err != nil || warn == nil || !strings.Contains(warn.Error(), "ignoring previous last-success times, previous file kept as "+path+".corrupt") {
		t.Fatalf("warn %v err %v", warn, err)
	}
	if kept, err := os.ReadFile(path + ".corrupt"); err != nil || string(kept) != corrupt {
		t.Fatalf("the corrupt file was not kept aside: %q, %v", kept, err)
	}
	if data, _ := os.ReadFile(path); !strings.Contains(string(data), `canary_stream_success{stream="a.stream"} 1`) {
		t.Fatalf("new textfile:\n%s", data)
	}
	// The next write reads the new file: no warning.
	if warn, err := WriteTextfile(path, results(false, time.Unix(1_800_000_300, 0))); warn != nil || err != nil {
		t.Fatalf("warn %v err %v", warn, err)
	}
}

func TestParseLastSuccess(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     map[string]float64
		err      bool
	}{
		{"empty", "", map[string]float64{}, false},
		{"gauge", "# TYPE canary_stream_last_success_timestamp_seconds gauge\ncanary_stream_last_success_timestamp_seconds{stream=\"a\"} 1.5e9\n", map[string]float64{"a": 1.5e9}, false},
		{"untyped", "canary_stream_last_success_timestamp_seconds{stream=\"a\"} 17\n", map[string]float64{"a": 17}, false},
		{"nan and zero skipped", "canary_stream_last_success_timestamp_seconds{stream=\"a\"} NaN\ncanary_stream_last_success_timestamp_seconds{stream=\"b\"} 0\n", map[string]float64{}, false},
		{"other metrics ignored", "canary_stream_success{stream=\"a\"} 1\n", map[string]float64{}, false},
		{"broken", "canary_stream_last_success_timestamp_seconds{stream=\"a\" 1\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLastSuccess(strings.NewReader(tc.in))
			if tc.err {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func FuzzParseLastSuccess(f *testing.F) {
	f.Add([]byte("canary_stream_last_success_timestamp_seconds{stream=\"a\"} 1.5e9\n"))
	f.Add([]byte("# HELP x y\n# TYPE x counter\nx 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseLastSuccess(bytes.NewReader(data))
		if err != nil {
			return
		}
		for s, v := range got {
			if !(v > 0) {
				t.Fatalf("stream %q has last success %v", s, v)
			}
		}
	})
}

func TestPushOneGroupPerStream(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got[r.Method+" "+r.URL.Path] = string(b)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	if err := Push(context.Background(), results(false, time.Unix(1_800_000_000, 0)), PushOptions{URL: srv.URL, Job: "canary"}); err != nil {
		t.Fatal(err)
	}
	a, okA := got["POST /metrics/job/canary/stream/a.stream"]
	b, okB := got["POST /metrics/job/canary/stream/b.stream"]
	if !okA || !okB || len(got) != 2 {
		t.Fatalf("pushes %v", got)
	}
	// The failed stream's push leaves its last success alone; the good one's carries it.
	if strings.Contains(a, "canary_stream_last_success_timestamp_seconds") || !strings.Contains(b, "canary_stream_last_success_timestamp_seconds") {
		t.Fatalf("a: %q\nb: %q", a, b)
	}
	srv.Close()
	if err := Push(context.Background(), results(true, time.Now()), PushOptions{URL: srv.URL, Job: "canary"}); err == nil || !strings.Contains(err.Error(), "pushing stream a.stream") {
		t.Fatalf("err = %v", err)
	}
}

// TestPushTimeoutIsPerPush: 200 streams against a Pushgateway that takes 100 ms per push all succeed with a
// 1 s timeout, because each push has its own (one deadline for all would expire after 10 rounds of the 25),
// and pushes overlap up to Concurrency. Each push has 900 ms to spare, so a loaded machine does not make one
// miss it. A push slower than its timeout fails alone, with its stream named.
func TestPushTimeoutIsPerPush(t *testing.T) {
	var inFlight, peak, pushes atomic.Int64
	delay := atomic.Int64{}
	delay.Store(int64(100 * time.Millisecond))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-time.After(time.Duration(delay.Load())):
		case <-r.Context().Done():
			return
		}
		pushes.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	var many []Result
	for i := range 200 {
		many = append(many, Result{Stream: fmt.Sprintf("s%03d", i), OK: i%2 == 0, Version: "1.0.0", Started: time.Unix(1_800_000_000, 0)})
	}
	opts := PushOptions{URL: srv.URL, Job: "canary", Timeout: time.Second, Concurrency: 8}
	if err := Push(context.Background(), many, opts); err != nil {
		t.Fatal(err)
	}
	if pushes.Load() != 200 || peak.Load() > 8 || peak.Load() < 2 {
		t.Fatalf("%d pushes, peak %d in flight; want 200, at most 8, concurrently", pushes.Load(), peak.Load())
	}

	delay.Store(int64(time.Second))
	opts.Timeout = 50 * time.Millisecond
	err := Push(context.Background(), many[:3], opts)
	if err == nil || strings.Count(err.Error(), "context deadline exceeded") != 3 || !strings.Contains(err.Error(), "pushing stream s002") {
		t.Fatalf("err = %v, want three deadline errors", err)
	}
}
