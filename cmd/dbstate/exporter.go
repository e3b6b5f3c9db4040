package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/exporter"
	"github.com/evenkeel/evenkeel/internal/cli"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const exporterUsage = `
Usage: dbstate exporter --listen ADDR (--seed HOST:PORT ... | --instances A,B,C) [--desired-vars FILE]
                        [--desired-grants FILE] [--refresh-interval D] [--instance-timeout D]
                        [--discovery-interval D] [connection flags]

Serves Prometheus metrics that put the observed state of the instances beside the desired state:
  dbstate_up, dbstate_instance_info{cluster,version}, dbstate_instance_role, dbstate_read_only,
  dbstate_replication_{io,sql}_running, dbstate_replication_seconds_behind_master, dbstate_replication_sql_delay_seconds,
  dbstate_replication_lag_seconds (beyond the configured delay), dbstate_replication_last_{io,sql}_errno,
  dbstate_writable_instances{cluster}, dbstate_errant_gtid, dbstate_variable_drift{variable} and
  dbstate_variable_invalid{variable} (only variables the --desired-vars file names),
  dbstate_grants_drift_accounts (accounts that dbstate grants apply would change to match --desired-grants, 0 when
  in line) and dbstate_grants_read_errors_total, refresh and discovery durations and counts,
  dbstate_exporter_build_info.
  GET /metrics, /healthz (the process runs), /readyz (a seed answered, and every instance has been read once)

Each instance is read in the background every --refresh-interval, at most --parallel at once, each read bounded
by --instance-timeout; a scrape serves the last reads, so one slow or hung instance never delays the others.
With --seed the tree is rediscovered every --discovery-interval; with --instances exactly those are watched.

--desired-grants is a file as for dbstate grants plan (password files relative to it, prune honoured). The grants
read needs SELECT on mysql.* for the exporter's account (GRANT SELECT ON mysql.* TO ...); without it the exporter
logs that once per instance, counts dbstate_grants_read_errors_total, exports no grants drift for the instance and
keeps its other metrics. No password or hash reaches a log line or a metric.

Runs in the foreground. SIGTERM or SIGINT shuts down gracefully; SIGHUP reloads the --desired-vars and
--desired-grants files (a file that does not parse keeps the running one, the error is logged and
dbstate_exporter_config_last_reload_successful turns 0).

Examples:
  dbstate exporter --listen 127.0.0.1:9104 --defaults-file dbstate.cnf --seed 127.0.0.1:3306 --desired-vars examples/dbstate/vars.yml
  dbstate exporter --listen 127.0.0.1:9104 --defaults-file dbstate.cnf --instances 127.0.0.1:3306,127.0.0.1:3307 --desired-grants examples/dbstate/grants.yml
  curl -s 127.0.0.1:9104/metrics | grep '^dbstate_'
  kill -HUP $(pidof dbstate)    # reload the desired files
`

func runExporter(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const prog = "exporter"
	fs := cli.NewFlagSet("dbstate exporter", exporterUsage, stderr)
	var cn conn
	cn.register(fs)
	var ss seeds
	fs.Var(&ss, "seed", "discover the instances from this one, host:port or socket path (repeatable)")
	instances := fs.String("instances", "", "exactly these instances, host:port, comma-separated (instead of --seed)")
	listen := fs.String("listen", "", "address to serve /metrics, /healthz and /readyz on, e.g. 127.0.0.1:9104 (required)")
	desiredVars := fs.String("desired-vars", "", "desired variables (YAML, as for dbstate vars) whose drift to export")
	desiredGrants := fs.String("desired-grants", "", "desired users, roles and grants (YAML, as for dbstate grants) whose drift to export; needs SELECT on mysql.*")
	def := exporter.DefaultConfig()
	refresh := fs.Duration("refresh-interval", def.RefreshInterval, "how often each instance is read")
	timeout := fs.Duration("instance-timeout", def.InstanceTimeout, "bound for one instance's read; slower is down")
	disco := fs.Duration("discovery-interval", def.DiscoveryInterval, "how often the tree is crawled again from the seeds")
	par := fs.Int("parallel", def.Parallel, "instances read at once")
	maxInst := fs.Int("max-instances", def.MaxInstances, "bound on the instances watched (and the instance label)")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	if *listen == "" {
		return fail(stderr, prog, cli.Usagef("--listen is required"))
	}
	if *refresh <= 0 || *timeout <= 0 || *disco <= 0 || *par < 1 || *maxInst < 1 {
		return fail(stderr, prog, cli.Usagef("--refresh-interval, --instance-timeout and --discovery-interval must be positive, --parallel and --max-instances at least 1"))
	}
	insts, err := splitInstances(*instances)
	if err != nil {
		return fail(stderr, prog, err)
	}
	if (len(ss) == 0) == (len(insts) == 0) {
		return fail(stderr, prog, cli.Usagef("give either --seed or --instances"))
	}
	load := func() (*dbstate.DesiredVars, error) {
		if *desiredVars == "" {
			return nil, nil
		}
		return readDesiredVars(*desiredVars)
	}
	loadGrants := func() (*dbstate.DesiredGrants, func(string) (string, error), error) {
		if *desiredGrants == "" {
			return nil, nil, nil
		}
		return loadDesired(*desiredGrants)
	}
	if _, err := load(); err != nil {
		return fail(stderr, prog, err)
	}
	if _, _, err := loadGrants(); err != nil {
		return fail(stderr, prog, err)
	}
	cfg := exporter.Config{Seeds: ss, Instances: insts, RefreshInterval: *refresh, InstanceTimeout: *timeout,
		DiscoveryInterval: *disco, Parallel: *par, MaxInstances: *maxInst, Version: cli.Version()}
	if err := cfg.Validate(); err != nil {
		return fail(stderr, prog, cli.Usagef("%v", err))
	}
	c, _, logger, err := cn.client(stderr)
	if err != nil {
		return fail(stderr, prog, err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e, err := exporter.New(c, cfg, reg, logger)
	if err != nil {
		return fail(stderr, prog, err)
	}
	if err := e.Reload(load, loadGrants); err != nil {
		return fail(stderr, prog, err)
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: promLog{logger}, Timeout: 10 * time.Second}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !e.Ready() {
			http.Error(w, "not ready: no seed has answered yet, or the first read of every instance has not ended", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fail(stderr, prog, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}

	ctx, stop := cli.SignalContext(ctx)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	errc := make(chan error, 1)
	runDone := make(chan struct{})
	go func() { errc <- srv.Serve(ln) }()
	go func() { e.Run(runCtx); close(runDone) }()
	logger.Info("serving", "listen", ln.Addr().String(), "seeds", len(ss), "instances", len(insts),
		"desired_vars", *desiredVars, "desired_grants", *desiredGrants, "refresh_interval", *refresh, "instance_timeout", *timeout, "version", cli.Version())
	code := cli.ExitOK
loop:
	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down")
			break loop
		case <-hup:
			if err := e.Reload(load, loadGrants); err != nil {
				logger.Error("reload failed; keeping the running desired files", "err", err)
				continue
			}
			logger.Info("reloaded the desired files", "desired_vars", *desiredVars, "desired_grants", *desiredGrants)
		case err := <-errc:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("stopped", "err", err)
				code = cli.ExitFailure
			}
			break loop
		}
	}
	cancelRun()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		logger.Error("http shutdown", "err", err)
	}
	<-runDone // reads in flight end within --instance-timeout
	logger.Info("stopped")
	return code
}

// promLog sends promhttp's errors (a failed gather or write) to the logger.
type promLog struct{ l *slog.Logger }

func (p promLog) Println(v ...any) { p.l.Error("metrics", "err", fmt.Sprint(v...)) }
