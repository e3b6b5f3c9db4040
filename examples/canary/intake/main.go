// Command intake runs the EventGate-compatible intake (internal/eventgate) on loopback, for trying the canary
// by hand against the schema hosts of examples/schemahost:
//
//	go run ./examples/canary/intake --listen 127.0.0.1:8292 \
//	    --schema-base-uri http://127.0.0.1:8202/repositories/primary/jsonschema \
//	    --stream test.event=test/event --stream mediawiki.page_change.v1=mediawiki/page/change
//
// It accepts POST /v1/events and answers as EventGate does (201, 202 with ?hasty=true, 207, 400, 500), and logs
// every rejected event with its reason. GET /v1/received lists what it received, with each event's outcome.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/evenkeel/evenkeel/internal/eventgate/fakeintake"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "intake:", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:8292", "address to serve on")
	var bases, streams list
	flag.Var(&bases, "schema-base-uri", "schema base URI, tried in order (repeatable; default http://127.0.0.1:8202/repositories/primary/jsonschema)")
	flag.Var(&streams, "stream", "allowed stream as name=schema_title (repeatable; default the demo streams)")
	flag.Parse()
	if len(bases) == 0 {
		bases = list{"http://127.0.0.1:8202/repositories/primary/jsonschema"}
	}
	if len(streams) == 0 {
		streams = list{
			"test.event=test/event",
			"mediawiki.page_change.v1=mediawiki/page/change",
			"eventgate-analytics.link_suggestion_interaction=analytics/mediawiki/structured_task/article/link_suggestion_interaction",
		}
	}
	cfg := fakeintake.Config{SchemaBaseURIs: bases, Streams: map[string]string{}}
	for _, s := range streams {
		name, title, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("--stream %q: want name=schema_title", s)
		}
		cfg.Streams[name] = title
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	g, err := fakeintake.New(cfg, fakeintake.Options{Logger: logger})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/", g)
	mux.HandleFunc("GET /v1/received", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(g.Received())
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	logger.Info("intake listening", "addr", *listen, "schema_base_uris", bases.String(), "streams", len(cfg.Streams))
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
