// Command demo tells the story that schemasync exists for, on loopback and with nothing to install: four schema
// hosts roll a new schema version out one at a time, and schemasync reports the hosts as dirty and holds the
// safe version back until every host serves the new version.
//
// At every step of the rollout the canary runs in both modes against an EventGate-compatible intake that
// resolves schemas through a round-robin load balancer over the four hosts, as in the incident: reading
// "latest" from whichever host answers gets events rejected with HTTP 500; asking schemasync for the safe
// version never does. Run it with "make demo". It ends by itself.
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

	"github.com/evenkeel/evenkeel/canary"
	"github.com/evenkeel/evenkeel/internal/eventgate/fakeintake"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
)

const (
	title        = "mediawiki/page/change"
	stream       = "mediawiki.page_change.v1"
	scanInterval = 200 * time.Millisecond
	// canaryRuns is how many canary runs each mode makes at each step of the rollout.
	canaryRuns = 4
	// intakePods is how many EventGate-compatible intake pods share the canary's traffic.
	intakePods = 4
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

// roundRobin spreads requests over backends in turn, as a Kubernetes service spreads them over pods.
type roundRobin struct {
	backends []http.Handler
	next     atomic.Uint64
}

func (rr *roundRobin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rr.backends[(rr.next.Add(1)-1)%uint64(len(rr.backends))].ServeHTTP(w, r)
}

// balancer is the load balancer in front of the schema hosts: each request goes to the next host that is up
// (a health-checked pool), so consecutive requests see different hosts, as in the incident.
type balancer struct {
	hosts []*host
	next  atomic.Uint64
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for range b.hosts {
		h := b.hosts[(b.next.Add(1)-1)%uint64(len(b.hosts))]
		if !h.down.Load() {
			h.ServeHTTP(w, r)
			return
		}
	}
	http.Error(w, "503 no schema host is up", http.StatusServiceUnavailable)
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

	lbURL, stopLB, err := serve(&balancer{hosts: hosts})
	if err != nil {
		return err
	}
	defer stopLB()
	schemaBase := lbURL + "/repositories/primary/jsonschema"
	// EventGate runs as several pods behind a service, each with its own cache of successfully loaded schemas.
	var pods []*fakeintake.Intake
	var podHandlers []http.Handler
	for i := 0; i < intakePods; i++ {
		pod, err := fakeintake.New(fakeintake.Config{
			SchemaBaseURIs: []string{schemaBase},
			Streams:        map[string]string{stream: title},
		}, fakeintake.Options{})
		if err != nil {
			return err
		}
		pods = append(pods, pod)
		podHandlers = append(podHandlers, pod)
	}
	intakeURL, stopIntake, err := serve(&roundRobin{backends: podHandlers})
	if err != nil {
		return err
	}
	defer stopIntake()
	latestMode, err := newCanary(canary.VersionLatest, api, schemaBase, intakeURL)
	if err != nil {
		return err
	}
	safeMode, err := newCanary(canary.VersionSafe, api, schemaBase, intakeURL)
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "evenkeel demo: rolling %s 1.2.0 out to 4 schema hosts, one at a time.\n", title)
	fmt.Fprintf(out, "schemasync scans every %s and answers at %s/v1/repositories/primary/schemas/%s\n", scanInterval, api, title)
	fmt.Fprintf(out, "At each step the canary runs %d times in each mode. The intake (%d EventGate-compatible pods, each\n", canaryRuns, intakePods)
	fmt.Fprintf(out, "caching the schemas it loads) resolves schemas through a round-robin load balancer over the hosts.\n\n")

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
		time.Sleep(2 * scanInterval) // the node scans on its own meanwhile
		// Scans are serialized, so this one starts after the change: what follows reflects it however
		// slow the machine is.
		if err := svc.ScanOnce(ctx); err != nil {
			return err
		}
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
		l, err := latestMode.runs(ctx, canaryRuns)
		if err != nil {
			return err
		}
		s, err := safeMode.runs(ctx, canaryRuns)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "       canary: latest mode %-35s safe mode %s\n", l, s)
	}
	fmt.Fprintf(out, "\nCanary totals: latest mode %d of %d events rejected; safe mode %d of %d.\n",
		latestMode.rejected, latestMode.sent, safeMode.rejected, safeMode.sent)
	if latestMode.firstError != "" {
		fmt.Fprintf(out, "The rejection, as the latest-mode canary reported it:\n  %s\n", latestMode.firstError)
	}
	var accepted, rejected int
	for _, pod := range pods {
		st := pod.Stats()
		accepted, rejected = accepted+st.Accepted, rejected+st.Invalid+st.Errored
	}
	fmt.Fprintf(out, "The intake's %d pods accepted %d events and rejected %d.\n", intakePods, accepted, rejected)
	fmt.Fprintln(out, `
What to notice:
  - While the hosts disagree, the schema is dirty and the safe version stays at 1.1.0: a producer that uses
    the safe version never emits an event that a host without 1.2.0 would reject.
  - schema2001 listed 1.2.0 before the file existed: schemasync counts a version only once its file answers.
  - While schema2002 was down, the safe version was held (stale), never advanced, even after the other three
    hosts had 1.2.0.
  - Only when every host serves 1.2.0 does it become safe, and the dirty flag clears.
  - The canary in latest mode took 1.2.0 from whichever host the balancer picked, and the intake, resolving
    the schema on another host, rejected it with HTTP 500: the incident. In safe mode it produced at the
    version schemasync reported, and nothing was rejected.`)
	if safeMode.rejected > 0 {
		return fmt.Errorf("the canary in safe mode had %d events rejected", safeMode.rejected)
	}
	return nil
}

// canaryMode is one canary runner and its tally over the demo.
type canaryMode struct {
	runner         *canary.Runner
	sent, rejected int
	firstError     string
}

func newCanary(source canary.VersionSource, schemasyncURL, schemaBase, intakeURL string) (*canaryMode, error) {
	cfg := canary.DefaultConfig()
	cfg.VersionSource = source
	cfg.Schemasync = []string{schemasyncURL}
	cfg.SchemaBaseURIs = []string{schemaBase}
	cfg.Timeout = time.Second
	cfg.RetryBackoff = 10 * time.Millisecond
	cfg.Streams = []canary.Stream{{Name: stream, SchemaTitle: title, Destinations: []string{intakeURL + "/v1/events"}}}
	r, err := canary.NewRunner(cfg, canary.Options{})
	if err != nil {
		return nil, err
	}
	return &canaryMode{runner: r}, nil
}

// runs runs the canary n times and describes the outcome, e.g. "1.2.0 x4: 3 rejected".
func (c *canaryMode) runs(ctx context.Context, n int) (string, error) {
	versions := map[string]int{}
	var order []string
	rejected := 0
	for i := 0; i < n; i++ {
		results, err := c.runner.Run(ctx)
		if err != nil {
			return "", err
		}
		for _, r := range results {
			v := r.Version
			if v == "" {
				v = "none"
			}
			if versions[v] == 0 {
				order = append(order, v)
			}
			versions[v]++
			c.sent++
			if !r.OK {
				rejected++
				c.rejected++
				if c.firstError == "" {
					c.firstError = r.Error
				}
			}
		}
	}
	parts := make([]string, len(order))
	for i, v := range order {
		parts[i] = fmt.Sprintf("%s x%d", v, versions[v])
	}
	verdict := "all accepted"
	if rejected > 0 {
		verdict = fmt.Sprintf("%d REJECTED", rejected)
	}
	return strings.Join(parts, ", ") + ": " + verdict, nil
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
