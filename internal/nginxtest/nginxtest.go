// Package nginxtest starts a real nginx (Debian's nginx-light) for tests, serving directories the way schema
// hosts do: /repositories/<name>/ with "autoindex on; autoindex_format json;", on 127.0.0.1 only. A missing
// nginx fails the test with the name of the package to install; it never skips.
package nginxtest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running nginx.
type Server struct {
	URL    string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	exited chan error
}

// Binary returns the nginx binary's path, or an error that names the Debian package.
func Binary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("nginx not found: install the Debian package nginx-light (apt-get install nginx-light, or make deps)")
}

// Start starts nginx serving each repos[name] directory at /repositories/<name>/, and stops it when the test
// ends. Its workers run as the user running the test (root, usually): to see what a host's permissions do,
// such as a chmod 000 file answering 403, run them unprivileged with StartWith and Options.User.
func Start(t testing.TB, repos map[string]string) *Server {
	t.Helper()
	return StartWith(t, repos, Options{})
}

// Options tune the nginx that StartWith starts. Zero values keep nginx's defaults (one worker).
type Options struct {
	// Workers is worker_processes. Default 1.
	Workers int
	// KeepaliveRequests is keepalive_requests, the requests served on one connection before nginx closes it.
	// Default nginx's own (1000).
	KeepaliveRequests int
	// User runs the workers as this unprivileged user (e.g. "nobody") with its primary group, as a schema
	// host's nginx does, so that file permissions apply: a file the user cannot read answers 403. It needs
	// the test to run as root (nginx ignores the directive otherwise, and its workers then run as the test's
	// own user, which is unprivileged already). StartWith makes every served directory's ancestors
	// traversable by others (t.TempDir creates them 0700); the served trees themselves must be readable by
	// others (0755 directories, 0644 files), as a host's checkout is. Empty: the test's own user.
	User string
}

// StartWith is Start with opts.
func StartWith(t testing.TB, repos map[string]string, opts Options) *Server {
	t.Helper()
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.KeepaliveRequests < 1 {
		opts.KeepaliveRequests = 1000
	}
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	userLine := "user root;"
	if opts.User != "" {
		u, err := user.Lookup(opts.User)
		if err != nil {
			t.Fatalf("nginx worker user: %v", err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatalf("nginx worker group: %v", err)
		}
		userLine = fmt.Sprintf("user %s %s;", u.Username, g.Name)
		for _, dir := range repos {
			if err := traversable(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		dir := t.TempDir()
		if opts.User != "" {
			if err := traversable(filepath.Join(dir, "body")); err != nil { // nginx's temp paths
				t.Fatal(err)
			}
		}
		s, err := start(bin, dir, userLine, repos, opts)
		if err == nil {
			t.Cleanup(s.stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("starting nginx: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// traversable adds search (x) permission for group and others to every ancestor of dir below the temporary
// directory (t.TempDir creates them 0700), so that an unprivileged worker can reach dir. An ancestor outside
// it that others cannot search is an error: nginxtest changes nothing outside the temporary directory.
func traversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		return err
	}
	for p := filepath.Dir(abs); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o001 == 0 {
			if rel, err := filepath.Rel(tmp, p); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
				return fmt.Errorf("nginx workers run unprivileged, and cannot reach %s through %s (mode %s): serve a directory under %s",
					abs, p, perm, tmp)
			}
			if err := os.Chmod(p, perm|0o011); err != nil {
				return err
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func start(bin, dir, userLine string, repos map[string]string, opts Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(repos))
	for n := range repos {
		names = append(names, n)
	}
	sort.Strings(names)
	var locs strings.Builder
	for _, n := range names {
		abs, err := filepath.Abs(repos[n])
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&locs, "    location /repositories/%s/ { alias %s/; autoindex on; autoindex_format json; }\n", n, abs)
	}
	conf := fmt.Sprintf(`daemon off;
%[6]s
worker_processes %[4]d;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  keepalive_requests %[5]d;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  types { text/plain yaml md json; }
  default_type text/plain;
  server {
    listen 127.0.0.1:%[2]d;
%[3]s  }
}
`, dir, port, locs.String(), opts.Workers, opts.KeepaliveRequests, userLine)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", confPath, "-p", dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, exited: exited}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			return nil, fmt.Errorf("nginx exited: %v: %s", err, strings.TrimSpace(string(log)))
		default:
		}
		resp, err := http.Get(s.URL + "/")
		if err == nil {
			resp.Body.Close()
			return s, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return nil, errors.New("nginx did not answer within 10s")
}

// stop ends nginx (master and workers, by process group) and waits for it to exit.
func (s *Server) stop() {
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.exited
	}
}
