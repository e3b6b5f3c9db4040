package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/evenkeel/evenkeel/internal/cli"
	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync"
	"github.com/evenkeel/evenkeel/schemasync/gossip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Dispatch(ctx, "schemasync", "publish the schema versions that every schema host serves", []cli.Command{
		{Name: "serve", Summary: "scan continuously and serve the API and metrics", Run: cmdServe},
		{Name: "scan", Summary: "scan once, print the view, exit 1 if anything is dirty or unknown", Run: cmdScan},
		{Name: "check-config", Summary: "validate a configuration file and exit", Run: cmdCheckConfig},
		{Name: "state", Summary: "print a running node's view, exit 1 if anything is dirty or unknown", Run: cmdState},
		{Name: "members", Summary: "list the cluster members a running node knows", Run: cmdMembers},
		{Name: "keys", Summary: "generate gossip keys, show a keyring, guide a key rotation", Run: cmdKeys},
	}, args, stdout, stderr)
}

const serveUsage = `
Usage: schemasync serve --config FILE [--log-level LEVEL] [--log-format text|json]

Scans every endpoint of every configured repository each scan_interval, and serves:
  GET /v1/repositories/{repo}/schemas/{title...}   the safe version, dirty/stale flags, per-endpoint versions
  GET /v1/state                                    everything
  GET /v1/dirty                                    only dirty or stale schemas and unknown endpoints
  GET /metrics, /healthz, /readyz                  (ready after the first complete scan)

Runs in the foreground. SIGTERM or SIGINT shuts down gracefully; SIGHUP reloads the configuration file
(repositories, intervals and scan bounds; a new listen address needs a restart).

Examples:
  schemasync serve --config /etc/schemasync/schemasync.yml
  curl -s localhost:8190/v1/repositories/primary/schemas/mediawiki/page/change
  kill -HUP $(pidof schemasync)    # reload
`

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("serve", serveUsage, stderr)
	configPath := fs.String("config", "", "configuration file (YAML; required)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	format := fs.String("log-format", "text", "log format: text or json")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	log, err := cli.NewLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintln(stderr, "schemasync serve:", err)
		return cli.ExitUsage
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "schemasync serve:", err)
		return cli.ExitUsage
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{Logger: log, Registerer: reg})
	if err != nil {
		fmt.Fprintln(stderr, "schemasync serve:", err)
		return cli.ExitFailure
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintln(stderr, "schemasync serve:", err)
		return cli.ExitFailure
	}
	srv := schemasync.Server(cfg.API, svc.Handler(reg))
	var cluster *gossip.Cluster
	if cfg.Cluster.Enabled() {
		cluster, err = svc.NewCluster(schemasync.ClusterOptions{APIURL: cfg.PeerAPIURL(port(ln.Addr()))})
		if err != nil {
			fmt.Fprintln(stderr, "schemasync serve:", err)
			ln.Close()
			return cli.ExitFailure
		}
	}

	ctx, stop := cli.SignalContext(ctx)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Every goroutine started here is waited for before serve returns: the scan loop ends with ctx, the
	// gossip with Leave (which waits for its own goroutines), the HTTP server with Shutdown.
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); errc <- srv.Serve(svc.Listen(ln)) }()
	go func() { defer wg.Done(); errc <- svc.Run(ctx) }()
	if cluster != nil {
		wg.Add(1)
		go func() { defer wg.Done(); errc <- cluster.Run(context.WithoutCancel(ctx)) }() // ends at Leave
	}
	log.Info("serving", "listen", ln.Addr().String(), "node", cfg.Cluster.NodeName, "repositories", len(cfg.Repositories),
		"scan_interval", cfg.ScanInterval, "max_staleness", cfg.MaxStaleness, "version", cli.Version())
	code := cli.ExitOK
loop:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break loop
		case <-hup:
			next, err := loadConfig(*configPath)
			if err != nil {
				log.Error("reload failed; keeping the running configuration", "err", err)
				continue
			}
			if next.Listen != cfg.Listen {
				log.Warn("listen changed; it takes effect only after a restart", "listen", next.Listen)
			}
			if err := svc.Reload(next); err != nil {
				log.Error("reload failed; keeping the running configuration", "err", err)
				continue
			}
			if cluster != nil && next.Cluster.KeyringFile != "" {
				if err := cluster.ReloadKeyring(next.Cluster.KeyringFile); err != nil {
					log.Error("keyring reload failed; keeping the running keyring", "err", err)
				}
			}
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("stopped", "err", err)
				code = cli.ExitFailure
			}
			break loop
		}
	}
	stop()
	if cluster != nil {
		if err := cluster.Leave(5 * time.Second); err != nil {
			log.Warn("leaving the cluster", "err", err)
		} else {
			log.Info("left the cluster")
		}
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Error("http shutdown", "err", err)
		_ = srv.Close()
	}
	wg.Wait()
	return code
}

// port is the port of a listener's address.
func port(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

func loadConfig(path string) (schemasync.Config, error) {
	if path == "" {
		return schemasync.Config{}, cli.Usagef("--config is required")
	}
	return schemasync.LoadConfig(path)
}

const scanUsage = `
Usage: schemasync scan --config FILE [--json] [--timeout D]

Scans every endpoint once, from this host, whatever scan_from says, and prints, for each dirty or stale
schema, its safe version and the versions each endpoint serves, then a summary. With --json it prints the
whole view (the shape of GET /v1/state). An endpoint whose scan takes longer than --timeout is reported
unknown, with the reason; the others are reported as scanned.

Exit status: 0 when every endpoint answered and every schema is consistent; 1 when anything is dirty or an
endpoint is unknown; 2 on a usage or configuration error.

Examples:
  schemasync scan --config schemasync.yml
  schemasync scan --config schemasync.yml --json | jq '.schemas[] | select(.dirty) | .title'
`

func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("scan", scanUsage, stderr)
	configPath := fs.String("config", "", "configuration file (YAML; required)")
	asJSON := fs.Bool("json", false, "print the whole view as JSON")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up on an endpoint whose scan takes longer; it is reported unknown")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "schemasync scan:", err)
		return cli.ExitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintln(stderr, "schemasync scan: --timeout must be positive")
		return cli.ExitUsage
	}
	// Alone, no other node scans the endpoints that scan_from gives to others: scan them all. Each endpoint's
	// scan ends at --timeout, as unknown, so that the others are still reported.
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{IgnoreScanFrom: true, EndpointTimeout: *timeout})
	if err != nil {
		fmt.Fprintln(stderr, "schemasync scan:", err)
		return cli.ExitUsage
	}
	ctx, stop := cli.SignalContext(ctx)
	defer stop()
	if err := svc.ScanOnce(ctx); err != nil {
		fmt.Fprintln(stderr, "schemasync scan:", err)
		return cli.ExitFailure
	}
	v := svc.View()
	if *asJSON {
		resp := schemasync.StateResponse{GeneratedAt: v.At.UTC(), Node: cfg.Cluster.NodeName, Ready: true,
			Consistent: v.Consistent(), Endpoints: v.Endpoints, Schemas: v.Schemas}
		cleanState(&resp) // JSON escapes C0 controls only: bidirectional overrides and C1 controls too
		if err := cli.WriteJSON(stdout, resp); err != nil {
			fmt.Fprintln(stderr, "schemasync scan:", err)
			return cli.ExitFailure
		}
	} else {
		printTable(stdout, v)
	}
	if !v.Consistent() {
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// printEndpoints prints, under heading and followed by an empty line, the endpoints that match, each with its
// reason, escaped; it returns how many it printed (none: nothing, not even the heading).
func printEndpoints(w io.Writer, v *schemasync.View, heading string, match func(*schemasync.EndpointView) bool) int {
	n := 0
	for i := range v.Endpoints {
		e := &v.Endpoints[i]
		if !match(e) {
			continue
		}
		if n == 0 {
			fmt.Fprintln(w, heading)
		}
		n++
		fmt.Fprintf(w, "  %s  %s\n", safetext.Escape(e.URL), safetext.Escape(e.Reason))
	}
	if n > 0 {
		fmt.Fprintln(w)
	}
	return n
}

// printTable prints unknown endpoints, then the warnings of known ones, then each dirty or stale schema with
// its versions per endpoint, then a summary line.
func printTable(w io.Writer, v *schemasync.View) {
	unknown := printEndpoints(w, v, "Unknown endpoints:", func(e *schemasync.EndpointView) bool {
		return e.State != schemasync.EndpointOK
	})
	printEndpoints(w, v, "Endpoint warnings:", func(e *schemasync.EndpointView) bool {
		return e.State == schemasync.EndpointOK && e.Reason != ""
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	dirty, stale, headed := 0, 0, false
	for _, s := range v.Schemas {
		if s.Dirty {
			dirty++
		}
		if s.Stale {
			stale++
		}
		if !s.Dirty && !s.Stale {
			continue
		}
		if !headed {
			fmt.Fprintln(tw, "REPOSITORY\tSCHEMA\tSAFE\tFLAGS\tENDPOINT\tVERSIONS")
			headed = true
		}
		var flags []string
		if s.Dirty {
			flags = append(flags, "dirty")
		}
		if s.Stale {
			flags = append(flags, "stale")
		}
		safe := "-"
		if s.SafeVersion != nil {
			safe = s.SafeVersion.String()
		}
		for i, e := range s.Endpoints {
			versions := make([]string, len(e.Versions))
			for j, ver := range e.Versions {
				versions[j] = ver.String()
			}
			vs := strings.Join(versions, " ")
			switch {
			case e.State != schemasync.EndpointOK:
				vs = "(unknown)"
			case vs == "":
				vs = "(missing)"
			}
			if i == 0 {
				cli.Row(tw, s.Repository, s.Title, safe, strings.Join(flags, ","), e.URL, vs)
			} else {
				cli.Row(tw, "", "", "", "", e.URL, vs)
			}
		}
	}
	tw.Flush()
	if headed {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "%d schemas: %d dirty, %d stale; %d endpoints: %d unknown\n",
		len(v.Schemas), dirty, stale, len(v.Endpoints), unknown)
}

const checkConfigUsage = `
Usage: schemasync check-config --config FILE

Validates the configuration file (unknown keys are errors) and prints a summary. Exit status 0 when valid,
2 when not.

Example:
  schemasync check-config --config /etc/schemasync/schemasync.yml
`

func cmdCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("check-config", checkConfigUsage, stderr)
	configPath := fs.String("config", "", "configuration file (YAML; required)")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(stderr, "schemasync check-config:", err)
		return cli.ExitUsage
	}
	n := 0
	names := make([]string, 0, len(cfg.Repositories))
	for _, r := range cfg.Repositories {
		n += len(r.Endpoints)
		names = append(names, r.Name)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "%s: OK: node %s, %d repositories (%s), %d endpoints, scan every %s, stale after %s\n",
		safetext.Escape(*configPath), safetext.Escape(cfg.Cluster.NodeName), len(cfg.Repositories), strings.Join(names, ", "), n, cfg.ScanInterval, cfg.MaxStaleness)
	return cli.ExitOK
}
