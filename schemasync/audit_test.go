package schemasync

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestValidateReadsNoFile: Validate checks the configuration as written and reads nothing; the keyring and
// the credentials files are read by LoadFiles, the separate step, which names each file it could not read.
func TestValidateReadsNoFile(t *testing.T) {
	dir := t.TempDir()
	keyring, creds := filepath.Join(dir, "no-keyring.yml"), filepath.Join(dir, "no-creds")
	cfg := DefaultConfig()
	cfg.Cluster.Bind, cfg.Cluster.KeyringFile = "127.0.0.1:0", keyring
	cfg.Repositories = []RepositoryConfig{{Name: "primary", Endpoints: []string{"http://h1/j/"},
		CredentialsFiles: map[string]string{"http://h1/j/": creds}}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate with files that do not exist: %v (it must not read them)", err)
	}
	_, err := cfg.LoadFiles()
	if err == nil || !strings.Contains(err.Error(), "no-keyring.yml") || !strings.Contains(err.Error(), "no-creds") {
		t.Fatalf("LoadFiles: %v, want both missing files named", err)
	}
}

// TestEndpointPortSpellings: a port is a number from 1 to 65535, compared as a number: ":080" is the default
// port spelled another way, so it names the same endpoint as no port, and a port out of range is no endpoint.
func TestEndpointPortSpellings(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{"http://h1:080/j/", "http://h1/j/", ""},
		{"https://h1:0443/j", "https://h1/j/", ""},
		{"http://h1:08190/j/", "http://h1:8190/j/", ""},
		{"http://h1:99999/j/", "", "port"},
		{"http://h1:0/j/", "", "port"},
	} {
		got, _, err := NormalizeEndpoint(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("NormalizeEndpoint(%q) = %q, %v; want an error about the %s", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeEndpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	cfg := DefaultConfig()
	cfg.Repositories = []RepositoryConfig{{Name: "primary", Endpoints: []string{"http://h1/j/", "http://h1:080/j/"}}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "already listed") {
		t.Fatalf("http://h1/j/ and http://h1:080/j/ both accepted: %v", err)
	}
}

// TestSchemaAnswerBoundedUnderObserverFlood: a peer that holds the gossip key fills every endpoint's observer
// slots with failed observations carrying the longest errors. A schema answer does not grow with them: it
// lists at most MaxSchemaObservers observers per endpoint, without their errors (the endpoint's reason says
// why it is unknown, and /v1/state's endpoints list every observer with its error), the fresh successful ones
// first, and counts the rest. Before, each answer repeated 8 × 256 errors (1.2 MB a schema, 5.7 GB of
// /v1/state at 5,000 schemas).
func TestSchemaAnswerBoundedUnderObserverFlood(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var eps []string
	for i := 0; i < 8; i++ {
		eps = append(eps, fmt.Sprintf("http://h%d/j/", i))
	}
	st := NewState([]Repository{{Name: "primary", Endpoints: eps}}, time.Minute)
	schemas := map[string][]Version{}
	for i := 0; i < 50; i++ {
		schemas[fmt.Sprintf("t/%d", i)] = []Version{MustParseVersion("1.0.0")}
	}
	h := ContentHash(schemas)
	for _, e := range eps {
		for o := 0; o < MaxObserversPerEndpoint-1; o++ { // names that sort before the honest node's
			st.Observe(Observation{Repository: "primary", Endpoint: e, Observer: fmt.Sprintf("a-liar-%03d", o), Seq: 1,
				At: now, Err: strings.Repeat("e", MaxReasonBytes)}, now)
		}
		st.Observe(Observation{Repository: "primary", Endpoint: e, Observer: "honest", Seq: 1, At: now,
			Schemas: schemas, Hash: h}, now)
	}
	v := st.View(now)
	sv, ok := v.Schema("primary", "t/1")
	if !ok || sv.SafeVersion == nil || sv.SafeVersion.String() != "1.0.0" {
		t.Fatalf("schema t/1: %+v", sv)
	}
	b, _ := json.Marshal(sv)
	const bound = 32 << 10
	if len(b) > bound {
		t.Fatalf("one schema answer is %d KB with %d observers per endpoint, above %d KB", len(b)>>10,
			MaxObserversPerEndpoint, bound>>10)
	}
	for _, se := range sv.Endpoints {
		if len(se.Observers) != MaxSchemaObservers || se.ObserversOmitted != MaxObserversPerEndpoint-MaxSchemaObservers {
			t.Fatalf("endpoint %s: %d observers listed, %d omitted", se.URL, len(se.Observers), se.ObserversOmitted)
		}
		honest := false
		for _, o := range se.Observers {
			honest = honest || o.Node == "honest"
			if o.Error != "" {
				t.Fatalf("a schema answer repeats an observer's error: %.80q", o.Error)
			}
		}
		if !honest {
			t.Fatalf("endpoint %s: the fresh successful observer is not listed among %+v", se.URL, se.Observers)
		}
	}
	if n := len(v.Endpoints[0].Observers); n != MaxObserversPerEndpoint || v.Endpoints[0].Observers[0].Error == "" {
		t.Fatalf("the endpoint view lists %d observers (want every one, with its error)", n)
	}
	t.Logf("one schema answer: %d bytes", len(b))
}

// TestServiceMemoryFlatUnderHostileHost: a service with one good endpoint and one misbehaving host (every
// listing names 200 directories it never named before, and one of them always fails) scans 100 times. The
// heap after the 100th scan is at most 4 MiB above the heap after the 10th, the cache holds what one listing
// names, and the failed endpoint's reason stays bounded. Without the pruning of the cache after a failed scan
// the heap grew by 21 MiB over those 90 scans (measured; RSS grew without bound in production).
func TestServiceMemoryFlatUnderHostileHost(t *testing.T) {
	good := serve(t, schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": schemarepo.Demo()})) +
		"repositories/primary/jsonschema/"
	bad := serve(t, &churnHost{})
	cfg := svcConfig(good, bad)
	cfg.Scan.FullRescanEvery = 1000
	s := newTestService(t, cfg, ServiceOptions{})
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	var after10 uint64
	for i := 1; i <= 100; i++ {
		scanNow(t, s)
		if i == 10 {
			after10 = heap()
		}
	}
	after100 := heap()
	const bound = 4 << 20
	if after100 > after10+bound {
		t.Fatalf("heap %d MiB after 10 scans, %d MiB after 100: grew more than %d MiB", after10>>20, after100>>20, bound>>20)
	}
	if n := s.scanner.cachedDirectories(bad); n > 202 {
		t.Fatalf("%d directories cached for the hostile host, more than one listing names", n)
	}
	v := s.View()
	for _, e := range v.Endpoints {
		if e.URL == bad && (e.State != EndpointUnknown || len(e.Reason) > 2*MaxReasonBytes) {
			t.Fatalf("hostile endpoint: %s, reason of %d bytes", e.State, len(e.Reason))
		}
		if e.URL == good && e.State != EndpointOK {
			t.Fatalf("good endpoint: %s %s", e.State, e.Reason)
		}
	}
	t.Logf("heap in use: %.1f MiB after 10 scans, %.1f MiB after 100", float64(after10)/(1<<20), float64(after100)/(1<<20))
}

// TestScannerWideListingBoundedGoroutines: one listing of 5,000 directories is walked by the endpoint's
// endpoint_concurrency workers, never a goroutine per directory (which a listing of 100,000 made 100,000
// goroutines at once, each waiting for a request slot): while it is walked, the process never runs more than
// a hundred goroutines above what it ran before.
func TestScannerWideListingBoundedGoroutines(t *testing.T) {
	const dirs = 5000
	root := make([]fakeEntry, dirs)
	for i := range root {
		root[i] = fakeDirEntry(fmt.Sprintf("d%05d", i))
	}
	rootBody := fakeListing(root...)
	leafBody := fakeListing()
	ep := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			_, _ = w.Write(rootBody)
			return
		}
		time.Sleep(200 * time.Microsecond) // a slow host: the walk stays wide for a while
		_, _ = w.Write(leafBody)
	}))
	cfg := testScanConfig()
	cfg.MaxDirectories = dirs + 1
	s := NewScanner(cfg, nil)
	base := runtime.NumGoroutine()
	var peak atomic.Int64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	res := scan(t, s, ep)
	close(done)
	<-sampled
	if !res.OK() {
		t.Fatalf("scan: %s", res.Err)
	}
	if p := peak.Load(); p > int64(base)+100 {
		t.Fatalf("%d goroutines at the peak of a walk of %d directories, %d before: the walk is not bounded by its workers",
			p, dirs, base)
	}
	t.Logf("goroutines: %d before, %d at the peak of the walk", base, peak.Load())
}

// TestScannerTitleLengthBounded: a host may name a directory with megabytes (within max_body_bytes), and nest
// such names max_depth deep. A title, the path of a directory below the endpoint, longer than 4,096 bytes
// (PATH_MAX, which no real repository reaches) fails the endpoint with that reason, instead of becoming a
// schema whose title of megabytes every answer, metric label and peer would carry.
func TestScannerTitleLengthBounded(t *testing.T) {
	long := strings.Repeat("n", 3000)
	for _, tt := range []struct {
		name string
		path []string // the directories, nested, that hold a version
		ok   bool
	}{
		{"a long but real title", []string{strings.Repeat("a", 255), strings.Repeat("b", 255)}, true},
		{"one name of a megabyte", []string{strings.Repeat("m", 1<<20)}, false},
		{"two names of 3,000 bytes nested", []string{long, long}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			title := strings.Join(tt.path, "/")
			ep := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rel := strings.Trim(r.URL.Path, "/")
				switch {
				case rel == title+"/1.0.0":
					_, _ = w.Write([]byte("{}"))
				case rel == title:
					_, _ = w.Write(fakeListing(fakeFileEntry("1.0.0"), fakeFileEntry("1.0.0.yaml")))
				case rel == "" || strings.HasPrefix(title, rel+"/"):
					depth := 0
					if rel != "" {
						depth = strings.Count(rel, "/") + 1
					}
					_, _ = w.Write(fakeListing(fakeDirEntry(tt.path[depth])))
				default:
					http.NotFound(w, r)
				}
			}))
			res := scanOnce(t, testScanConfig(), ep)
			if tt.ok {
				if !res.OK() || len(res.Schemas[title]) != 1 {
					t.Fatalf("scan: %s, %d schemas", res.Err, len(res.Schemas))
				}
				return
			}
			if res.OK() || !strings.Contains(res.Err, "longer than") || len(res.Err) > MaxReasonBytes {
				t.Fatalf("a title of %d bytes: ok %v, %d schemas, reason %.200q", len(title), res.OK(), len(res.Schemas), res.Err)
			}
		})
	}
}

// TestStateRejectsLongTitles: an observation whose content (fetched from a peer that holds the gossip key)
// names a title of a megabyte is not recorded, so it reaches no answer or metric label; the same observer's
// next observation with real titles is.
func TestStateRejectsLongTitles(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := NewState([]Repository{{Name: "primary", Endpoints: []string{"http://h1/j/"}}}, time.Minute)
	v1 := []Version{MustParseVersion("1.0.0")}
	long := map[string][]Version{strings.Repeat("t", 1<<20): v1, "a/b": v1}
	if st.Observe(Observation{Repository: "primary", Endpoint: "http://h1/j/", Observer: "peer", Seq: 1, At: now,
		Schemas: long, Hash: ContentHash(long)}, now) {
		t.Fatal("an observation naming a title of 1 MiB was recorded")
	}
	ok := map[string][]Version{"a/b": v1}
	if !st.Observe(Observation{Repository: "primary", Endpoint: "http://h1/j/", Observer: "peer", Seq: 2, At: now,
		Schemas: ok, Hash: ContentHash(ok)}, now) {
		t.Fatal("the next observation, with real titles, was not recorded")
	}
	if v := st.View(now); len(v.Schemas) != 1 || v.Schemas[0].Title != "a/b" {
		t.Fatalf("view: %+v", v.Schemas)
	}
}
