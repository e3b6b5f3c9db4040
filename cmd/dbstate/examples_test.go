package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/dbstate"
)

// TestExampleOpsFiles keeps the dbstate ops files in examples/ working: the Prometheus configuration passes
// promtool, the systemd unit's command line parses and names a user that its comment says how to create, and the
// desired-variables examples parse.
func TestExampleOpsFiles(t *testing.T) {
	t.Chdir("../..")
	t.Run("prometheus config", func(t *testing.T) {
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			t.Fatal("promtool not found: install the Debian package prometheus (make deps)")
		}
		if out, err := exec.Command(promtool, "check", "config", "examples/prometheus/dbstate-prometheus.yml").CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("systemd unit", func(t *testing.T) {
		b, err := os.ReadFile("examples/systemd/dbstate-exporter.service")
		if err != nil {
			t.Fatal(err)
		}
		unit := string(b)
		if !strings.Contains(unit, "User=dbstate-exporter") || !strings.Contains(unit, "useradd --system --no-create-home --shell /usr/sbin/nologin dbstate-exporter") {
			t.Fatal("the unit must name its user and say how to create it")
		}
		_, after, _ := strings.Cut(unit, "ExecStart=/usr/local/bin/dbstate ")
		line, _, _ := strings.Cut(strings.ReplaceAll(after, "\\\n", " "), "\n")
		args := append(strings.Fields(line), "-h") // parse every flag, then stop before connecting
		var out, errs bytes.Buffer
		if code := run(context.Background(), args, &out, &errs); code != 0 {
			t.Fatalf("dbstate %s: exit %d\n%s", strings.Join(args, " "), code, errs.String())
		}
	})
	t.Run("desired variables", func(t *testing.T) {
		for _, f := range []string{"examples/dbstate/vars.yml", "examples/dbstate/vars-fails-on-replicas.yml"} {
			r, err := os.Open(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = dbstate.ParseDesiredVars(r)
			r.Close()
			if err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	})
}
