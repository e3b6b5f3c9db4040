package schemasync_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/nginxtest"
	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/internal/schemarepo"
	"github.com/evenkeel/evenkeel/schemasync"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The RSS benchmark's fleet: schema trees written once to disk and served by real nginx, and the runs of the
// real `schemasync serve` binary against parts of it.
const (
	rssVersions     = 5               // versions per schema
	rssSteadyRounds = 3               // scan rounds after the first complete one, for the steady state
	rssScrapeEvery  = 2 * time.Second // how often the benchmark reads /metrics (as Prometheus would, more often)
	rssFirstScanBy  = 5 * time.Minute // bound on the wait for the first complete scan
	rssSteadyBy     = 5 * time.Minute // bound on the wait for the steady-state rounds
)

// rssTrees are the on-disk repositories: every nginx host serves each of them, under two names for the
// fleet's two repositories (aliases of one tree), and the hostile trees under one name.
type rssTrees struct {
	small, large   string // 1,000 and 5,000 schemas × rssVersions
	atCap, overCap string // max_titles titles, and one more, of one version each
	smallN, largeN int
	maxTitles      int
	writeTime      time.Duration
}

// writeRSSTrees writes the trees under a new temporary directory. The over-cap tree reuses the at-cap tree's
// directories by symlink (nginx follows them) and adds one schema, so that it costs one directory to write.
func writeRSSTrees(b *testing.B) rssTrees {
	b.Helper()
	start := time.Now()
	hourAgo := start.Add(-time.Hour)
	root := b.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		b.Fatal(err)
	}
	t := rssTrees{smallN: 1000, largeN: 5000, maxTitles: schemasync.DefaultScanConfig().MaxTitles}
	write := func(name string, r *schemarepo.Repo) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := r.WriteDir(dir); err != nil {
			b.Fatalf("writing the %s tree: %v", name, err)
		}
		return dir
	}
	t.small = write("small", schemarepo.SyntheticAt(t.smallN, rssVersions, hourAgo))
	t.large = write("large", schemarepo.SyntheticAt(t.largeN, rssVersions, hourAgo))
	t.atCap = write("atcap", schemarepo.SyntheticAt(t.maxTitles, 1, hourAgo))
	extra := schemarepo.New()
	title := schemarepo.SyntheticTitle(t.maxTitles)
	extra.Put(title, "1.0.0", schemarepo.Doc(title, "1.0.0"))
	t.overCap = write("overcap", extra)
	groups, err := os.ReadDir(filepath.Join(t.atCap, "jsonschema", "synthetic"))
	if err != nil {
		b.Fatal(err)
	}
	for _, g := range groups {
		if !g.IsDir() {
			continue
		}
		target := filepath.Join(t.atCap, "jsonschema", "synthetic", g.Name())
		if err := os.Symlink(target, filepath.Join(t.overCap, "jsonschema", "synthetic", g.Name())); err != nil {
			b.Fatal(err)
		}
	}
	t.writeTime = time.Since(start)
	return t
}

// rssRun is one run of `schemasync serve` against a part of the fleet.
type rssRun struct {
	name            string
	hosts, repos    int // the fleet: hosts × repositories endpoints, each of schemas schemas
	schemas         int
	hostile         string // "", "atcap" or "overcap": one more repository, of one endpoint on the first host
	afterFirst      uint64 // VmRSS after the first complete scan (before any scrape)
	steady, peak    uint64 // median and largest VmRSS of the scrapes during rssSteadyRounds more rounds
	hwm             uint64 // VmHWM at their end: the peak of the whole run
	gcGoal          uint64 // median go_memstats_next_gc_bytes of those scrapes: the heap size that triggers a GC
	firstScan, took time.Duration
}

func (r *rssRun) endpoints() int {
	n := r.hosts * r.repos
	if r.hostile != "" {
		n++
	}
	return n
}

// BenchmarkServiceRSS measures the resident memory (VmRSS, and its peak VmHWM, from /proc/PID/status) of the
// real `schemasync serve` process, built from ./cmd/schemasync and run as a subprocess on 127.0.0.1, scanning
// endpoints served by real nginx (one process per host, JSON autoindex) from trees written to disk once. The
// schema hosts run in their own processes, so the figures are schemasync's own.
//
// Runs: 4 hosts × 2 repositories (8 endpoints) at 1,000 and at 5,000 schemas × 5 versions (the slope is the
// cost per schema per endpoint, with the fixed cost taken out), 2 hosts × 2 repositories at 5,000 (the same
// 10,000 schemas on half the endpoints: the cost per endpoint), and 8 × 5,000 with one hostile endpoint more,
// serving max_titles (20,000) titles, or one title over it.
//
// Each run reads VmRSS once after the first complete scan (/readyz turns 200; /metrics not read yet), then
// scrapes /metrics every rssScrapeEvery, as Prometheus would (more often), and reads VmRSS beside each scrape
// until rssSteadyRounds more rounds have scanned every endpoint: the steady state is the median of those
// readings (a Go heap swings between its live size and the GC goal, so one reading says little), beside their
// largest and the run's VmHWM. scan_interval is 2s and reconfirm_after 2s, so that every round re-confirms
// every version: the steady state at the defaults (30s, and max_staleness/4 = 30s), in less time.
func BenchmarkServiceRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "schemasync")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/evenkeel/evenkeel/cmd/schemasync").CombinedOutput(); err != nil {
		b.Fatalf("building schemasync: %v\n%s", err, out)
	}
	trees := writeRSSTrees(b)
	served := map[string]string{"small0": trees.small, "small1": trees.small, "large0": trees.large,
		"large1": trees.large, "atcap": trees.atCap, "overcap": trees.overCap}
	var hosts []*nginxtest.Server
	for h := 0; h < 4; h++ {
		hosts = append(hosts, nginxtest.Start(b, served))
	}
	for i := 0; i < b.N; i++ {
		runs := []*rssRun{
			{name: "8 endpoints x 1,000 schemas", hosts: 4, repos: 2, schemas: trees.smallN},
			{name: "8 endpoints x 5,000 schemas", hosts: 4, repos: 2, schemas: trees.largeN},
			{name: "4 endpoints x 5,000 schemas", hosts: 2, repos: 2, schemas: trees.largeN},
			{name: "8 x 5,000 + 1 at max_titles", hosts: 4, repos: 2, schemas: trees.largeN, hostile: "atcap"},
			{name: "8 x 5,000 + 1 over max_titles", hosts: 4, repos: 2, schemas: trees.largeN, hostile: "overcap"},
		}
		for _, r := range runs {
			runServiceRSS(b, bin, hosts, trees, r)
		}
		printRSSTable(b, trees, runs)
	}
}

// runServiceRSS starts `schemasync serve` for r, takes its measurements, and stops it.
func runServiceRSS(b *testing.B, bin string, hosts []*nginxtest.Server, trees rssTrees, r *rssRun) {
	b.Helper()
	var cfg strings.Builder
	cfg.WriteString("listen: 127.0.0.1:0\nscan_interval: 2s\nmax_staleness: 2m\n")
	cfg.WriteString("scan:\n  reconfirm_after: 2s\n  endpoint_timeout: 1m\ncluster:\n  node_name: bench\nrepositories:\n")
	tree := "large"
	if r.schemas == trees.smallN {
		tree = "small"
	}
	for repo := 0; repo < r.repos; repo++ {
		fmt.Fprintf(&cfg, "  - name: repo%d\n    endpoints:\n", repo)
		for _, h := range hosts[:r.hosts] {
			fmt.Fprintf(&cfg, "      - %s/repositories/%s%d/jsonschema/\n", h.URL, tree, repo)
		}
	}
	if r.hostile != "" {
		fmt.Fprintf(&cfg, "  - name: hostile\n    endpoints:\n      - %s/repositories/%s/jsonschema/\n", hosts[0].URL, r.hostile)
	}
	cfgPath := filepath.Join(b.TempDir(), "schemasync.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	p := startServe(b, bin, cfgPath)
	defer p.stop(b)

	start := time.Now()
	for {
		if code, _ := httpGet(p.url + "/readyz"); code == http.StatusOK {
			break
		}
		if time.Since(start) > rssFirstScanBy {
			b.Fatalf("%s: no complete scan within %s\n%s", r.name, rssFirstScanBy, p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.firstScan = time.Since(start)
	var err error
	if r.afterFirst, _, err = procMemory(p.cmd.Process.Pid); err != nil {
		b.Fatal(err)
	}
	want := float64(r.endpoints() * (1 + rssSteadyRounds))
	var rssSamples, goalSamples []float64
	for {
		time.Sleep(rssScrapeEvery)
		code, body := httpGet(p.url + "/metrics")
		if code != http.StatusOK {
			b.Fatalf("%s: GET /metrics: %d\n%s", r.name, code, p.log())
		}
		m, err := promSums(body, "schemasync_scans_total", "go_memstats_next_gc_bytes")
		if err != nil {
			b.Fatalf("%s: GET /metrics: %v", r.name, err)
		}
		rss, hwm, err := procMemory(p.cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		rssSamples, goalSamples = append(rssSamples, float64(rss)), append(goalSamples, m["go_memstats_next_gc_bytes"])
		r.peak, r.hwm = max(r.peak, rss), hwm
		if m["schemasync_scans_total"] >= want {
			break
		}
		if time.Since(start) > rssFirstScanBy+rssSteadyBy {
			b.Fatalf("%s: %v of %v endpoint scans after %s\n%s", r.name, m["schemasync_scans_total"], want, time.Since(start), p.log())
		}
	}
	r.steady, r.gcGoal = uint64(median(rssSamples)), uint64(median(goalSamples))
	r.took = time.Since(start)
	// The state must be what the run claims to measure: the fleet consistent, and the hostile endpoint
	// known at the cap and unknown over it.
	code, body := httpGet(p.url + "/v1/dirty")
	var dirty schemasync.StateResponse
	if code != http.StatusOK || json.Unmarshal(body, &dirty) != nil {
		b.Fatalf("%s: GET /v1/dirty: %d %.200s", r.name, code, body)
	}
	unknown := map[string]bool{}
	for _, e := range dirty.Endpoints {
		unknown[e.Repository] = true
		if e.Repository != "hostile" || r.hostile != "overcap" {
			b.Errorf("%s: endpoint %s unknown: %s", r.name, e.URL, e.Reason)
		} else if !strings.Contains(e.Reason, "max_titles") {
			b.Errorf("%s: the over-cap endpoint is unknown for another reason: %s", r.name, e.Reason)
		}
	}
	if r.hostile == "overcap" && !unknown["hostile"] {
		b.Errorf("%s: the endpoint over max_titles is not unknown", r.name)
	}
	for _, s := range dirty.Schemas {
		if s.Repository != "hostile" {
			b.Errorf("%s: %s/%s dirty or stale: %v", r.name, s.Repository, s.Title, s.Reasons)
			break
		}
	}
}

// serveProc is a running `schemasync serve`.
type serveProc struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	tail   []string // its last log lines, for an error report
	exited chan error
}

// startServe starts bin serve on cfgPath and waits for its "serving" log line, which names the address.
func startServe(b *testing.B, bin, cfgPath string) *serveProc {
	b.Helper()
	p := &serveProc{exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, "serve", "--config", cfgPath, "--log-format", "json")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	listening := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var rec struct{ Msg, Listen string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" && rec.Listen != "" {
				select {
				case listening <- rec.Listen:
				default:
				}
			}
			p.mu.Lock()
			if len(p.tail) == 20 {
				p.tail = p.tail[1:]
			}
			p.tail = append(p.tail, safetext.Escape(safetext.Bound(line, 300)))
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { <-logDone; p.exited <- p.cmd.Wait() }()
	select {
	case addr := <-listening:
		p.url = "http://" + addr
		return p
	case err := <-p.exited:
		b.Fatalf("schemasync serve exited: %v\n%s", err, p.log())
	case <-time.After(30 * time.Second):
		p.stop(b)
		b.Fatalf("schemasync serve did not log its address within 30s\n%s", p.log())
	}
	return nil
}

// stop ends the process with SIGTERM (SIGKILL after 10 s) and waits for it.
func (p *serveProc) stop(b *testing.B) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			b.Errorf("schemasync serve: %v\n%s", err, p.log())
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		b.Errorf("schemasync serve did not stop within 10s of SIGTERM\n%s", p.log())
	}
	p.exited <- nil // a second stop returns at once
}

func (p *serveProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// httpGet returns url's status and body (at most 64 MiB); status 0 when the request failed.
func httpGet(url string) (int, []byte) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode, body
}

// promSums sums the samples of each named counter or gauge in a Prometheus text exposition.
func promSums(body []byte, names ...string) (map[string]float64, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	sums := map[string]float64{}
	for _, n := range names {
		for _, m := range mfs[n].GetMetric() {
			sums[n] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sums, nil
}

// procMemory reads VmRSS and VmHWM of process pid from /proc/PID/status, in bytes.
func procMemory(pid int) (rss, hwm uint64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	rss, hwm, err = parseProcStatus(data)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	return rss, hwm, nil
}

// parseProcStatus reads VmRSS and VmHWM, in bytes, from the text of a /proc/PID/status ("VmRSS:  1234 kB").
// Both must be there, once, in kB.
func parseProcStatus(data []byte) (rss, hwm uint64, err error) {
	seen := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		key, v, ok := strings.Cut(line, ":")
		if !ok || key != "VmRSS" && key != "VmHWM" {
			continue
		}
		if seen[key] {
			return 0, 0, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		num, ok := strings.CutSuffix(strings.TrimSpace(v), " kB")
		kb, perr := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
		if !ok || perr != nil || kb > 1<<40 {
			return 0, 0, fmt.Errorf("%s: %q is not a size in kB", key, safetext.Escape(safetext.Bound(strings.TrimSpace(v), 40)))
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	if !seen["VmRSS"] || !seen["VmHWM"] {
		return 0, 0, errors.New("no VmRSS or no VmHWM")
	}
	return rss, hwm, nil
}

// printRSSTable prints the runs and the costs derived from them, and reports the main figures as metrics.
func printRSSTable(b *testing.B, trees rssTrees, runs []*rssRun) {
	mib := func(v uint64) float64 { return float64(v) / (1 << 20) }
	var t strings.Builder
	fmt.Fprintf(&t, "\nschemasync serve, resident memory (/proc/PID/status); %d versions per schema; trees written in %s; "+
		"%d CPUs; one nginx process per host\n", rssVersions, trees.writeTime.Round(time.Second), runtime.NumCPU())
	fmt.Fprintf(&t, "%-30s %9s %12s %12s %10s %10s %10s %10s\n", "run", "first ok", "RSS first", "RSS steady", "max",
		"VmHWM", "GC goal", "run time")
	for _, r := range runs {
		fmt.Fprintf(&t, "%-30s %8.1fs %8.0f MiB %8.0f MiB %6.0f MiB %6.0f MiB %6.0f MiB %9.0fs\n", r.name, r.firstScan.Seconds(),
			mib(r.afterFirst), mib(r.steady), mib(r.peak), mib(r.hwm), mib(r.gcGoal), r.took.Seconds())
	}
	small, large, half, atCap, overCap := runs[0], runs[1], runs[2], runs[3], runs[4]
	slope := func(get func(*rssRun) uint64) float64 {
		return (float64(get(large)) - float64(get(small))) / float64(large.hosts*large.repos*(large.schemas-small.schemas))
	}
	perEndpoint := func(get func(*rssRun) uint64) float64 {
		return (float64(get(large)) - float64(get(half))) / float64(large.endpoints()-half.endpoints())
	}
	diff := func(a, b uint64) float64 { return mib(a) - mib(b) }
	first := func(r *rssRun) uint64 { return r.afterFirst }
	steady := func(r *rssRun) uint64 { return r.steady }
	heap := func(r *rssRun) uint64 { return r.gcGoal }
	fixed := float64(small.steady) - slope(steady)*float64(small.hosts*small.repos*small.schemas)
	fmt.Fprintf(&t, "per schema per endpoint (8 endpoints, 1,000 -> 5,000 schemas): RSS first %.0f B, steady %.0f B, GC goal %.0f B\n",
		slope(first), slope(steady), slope(heap))
	fmt.Fprintf(&t, "fixed (steady RSS at 0 schemas, by that slope): %.0f MiB\n", fixed/(1<<20))
	fmt.Fprintf(&t, "per endpoint at 5,000 schemas x 2 repositories (4 -> 8 endpoints): RSS first %.1f MiB, steady %.1f MiB, GC goal %.1f MiB\n",
		perEndpoint(first)/(1<<20), perEndpoint(steady)/(1<<20), perEndpoint(heap)/(1<<20))
	fmt.Fprintf(&t, "hostile endpoint at max_titles (%d): steady RSS %+.0f MiB, VmHWM %+.0f MiB; over it: steady RSS %+.0f MiB, VmHWM %+.0f MiB\n",
		trees.maxTitles, diff(atCap.steady, large.steady), diff(atCap.hwm, large.hwm), diff(overCap.steady, large.steady),
		diff(overCap.hwm, large.hwm))
	fmt.Fprint(os.Stdout, t.String())
	b.ReportMetric(mib(large.steady), "MiB-RSS-8x5000")
	b.ReportMetric(slope(steady), "RSS-bytes/schema/endpoint")
	b.ReportMetric(perEndpoint(steady)/(1<<20), "RSS-MiB/endpoint")
	b.ReportMetric(diff(atCap.steady, large.steady), "MiB-RSS-hostile-at-cap")
}

func TestParseProcStatus(t *testing.T) {
	const head = "Name:\tschemasync\nVmPeak:\t 1500000 kB\n"
	for _, tc := range []struct {
		name     string
		in       string
		rss, hwm uint64
		wantErr  bool
	}{
		{name: "linux", in: head + "VmHWM:\t  305152 kB\nVmRSS:\t  238592 kB\nRssAnon:\t 230000 kB\n", rss: 238592 << 10, hwm: 305152 << 10},
		{name: "no-hwm", in: head + "VmRSS:\t  238592 kB\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "twice", in: "VmRSS: 1 kB\nVmHWM: 2 kB\nVmRSS: 3 kB\n", wantErr: true},
		{name: "not-kb", in: "VmRSS: 1 MB\nVmHWM: 2 kB\n", wantErr: true},
		{name: "not-a-number", in: "VmRSS: x kB\nVmHWM: 2 kB\n", wantErr: true},
		{name: "negative", in: "VmRSS: -1 kB\nVmHWM: 2 kB\n", wantErr: true},
		{name: "overflowing", in: "VmRSS: 18446744073709551615 kB\nVmHWM: 2 kB\n", wantErr: true},
		{name: "prefix-only", in: "VmRSSx: 1 kB\nVmHWM: 2 kB\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rss, hwm, err := parseProcStatus([]byte(tc.in))
			if (err != nil) != tc.wantErr || rss != tc.rss || hwm != tc.hwm {
				t.Errorf("parseProcStatus(%q) = %d, %d, %v; want %d, %d, error %v", tc.in, rss, hwm, err, tc.rss, tc.hwm, tc.wantErr)
			}
		})
	}
}

func FuzzParseProcStatus(f *testing.F) {
	f.Add([]byte("VmHWM:\t  305152 kB\nVmRSS:\t  238592 kB\n"))
	f.Add([]byte("VmRSS: 1 kB\nVmHWM: 2 kB\nVmRSS: 3 kB\n"))
	f.Add([]byte("VmRSS: 1099511627776 kB\nVmHWM:  kB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rss, hwm, err := parseProcStatus(data)
		if err == nil && (rss > 1<<50 || hwm > 1<<50 || rss%1024 != 0 || hwm%1024 != 0) {
			t.Errorf("parseProcStatus(%q) = %d, %d: out of range", data, rss, hwm)
		}
		if err != nil && len(err.Error()) > 200 {
			t.Errorf("unbounded error: %d bytes", len(err.Error()))
		}
	})
}

func TestPromSums(t *testing.T) {
	const exposition = `# TYPE schemasync_scans_total counter
schemasync_scans_total{endpoint="http://a/",repository="r",result="success"} 3
schemasync_scans_total{endpoint="http://a/",repository="r",result="failure"} 1
schemasync_scans_total{endpoint="http://b/",repository="r",result="success"} 4
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 1.2e+06
# TYPE schemasync_scans_total_other gauge
schemasync_scans_total_other 100
`
	for _, tc := range []struct {
		name    string
		in      string
		want    map[string]float64
		wantErr bool
	}{
		{name: "counter-and-gauge", in: exposition, want: map[string]float64{"schemasync_scans_total": 8, "go_memstats_heap_inuse_bytes": 1.2e6}},
		{name: "absent", in: "# TYPE other gauge\nother 1\n", want: map[string]float64{}},
		{name: "not-the-text-format", in: "<html>busy</html>\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := promSums([]byte(tc.in), "schemasync_scans_total", "go_memstats_heap_inuse_bytes")
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := tc.want[k]; !ok && got[k] != 0 {
					t.Errorf("unexpected %s = %v", k, got[k])
				}
			}
		})
	}
}
