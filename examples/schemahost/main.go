// Command schemahost serves the demo schema repositories (primary and secondary) the way the real schema hosts
// do with nginx's JSON autoindex, as several hosts on loopback, for trying schemasync and canary by hand.
//
//	go run ./examples/schemahost --listen 127.0.0.1:8201,127.0.0.1:8202,127.0.0.1:8203,127.0.0.1:8204
//
// Each host also takes, for simulating a deployment on that host alone:
//
//	curl -X POST 'http://127.0.0.1:8201/admin/put?repo=primary&title=test/event&version=1.1.0'
//	curl -X POST 'http://127.0.0.1:8201/admin/remove?repo=primary&title=test/event&version=1.1.0'
//	curl -X POST 'http://127.0.0.1:8201/admin/down'   (answers 503 to everything else)   .../admin/up
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8201,127.0.0.1:8202,127.0.0.1:8203,127.0.0.1:8204", "comma-separated addresses, one host each")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	primary, secondary := schemarepo.Demo(), schemarepo.New()
	secondary.Put("legacy/thing", "1.0.0", schemarepo.Doc("legacy/thing", "1.0.0"))
	var servers []*http.Server
	for _, addr := range strings.Split(*listen, ",") {
		h := newHost(map[string]*schemarepo.Repo{"primary": primary.Clone(), "secondary": secondary.Clone()})
		srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Fatal(err)
			}
		}()
		fmt.Printf("schema host at http://%s/repositories/{primary,secondary}/jsonschema/\n", addr)
	}
	<-ctx.Done()
	for _, s := range servers {
		_ = s.Close()
	}
}

type host struct {
	repos map[string]*schemarepo.Repo
	serve http.Handler
	down  atomic.Bool
}

func newHost(repos map[string]*schemarepo.Repo) *host {
	return &host{repos: repos, serve: schemarepo.NewHost(repos)}
}

func (h *host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/admin/") {
		if h.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		h.serve.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	repo := h.repos[q.Get("repo")]
	switch r.URL.Path {
	case "/admin/down":
		h.down.Store(true)
	case "/admin/up":
		h.down.Store(false)
	case "/admin/put", "/admin/remove":
		title, version := q.Get("title"), q.Get("version")
		if repo == nil || title == "" || version == "" {
			http.Error(w, "need repo (primary or secondary), title and version", http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/admin/put" {
			repo.Put(title, version, schemarepo.Doc(title, version))
		} else {
			repo.Remove(title, version)
		}
	default:
		http.NotFound(w, r)
		return
	}
	fmt.Fprintln(w, "ok")
}
