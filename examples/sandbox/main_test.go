package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/evenkeel/evenkeel/internal/syncbuf"
)

// readmeCommands returns the shell commands of the README's dbstate section (its topology part, up to "dbstate vars
// and exporter", whose commands cmd/dbstate's TestReadmeVarsCommands runs), in order: every line of its ```sh
// blocks.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	start := strings.Index(s, "\n## dbstate")
	if start < 0 {
		t.Fatal("README has no dbstate section")
	}
	s = s[start+1:]
	if end := strings.Index(s, "\n## "); end >= 0 {
		s = s[:end]
	}
	s, _, _ = strings.Cut(s, "\n### dbstate vars and exporter")
	var cmds []string
	in := false
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in && strings.TrimSpace(line) != "":
			cmds = append(cmds, strings.TrimSpace(line))
		}
	}
	return cmds
}

// freeBase finds four consecutive free ports.
func freeBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(40000)
		ok := true
		for k := range 4 {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+k))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no four consecutive free ports")
	return 0
}

// TestSandboxRunsTheREADME starts the sandbox on free ports, runs every dbstate command of the README as written
// (only the ports changed, and the binary built into a temporary directory, where the commands run), under the
// sandbox's write load; then stops it and checks that no acknowledged write was lost and nothing is left behind.
func TestSandboxRunsTheREADME(t *testing.T) {
	cmds := readmeCommands(t)
	if len(cmds) < 10 || cmds[0] != "make sandbox" {
		t.Fatalf("the README's dbstate section should start with the sandbox; commands: %q", cmds)
	}
	base := freeBase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errs syncbuf.Buffer
	ready := make(chan *dbtest.Topology, 1)
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--base-port", strconv.Itoa(base), "--writes", "20"}, &out, &errs, ready)
	}()
	var tp *dbtest.Topology
	select {
	case tp = <-ready:
	case code := <-exit:
		t.Fatalf("sandbox exited %d:\n%s%s", code, out.String(), errs.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("sandbox not up after 3 minutes:\n%s%s", out.String(), errs.String())
	}
	if !strings.Contains(out.String(), "bin/dbstate switchover --defaults-file dbstate.cnf --primary 127.0.0.1:"+strconv.Itoa(base)) {
		t.Fatalf("the sandbox does not print commands to try:\n%s", out.String())
	}

	dir := t.TempDir()
	port := regexp.MustCompile(`127\.0\.0\.1:330([6-9])`)
	for _, c := range cmds[1:] {
		c = port.ReplaceAllStringFunc(c, func(m string) string {
			n, _ := strconv.Atoi(m[len(m)-1:])
			return "127.0.0.1:" + strconv.Itoa(base+n-6)
		})
		cmd := exec.Command("bash", "-c", c)
		cmd.Dir = dir
		if strings.HasPrefix(c, "go build ") {
			// Built from this module, into the directory the other commands run in.
			cmd = exec.Command("bash", "-c", strings.Replace(c, "-o bin/", "-o "+filepath.Join(dir, "bin")+"/", 1))
			cmd.Dir = "../.."
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		t.Logf("$ %s\n%s%s", c, stdout.String(), stderr.String())
		if err != nil {
			t.Fatalf("%s: %v\n%s%s", c, err, stdout.String(), stderr.String())
		}
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if strings.Count(string(audit), `"phase":"plan","result":"ok"`) != 5 {
		t.Fatalf("want 5 successful runs in the audit log (a move, two switchovers, each followed by a recover that lifts the locks it kept on the demoted primary):\n%s", audit)
	}

	cancel()
	var code int
	select {
	case code = <-exit:
	case <-time.After(2 * time.Minute):
		t.Fatal("sandbox did not stop")
	}
	if code != 0 || !strings.Contains(out.String(), "writes the application saw acknowledged are on every instance") {
		t.Fatalf("sandbox exited %d:\n%s%s", code, out.String(), errs.String())
	}
	// Nothing is left behind: no process, no file, every port free again.
	var left []error
	for _, in := range tp.Instances {
		if in.Running() {
			left = append(left, fmt.Errorf("%s still running", in.Name))
		}
		for _, p := range []string{filepath.Dir(in.Dir), in.Socket} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				left = append(left, fmt.Errorf("%s left behind", p))
			}
		}
		if l, err := net.Listen("tcp", in.Addr()); err != nil {
			left = append(left, fmt.Errorf("port of %s still taken: %v", in.Name, err))
		} else {
			l.Close()
		}
	}
	if err := errors.Join(left...); err != nil {
		t.Fatal(err)
	}
}

// TestREADMEGrantsAreTheSandboxGrants: the least privileges the README gives are the ones the sandbox (and
// dbstate's tests) grant.
func TestREADMEGrantsAreTheSandboxGrants(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range append(append([]string{dbtest.ReadGrant}, dbtest.LeastPrivilegeGrants...), dbtest.ReplGrant) {
		acc := "'dbstate'@'%'"
		if g == dbtest.ReplGrant {
			acc = "'repl'@'%'"
		}
		if want := fmt.Sprintf(g, acc) + ";"; !strings.Contains(string(b), want) {
			t.Errorf("README lacks %s", want)
		}
	}
}
