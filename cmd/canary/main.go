// Command canary sends one canary event per stream, at the schema version schemasync reports as rolled out
// everywhere, and reports per stream what succeeded and what failed. See the canary package.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evenkeel/evenkeel/canary"
	"github.com/evenkeel/evenkeel/internal/cli"
	"github.com/evenkeel/evenkeel/internal/safetext"
)

func main() {
	ctx, stop := cli.SignalContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const about = "produce canary events at schema versions that are rolled out everywhere"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Dispatch(ctx, "canary", about, []cli.Command{
		{Name: "run", Summary: "send one canary event per stream and report the results", Run: runCmd},
		{Name: "check-config", Summary: "validate a config file (and its stream config) without sending anything", Run: checkConfigCmd},
	}, args, stdout, stderr)
}

const runUsage = `
Usage: canary run --config FILE [--json] [--dry-run] [--version-source safe|latest]

For each stream: ask schemasync for the safe version of its schema, fetch that version from the schema base
URIs, build an event from the schema's examples[0] (meta.domain "canary"), validate it, and POST it to every
destination intake. Only 201 and 202 count as success.

Exit status: 0 when every stream succeeded, 1 when any failed, 2 for a usage or config error.

Examples:
  canary run --config /etc/evenkeel/canary.yml
  canary run --config canary.yml --json | jq '.[] | select(.ok | not)'
  canary run --config canary.yml --dry-run
  canary run --config canary.yml --textfile /var/lib/prometheus/node-exporter/canary.prom
  canary run --config canary.yml --version-source latest   # the old behaviour, to reproduce the incident
`

const checkUsage = `
Usage: canary check-config --config FILE [--json]

Parse and validate the config (unknown keys are errors), read the stream config if one is named, and list the
streams a run would cover. Nothing is sent.

Exit status: 0 when the config and every stream are fine; 1 when the config is valid but some stream cannot
run (listed as PROBLEM: a run fails that stream at step config and still runs the others) or the stream config
cannot be read right now; 2 for a usage or config error (a run would exit 2 too).

Examples:
  canary check-config --config /etc/evenkeel/canary.yml
  canary check-config --config canary.yml --json
`

type common struct {
	config, logLevel, logFormat string
	json                        bool
}

func (c *common) register(fsFlags interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
}) {
	fsFlags.StringVar(&c.config, "config", "", "YAML config file (required)")
	fsFlags.BoolVar(&c.json, "json", false, "print results as JSON on stdout")
	fsFlags.StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn or error (logs go to stderr)")
	fsFlags.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
}

// load reads the config file, applies override (the command's flags, when it has any) and validates the
// result once: a flag can supply what the file lacks (--version-source latest needs no schemasync nodes).
func (c *common) load(stderr io.Writer, override func(*canary.Config)) (canary.Config, *slog.Logger, error) {
	logger, err := cli.NewLogger(stderr, c.logLevel, c.logFormat)
	if err != nil {
		return canary.Config{}, nil, err
	}
	if c.config == "" {
		return canary.Config{}, nil, cli.Usagef("--config is required")
	}
	cfg, err := canary.ReadConfig(c.config)
	if err != nil {
		return cfg, nil, &cli.UsageError{Err: err}
	}
	if override != nil {
		override(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, cli.Usagef("%s: config: %w", c.config, err)
	}
	return cfg, logger, nil
}

func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("canary run", runUsage, stderr)
	var c common
	c.register(fs)
	dryRun := fs.Bool("dry-run", false, "build and validate the events, but post nothing")
	source := fs.String("version-source", "", "safe (ask schemasync) or latest (read <first base uri>/<title>/latest); default: the config's version_source, else safe")
	textfile := fs.String("textfile", "", "write metrics to this node_exporter textfile (*.prom), atomically; overrides the config's textfile")
	pushgateway := fs.String("pushgateway", "", "push metrics to this Pushgateway URL; overrides the config's pushgateway")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	cfg, logger, err := c.load(stderr, func(cfg *canary.Config) {
		if *source != "" {
			cfg.VersionSource = canary.VersionSource(*source)
		}
		if *dryRun {
			cfg.DryRun = true
		}
		if *textfile != "" {
			cfg.Textfile = *textfile
		}
		if *pushgateway != "" {
			cfg.Pushgateway = *pushgateway
		}
	})
	if err != nil {
		fmt.Fprintf(stderr, "canary run: %v\n", err)
		return cli.ExitCode(err)
	}
	runner, err := canary.NewRunner(cfg, canary.Options{Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "canary run: %v\n", err)
		return cli.ExitUsage
	}
	results, err := runner.Run(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "canary run: %v\n", err)
		var sce *canary.StreamConfigError
		if errors.As(err, &sce) && sce.Invalid {
			return cli.ExitUsage
		}
		return cli.ExitFailure
	}
	code := cli.ExitOK
	for _, r := range results {
		if !r.OK {
			code = cli.ExitFailure
		}
	}
	if c.json {
		if results == nil {
			results = []canary.Result{}
		}
		if err := cli.WriteJSON(stdout, results); err != nil {
			fmt.Fprintf(stderr, "canary run: %v\n", err)
			return cli.ExitFailure
		}
	} else {
		writeTable(stdout, results)
	}
	if cfg.DryRun {
		return code // a dry run is not a canary run: it records no metrics
	}
	if cfg.Textfile != "" {
		warn, err := canary.WriteTextfile(cfg.Textfile, results)
		if warn != nil {
			logger.Warn("previous textfile unusable: failed streams lose their last-success time", "err", warn)
		}
		if err != nil {
			fmt.Fprintf(stderr, "canary run: writing metrics: %v\n", err)
			code = cli.ExitFailure
		}
	}
	if cfg.Pushgateway != "" {
		err := canary.Push(ctx, results, canary.PushOptions{URL: cfg.Pushgateway, Job: cfg.PushJob, Timeout: cfg.Timeout, Concurrency: cfg.Concurrency})
		if err != nil {
			fmt.Fprintf(stderr, "canary run: pushing metrics: %v\n", err)
			code = cli.ExitFailure
		}
	}
	return code
}

func writeTable(w io.Writer, results []canary.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tSCHEMA\tVERSION\tSOURCE\tRESULT\tTIME\tDETAIL")
	failed := 0
	for _, r := range results {
		result, detail := "ok", ""
		switch {
		case !r.OK:
			failed++
			result = "FAILED"
			detail = r.Error
			var se *canary.StreamError
			if errors.As(r.Err, &se) {
				detail = safetext.Bound(string(se.Step)+": "+safetext.RedactURL(se.Err.Error()), canary.MaxErrorBytes)
			}
		case r.DryRun:
			result = "ok (dry run)"
		}
		var notes []string
		if r.Stale {
			notes = append(notes, "schemasync view stale: safe version held")
		}
		if r.Dirty {
			notes = append(notes, "rollout in progress")
		}
		for _, w := range r.Warnings {
			notes = append(notes, "warning: "+w)
		}
		if len(notes) > 0 {
			if detail != "" {
				detail += "; "
			}
			detail += strings.Join(notes, "; ")
		}
		version := r.Version
		if version == "" {
			version = "-"
		}
		cli.Row(tw, r.Stream, r.SchemaTitle, version, string(r.VersionSource), result,
			r.Duration.Round(time.Millisecond).String(), detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d streams, %d ok, %d failed\n", len(results), len(results)-failed, failed)
}

func checkConfigCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("canary check-config", checkUsage, stderr)
	var c common
	c.register(fs)
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	cfg, logger, err := c.load(stderr, nil)
	if err != nil {
		fmt.Fprintf(stderr, "canary check-config: %v\n", err)
		return cli.ExitCode(err)
	}
	runner, err := canary.NewRunner(cfg, canary.Options{Logger: logger})
	if err != nil {
		fmt.Fprintf(stderr, "canary check-config: %v\n", err)
		return cli.ExitUsage
	}
	streams, err := runner.Streams(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "canary check-config: %v\n", err)
		var sce *canary.StreamConfigError
		if errors.As(err, &sce) && !sce.Invalid {
			return cli.ExitFailure
		}
		return cli.ExitUsage
	}
	type streamOut struct {
		canary.Stream
		Problem string `json:"problem,omitempty"`
	}
	out := struct {
		Config   string      `json:"config"`
		Source   string      `json:"version_source"`
		OK       bool        `json:"ok"`       // the config and every stream are fine
		Problems int         `json:"problems"` // streams that cannot run
		Streams  []streamOut `json:"streams"`
	}{Config: c.config, Source: string(cfg.VersionSource), Streams: []streamOut{}}
	for _, s := range streams {
		shown := s
		shown.Destinations = make([]string, len(s.Destinations))
		for i, d := range s.Destinations {
			shown.Destinations[i] = safetext.RedactURL(d) // as the table shows them
		}
		out.Streams = append(out.Streams, streamOut{Stream: shown, Problem: s.Problem})
		if s.Problem != "" {
			out.Problems++
		}
	}
	out.OK = out.Problems == 0
	code := cli.ExitOK
	if !out.OK {
		code = cli.ExitFailure // the file is valid; some stream is not runnable
	}
	if c.json {
		if err := cli.WriteJSON(stdout, out); err != nil {
			fmt.Fprintf(stderr, "canary check-config: %v\n", err)
			return cli.ExitFailure
		}
		return code
	}
	if out.OK {
		fmt.Fprintf(stdout, "%s: ok, version source %s, %d streams\n", c.config, cfg.VersionSource, len(streams))
	} else {
		fmt.Fprintf(stdout, "%s: valid, but %d of %d streams cannot run (a run fails them at step config and runs the others), version source %s\n",
			c.config, out.Problems, len(streams), cfg.VersionSource)
	}
	for _, s := range streams {
		if s.Problem != "" {
			fmt.Fprintf(stdout, "  %s (%s): PROBLEM: %s\n", safetext.Escape(s.Name), safetext.Escape(s.SchemaTitle), safetext.Escape(s.Problem))
			continue
		}
		fmt.Fprintf(stdout, "  %s (%s) -> %s\n", safetext.Escape(s.Name), safetext.Escape(s.SchemaTitle),
			safetext.Escape(safetext.RedactURL(strings.Join(s.Destinations, ", "))))
	}
	return code
}
