// Command demo tells the story that schemasync exists for, on loopback and with nothing to install: four schema
// hosts roll a new schema version out one at a time, and schemasync reports the hosts as dirty and holds the
// safe version back until every host serves the new version. Run it with "make demo". It ends by itself.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

const (
	title        = "mediawiki/page/change"
	scanInterval = 200 * time.Millisecond
)

// host is one in-process schema host. down makes it answer 503, as a host being restarted does.
type host struct {
	name    string
	repo    *schemarepo.Repo
	handler http.Handler
	url     string
	down    atomic.Bool
}

func (h *host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.down.Load() {
		http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	h.handler.ServeHTTP(w, r)
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = srv.Close() }, nil
}

func run(ctx context.Context, out io.Writer) error {
	base := schemarepo.Demo()
	base.SetClock(func() time.Time { return time.Now().Add(-time.Hour) }) // contents pulled an hour ago
	var hosts []*host
	var endpoints []string
	for _, name := range []string{"schema1001", "schema1002", "schema2001", "schema2002"} {
		h := &host{name: name, repo: base.Clone()}
		h.repo.SetClock(time.Now)
		h.handler = schemarepo.NewHost(map[string]*schemarepo.Repo{"primary": h.repo})
		url, stop, err := serve(h)
		if err != nil {
			return err
		}
		defer stop()
		h.url = url
		hosts = append(hosts, h)
		endpoints = append(endpoints, url+"/repositories/primary/jsonschema/")
	}

	cfg := schemasync.DefaultConfig()
	cfg.Cluster.NodeName = "demo"
	cfg.ScanInterval = scanInterval
	cfg.MaxStaleness = 5 * scanInterval
	cfg.Scan.Timeout = time.Second
	cfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: endpoints}}
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
	if err != nil {
		return err
	}
	api, stopAPI, err := serve(svc.Handler())
	if err != nil {
		return err
	}
	defer stopAPI()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = svc.Run(ctx) }()

	fmt.Fprintf(out, "evenkeel demo: rolling %s 1.2.0 out to 4 schema hosts, one at a time.\n", title)
	fmt.Fprintf(out, "schemasync scans every %s and answers at %s/v1/repositories/primary/schemas/%s\n\n", scanInterval, api, title)

	const row = "%-6s %-44s %-11s %-11s %-11s %-11s %-6s %-6s %s\n"
	fmt.Fprintf(out, row, "TIME", "WHAT HAPPENED", "schema1001", "schema1002", "schema2001", "schema2002", "SAFE", "DIRTY", "STALE")
	start := time.Now()
	next := schemarepo.Doc(title, "1.2.0", "page_title", "page_namespace", "rev_id")
	steps := []struct {
		what string
		do   func()
	}{
		{"every host serves 1.1.0", func() {}},
		{"schema1001 pulls 1.2.0", func() { hosts[0].repo.Put(title, "1.2.0", next) }},
		{"schema1002 pulls 1.2.0", func() { hosts[1].repo.Put(title, "1.2.0", next) }},
		{"schema2001 lists 1.2.0, file not written yet", func() { hosts[2].repo.PutPending(title, "1.2.0", next) }},
		{"schema2002 goes down (HTTP 503)", func() { hosts[3].down.Store(true) }},
		{"schema2001 finishes its pull", func() { hosts[2].repo.Put(title, "1.2.0", next) }},
		{"schema2002 comes back, still at 1.1.0", func() { hosts[3].down.Store(false) }},
		{"schema2002 pulls 1.2.0", func() { hosts[3].repo.Put(title, "1.2.0", next) }},
	}
	for _, step := range steps {
		step.do()
		time.Sleep(3 * scanInterval) // let a full scan run after the change
		sv, err := fetch(ctx, api)
		if err != nil {
			return err
		}
		cols := make([]string, len(sv.Endpoints))
		for i, e := range sv.Endpoints {
			cols[i] = describe(e)
		}
		safe := "none"
		if sv.SafeVersion != nil {
			safe = *sv.SafeVersion
		}
		fmt.Fprintf(out, row, fmt.Sprintf("%4.1fs", time.Since(start).Seconds()), step.what,
			cols[0], cols[1], cols[2], cols[3], safe, yes(sv.Dirty), yes(sv.Stale))
	}
	fmt.Fprintln(out, `
What to notice:
  - While the hosts disagree, the schema is dirty and the safe version stays at 1.1.0: a producer that uses
    the safe version never emits an event that a host without 1.2.0 would reject.
  - schema2001 listed 1.2.0 before the file existed: schemasync counts a version only once its file answers.
  - While schema2002 was down, the safe version was held (stale), never advanced, even after the other three
    hosts had 1.2.0.
  - Only when every host serves 1.2.0 does it become safe, and the dirty flag clears.`)
	return nil
}

// schemaView is the part of the API answer the demo prints.
type schemaView struct {
	SafeVersion *string `json:"safe_version"`
	Dirty       bool    `json:"dirty"`
	Stale       bool    `json:"stale"`
	Endpoints   []struct {
		State    string   `json:"state"`
		Versions []string `json:"versions"`
	} `json:"endpoints"`
}

func fetch(ctx context.Context, api string) (*schemaView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, api+"/v1/repositories/primary/schemas/"+title, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("schemasync answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var sv schemaView
	return &sv, json.NewDecoder(resp.Body).Decode(&sv)
}

func describe(e struct {
	State    string   `json:"state"`
	Versions []string `json:"versions"`
}) string {
	if e.State != schemasync.EndpointOK {
		return "unknown"
	}
	if len(e.Versions) == 0 {
		return "-"
	}
	return e.Versions[len(e.Versions)-1]
}

func yes(b bool) string {
	if b {
		return "YES"
	}
	return "no"
}
