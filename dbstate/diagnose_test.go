package dbstate

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// topo builds a topology from instances; replicas are healthy GTID replicas unless changed by mod.
func testTopo(t *testing.T, edges map[string]string, mod func(map[string]*Instance)) *Topology {
	t.Helper()
	tp := &Topology{Instances: map[string]*Instance{}}
	id := uint32(0)
	add := func(a string) {
		if _, ok := tp.Instances[a]; ok {
			return
		}
		id++
		tp.Instances[a] = &Instance{Addr: a, Vars: Vars{ServerID: id, ReadOnly: true, LogBin: true, LogSlaveUpdates: true,
			BinlogFormat: "ROW", GTIDBinlogPos: MustParsePosition("0-1-10"), GTIDCurrentPos: MustParsePosition("0-1-10")}}
	}
	for r, m := range edges {
		add(r)
		add(m)
	}
	for r, m := range edges {
		zero := int64(0)
		tp.Instances[r].Master = m
		tp.Instances[r].Replication = &ReplicaStatus{MasterHost: strings.Split(m, ":")[0], MasterPort: 1, IORunning: "Yes",
			SQLRunning: "Yes", SecondsBehind: &zero, UsingGTID: "Slave_Pos"}
		tp.Instances[m].Replicas = append(tp.Instances[m].Replicas, r)
	}
	for a, in := range tp.Instances {
		if in.Replication == nil {
			in.ReadOnly = false
			tp.Roots = append(tp.Roots, a)
		}
	}
	if mod != nil {
		mod(tp.Instances)
	}
	return tp
}

func TestDiagnose(t *testing.T) {
	// Addresses are "name:1" so that ReplicaStatus.MasterAddr() matches the Master field.
	tree := map[string]string{"b:1": "a:1", "c:1": "a:1", "d:1": "c:1"}
	tests := []struct {
		name string
		mod  func(map[string]*Instance)
		want []string // "instance kind"
	}{
		{name: "healthy", want: nil},
		{name: "sql thread stopped, lag NULL", mod: func(m map[string]*Instance) {
			m["b:1"].Replication.SQLRunning, m["b:1"].Replication.SecondsBehind = "No", nil
		}, want: []string{"b:1 replication-stopped"}},
		{name: "sql error", mod: func(m map[string]*Instance) {
			m["c:1"].Replication.SQLRunning, m["c:1"].Replication.LastSQLErrno, m["c:1"].Replication.LastSQLError = "No", 1062, "dup"
		}, want: []string{"c:1 replication-broken"}},
		{name: "io connecting", mod: func(m map[string]*Instance) { m["d:1"].Replication.IORunning = "Connecting" },
			want: []string{"d:1 replication-broken"}},
		{name: "lag", mod: func(m map[string]*Instance) { lag := int64(60); m["b:1"].Replication.SecondsBehind = &lag },
			want: []string{"b:1 lag"}},
		{name: "two writable", mod: func(m map[string]*Instance) { m["d:1"].ReadOnly = false },
			want: []string{"a:1 multiple-writable", "d:1 multiple-writable"}},
		{name: "no gtid", mod: func(m map[string]*Instance) { m["c:1"].Replication.UsingGTID = "No" },
			want: []string{"c:1 no-gtid"}},
		{name: "errant on intermediate", mod: func(m map[string]*Instance) {
			m["c:1"].GTIDBinlogPos = MustParsePosition("0-3-11") // c is server 3? ids are assigned in map order: set it
			m["c:1"].ServerID = 3
		}, want: []string{"c:1 errant-gtid"}},
		{name: "intermediate without log_slave_updates", mod: func(m map[string]*Instance) { m["c:1"].LogSlaveUpdates = false },
			want: []string{"c:1 no-binlog"}},
		{name: "unreachable", mod: func(m map[string]*Instance) { m["d:1"].Error = "connection refused" },
			want: []string{"d:1 unreachable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := testTopo(t, tree, tt.mod)
			var got []string
			for _, p := range Diagnose(tp, DiagnoseOptions{MaxLag: 10 * time.Second}) {
				got = append(got, p.Instance+" "+string(p.Kind))
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") || tp.Problems == nil {
				t.Fatalf("problems %v, want %v", tp.Problems, tt.want)
			}
		})
	}
	t.Run("loop", func(t *testing.T) {
		tp := testTopo(t, map[string]string{"x:1": "y:1", "y:1": "z:1", "z:1": "x:1"}, nil)
		ps := Diagnose(tp, DiagnoseOptions{})
		if len(ps) != 1 || ps[0].Kind != ProblemLoop || ps[0].Detail != "replication loop (each replicates from the next): x:1 -> y:1 -> z:1 -> x:1" {
			t.Fatalf("problems %v", ps)
		}
		var b strings.Builder
		tp.WriteTree(&b)
		if !strings.Contains(b.String(), "(in a loop)") || !strings.Contains(b.String(), "already shown") {
			t.Fatalf("tree:\n%s", b.String())
		}
	})
}

func TestWriteTree(t *testing.T) {
	tp := testTopo(t, map[string]string{"b:1": "a:1", "c:1": "b:1"}, func(m map[string]*Instance) {
		m["c:1"].Replication.SQLRunning, m["c:1"].Replication.SecondsBehind = "No", nil
		m["a:1"].Version = "10.11.19-MariaDB-log"
	})
	Diagnose(tp, DiagnoseOptions{})
	var b strings.Builder
	if err := tp.WriteTree(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"a:1 [primary] server_id=",
		"  b:1 [replica] server_id=",
		"    c:1 [replica] server_id=",
		"      !! replication-stopped: SQL thread is not running (io=Yes)",
		"3 instances, 1 problems",
	}
	if len(lines) != len(want) {
		t.Fatalf("tree:\n%s", b.String())
	}
	for k := range want {
		if !strings.HasPrefix(lines[k], want[k]) {
			t.Fatalf("line %d = %q, want prefix %q\n%s", k, lines[k], want[k], b.String())
		}
	}
	if !strings.Contains(lines[0], " rw 10.11.19 ") || !strings.Contains(lines[2], "lag=NULL") {
		t.Fatalf("tree:\n%s", b.String())
	}
}

func TestCheckMoveRefusesNoBinlog(t *testing.T) {
	tp := testTopo(t, map[string]string{"b:1": "a:1", "c:1": "a:1"}, func(m map[string]*Instance) { m["b:1"].LogBin = false })
	Diagnose(tp, DiagnoseOptions{})
	_, err := CheckMove(tp, MoveOptions{Replica: "c:1", Under: "b:1"})
	if err == nil || !strings.Contains(err.Error(), "log_bin=OFF") {
		t.Fatalf("err = %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{name: "switchover ok", err: SwitchoverOptions{Primary: "db1:3306", Candidate: "db2:3306"}.Validate()},
		{name: "move ok", err: MoveOptions{Replica: "db1:3306", Under: "[::1]:3307"}.Validate()},
	}
	for _, tt := range tests {
		if tt.err != nil {
			t.Errorf("%s: %v", tt.name, tt.err)
		}
	}
	bad := []struct {
		name string
		err  error
	}{
		{name: "no port", err: SwitchoverOptions{Primary: "db1", Candidate: "db2:3306"}.Validate()},
		{name: "bad fence", err: SwitchoverOptions{Primary: "db1:1", Candidate: "db2:1", Fence: "maybe"}.Validate()},
		{name: "negative", err: SwitchoverOptions{Primary: "db1:1", Candidate: "db2:1", MaxLag: -1}.Validate()},
		{name: "move empty", err: MoveOptions{Under: "db2:1"}.Validate()},
		{name: "move bad port", err: MoveOptions{Replica: "db1:x", Under: "db2:1"}.Validate()},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, ErrInvalidValue) {
				t.Fatalf("err = %v, want ErrInvalidValue", tt.err)
			}
		})
	}
}

func TestDelayedReplicas(t *testing.T) {
	sec := func(n int64) *int64 { return &n }
	for _, tt := range []struct {
		behind *int64
		delay  int64
		want   string
	}{{sec(13), 20, "0s"}, {sec(25), 20, "5s"}, {sec(3), 0, "3s"}, {nil, 20, "NULL"}} {
		r := &ReplicaStatus{SecondsBehind: tt.behind, SQLDelay: tt.delay}
		if got := r.LagString(); got != tt.want {
			t.Errorf("behind %v delay %d: lag %s, want %s", tt.behind, tt.delay, got, tt.want)
		}
	}
	delayed := func(addr string, behind, delay int64) func(map[string]*Instance) {
		return func(in map[string]*Instance) {
			in[addr].Replication.SecondsBehind, in[addr].Replication.SQLDelay = &behind, delay
		}
	}
	edges := map[string]string{"y:1": "x:1", "z:1": "x:1"}
	t.Run("a delayed replica 13s behind with MASTER_DELAY=20 is neither lagging nor a reason to refuse", func(t *testing.T) {
		tp := testTopo(t, edges, delayed("z:1", 13, 20))
		if ps := Diagnose(tp, DiagnoseOptions{}); len(ps) != 0 {
			t.Fatalf("problems: %v", ps)
		}
		if _, err := CheckSwitchover(tp, SwitchoverOptions{Primary: "x:1", Candidate: "y:1"}); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		tp.WriteTree(&b)
		if !strings.Contains(b.String(), "z:1 [replica]") || !strings.Contains(b.String(), "lag=0s delayed=20s") {
			t.Fatalf("tree:\n%s", b.String())
		}
	})
	t.Run("lag beyond the delay counts", func(t *testing.T) {
		tp := testTopo(t, edges, delayed("z:1", 35, 20))
		if ps := Diagnose(tp, DiagnoseOptions{}); len(ps) != 1 || ps[0].Kind != ProblemLag {
			t.Fatalf("problems: %v", ps)
		}
		if _, err := CheckSwitchover(tp, SwitchoverOptions{Primary: "x:1", Candidate: "y:1"}); !errors.Is(err, ErrLagTooHigh) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a delayed candidate is refused", func(t *testing.T) {
		tp := testTopo(t, edges, delayed("y:1", 0, 20))
		if _, err := CheckSwitchover(tp, SwitchoverOptions{Primary: "x:1", Candidate: "y:1"}); !errors.Is(err, ErrDelayedCandidate) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestErrantAgainst(t *testing.T) {
	for _, tt := range []struct {
		name, replica, primary, want string
	}{
		{"replicated, behind", "0-1-5", "0-1-9", ""},
		{"replicated, caught up", "0-1-9", "0-1-9", ""},
		{"a write with the primary's server id", "0-1-10", "0-1-9", "0-1-10"},
		{"a write with its own server id", "0-2-10", "0-1-9", "0-2-10"},
		{"diverged at the same sequence", "0-2-9", "0-1-9", "0-2-9"},
		{"a domain the primary lacks", "0-1-9,7-2-1", "0-1-9", "7-2-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Position(ErrantAgainst(MustParsePosition(tt.replica), MustParsePosition(tt.primary))).String()
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckSwitchoverRefusesWhatIsNotAFullCopy(t *testing.T) {
	edges := map[string]string{"y:1": "x:1", "z:1": "x:1"}
	t.Run("a candidate with replication filters", func(t *testing.T) {
		tp := testTopo(t, edges, func(in map[string]*Instance) {
			in["y:1"].Replication.Filters = map[string]string{"Replicate_Ignore_Table": "evk.w"}
		})
		_, err := CheckSwitchover(tp, SwitchoverOptions{Primary: "x:1", Candidate: "y:1"})
		if !errors.Is(err, ErrReplicationFilter) || !strings.Contains(err.Error(), "Replicate_Ignore_Table=evk.w") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a candidate in another GTID domain", func(t *testing.T) {
		tp := testTopo(t, edges, func(in map[string]*Instance) { in["y:1"].GTIDDomainID = 5 })
		_, err := CheckSwitchover(tp, SwitchoverOptions{Primary: "x:1", Candidate: "y:1"})
		if !errors.Is(err, ErrGTIDDomain) || !strings.Contains(err.Error(), "y:1 has gtid_domain_id=5, x:1 0") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("an instance of the tree that could not be read", func(t *testing.T) {
		tp := testTopo(t, edges, nil)
		tp.Instances["w:1"] = &Instance{Addr: "w:1", Error: "dial tcp: connection refused"}
		_, err := CheckSwitchover(tp, SwitchoverOptions{Primary: "x:1", Candidate: "y:1"})
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "w:1: dial tcp") {
			t.Fatalf("err = %v", err)
		}
		checks, err := CheckSwitchover(tp, SwitchoverOptions{Primary: "x:1", Candidate: "y:1", AllowUnreachable: []string{"w:1"}})
		if err != nil {
			t.Fatalf("allowed unreachable: %v", err)
		}
		var b strings.Builder
		writeChecks(&b, checks)
		if !strings.Contains(b.String(), "w:1 is LEFT BEHIND") {
			t.Fatalf("checks do not say what is left behind:\n%s", b.String())
		}
	})
}
