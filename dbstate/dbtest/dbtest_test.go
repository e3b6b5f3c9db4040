package dbtest

import (
	"database/sql"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

func TestParseDescription(t *testing.T) {
	tests := []struct {
		name    string
		desc    string
		names   []string
		master  map[string]string
		wantErr string
	}{
		{name: "single", desc: "a", names: []string{"a"}, master: map[string]string{}},
		{name: "primary with replicas", desc: "a>b a>c", names: []string{"a", "b", "c"}, master: map[string]string{"b": "a", "c": "a"}},
		{name: "commas", desc: "a>b,b>c", names: []string{"a", "b", "c"}, master: map[string]string{"b": "a", "c": "b"}},
		{name: "unconnected", desc: "x y", names: []string{"x", "y"}, master: map[string]string{}},
		{name: "empty", desc: "  ", wantErr: "empty"},
		{name: "self", desc: "a>a", wantErr: "itself"},
		{name: "two masters", desc: "a>c b>c", wantErr: "two masters"},
		{name: "loop", desc: "a>b b>a", wantErr: "loop"},
		{name: "triple edge", desc: "a>b>c", wantErr: "want master>replica"},
		{name: "empty name", desc: ">b", wantErr: "bad instance name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names, master, err := ParseDescription(tt.desc)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(names, tt.names) || !reflect.DeepEqual(master, tt.master) {
				t.Fatalf("got %v %v, want %v %v", names, master, tt.names, tt.master)
			}
		})
	}
}

func TestMissingServerNamesPackage(t *testing.T) {
	old := MariadbdPath
	MariadbdPath = "/nonexistent/mariadbd"
	defer func() { MariadbdPath = old }()
	err := checkBinaries()
	if err == nil || !strings.Contains(err.Error(), "mariadb-server") {
		t.Fatalf("err = %v, want a message naming mariadb-server", err)
	}
}

func TestBuildReplicatesAndTearsDown(t *testing.T) {
	var dirs []string
	var pids []int
	t.Run("build", func(t *testing.T) {
		start := time.Now()
		tp := Build(t, "a>b a>c")
		t.Logf("3 instances with replication ready in %v", time.Since(start))
		a, b, c := tp.Get("a"), tp.Get("b"), tp.Get("c")
		a.Exec(t, "CREATE TABLE test.t (id INT PRIMARY KEY)", "INSERT INTO test.t VALUES (1),(2)")
		b.WaitCaughtUp(t, a)
		c.WaitCaughtUp(t, a)
		if got := c.QueryString(t, "SELECT COUNT(*) FROM test.t"); got != "2" {
			t.Fatalf("replica has %s rows, want 2", got)
		}
		if got := b.QueryString(t, "SELECT @@read_only"); got != "1" {
			t.Fatalf("replica read_only = %s", got)
		}
		// Faults: a stopped SQL thread, an errant transaction, a kill and restart.
		b.StopSQLThread(t)
		if got := b.SlaveStatus(t)["Slave_SQL_Running"]; got != "No" {
			t.Fatalf("Slave_SQL_Running = %s", got)
		}
		b.StartSQLThread(t)
		c.ErrantTransaction(t)
		if pos := c.QueryString(t, "SELECT @@gtid_binlog_pos"); !strings.Contains(pos, "-"+itoa(c.ServerID)+"-") {
			t.Fatalf("errant transaction not in c's binlog: %s", pos)
		}
		b.Kill(t)
		if b.Running() {
			t.Fatal("b still running after Kill")
		}
		b.Restart(t)
		a.Exec(t, "INSERT INTO test.t VALUES (3)")
		b.WaitCaughtUp(t, a)
		for _, i := range tp.Instances {
			dirs = append(dirs, i.base)
			pids = append(pids, i.cmd.Process.Pid)
		}
	})
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left behind after cleanup", d)
		}
	}
	for _, p := range pids {
		if exec.Command("kill", "-0", itoa(p)).Run() == nil {
			t.Errorf("mariadbd pid %d still running after cleanup", p)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestResolveNames(t *testing.T) {
	tp := BuildOpts(t, "a", Options{ResolveNames: true})
	a := tp.Get("a")
	if got := a.QueryString(t, "SELECT @@skip_name_resolve"); got != "0" {
		t.Fatalf("skip_name_resolve = %s, want 0", got)
	}
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = AdminUser, AdminPassword, "tcp", a.Addr()
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var host string
	if err := db.QueryRow("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()").Scan(&host); err != nil {
		t.Fatal(err)
	}
	// The point of the option: a TCP client from 127.0.0.1 is named, not shown by address.
	if !strings.HasPrefix(host, "localhost:") {
		t.Fatalf("process list host of a TCP session from 127.0.0.1 = %q, want localhost:PORT", host)
	}
}
