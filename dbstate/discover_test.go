package dbstate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

func TestDiscoverPrimaryWithThreeReplicas(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 3)
	p := tp.Get("p")
	c := newClient(t)
	for _, seed := range []struct {
		name string
		addr string
	}{{"primary", p.Addr()}, {"replica", tp.Get("r2").Addr()}, {"unix socket", p.Socket}} {
		t.Run("seed "+seed.name, func(t *testing.T) {
			topo := discover(t, c, seed.addr)
			if len(topo.Instances) != 4 {
				t.Fatalf("found %d instances, want 4", len(topo.Instances))
			}
			if len(topo.Roots) != 1 || topo.Roots[0] != p.Addr() {
				t.Fatalf("roots = %v, want [%s]", topo.Roots, p.Addr())
			}
			if len(topo.Problems) != 0 {
				t.Fatalf("problems in a healthy topology: %v", topo.Problems)
			}
			for _, r := range []string{"r1", "r2", "r3"} {
				in := topo.Instances[tp.Get(r).Addr()]
				if in == nil || in.Master != p.Addr() || !in.ReadOnly || in.ServerID != uint32(tp.Get(r).ServerID) {
					t.Fatalf("%s: %+v", r, in)
				}
				if in.Replication.SecondsBehind == nil || in.Replication.UsingGTID != "Slave_Pos" {
					t.Fatalf("%s replication: %+v", r, in.Replication)
				}
			}
		})
	}
	t.Run("tree and json", func(t *testing.T) {
		topo := discover(t, c, p.Addr())
		var b strings.Builder
		if err := topo.WriteTree(&b); err != nil {
			t.Fatal(err)
		}
		tree := b.String()
		t.Log("\n" + tree)
		lines := strings.Split(tree, "\n")
		if !strings.HasPrefix(lines[0], p.Addr()+" [primary]") || !strings.HasPrefix(lines[1], "  127.0.0.1:") {
			t.Fatalf("tree:\n%s", tree)
		}
		js, err := json.Marshal(topo)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecrets(t, "tree", tree)
		assertNoSecrets(t, "json", string(js))
		var back dbstate.Topology
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		if back.Instances[p.Addr()].GTIDBinlogPos.String() != topo.Instances[p.Addr()].GTIDBinlogPos.String() {
			t.Fatal("JSON round trip lost the GTID position")
		}
	})
	// Faults, in an order that keeps the topology usable: stopped SQL thread (NULL lag), lag, a second writable
	// instance, then an errant transaction (which cannot be taken back).
	t.Run("stopped SQL thread", func(t *testing.T) {
		r1 := tp.Get("r1")
		r1.StopSQLThread(t)
		defer r1.StartSQLThread(t)
		topo := discover(t, c, p.Addr())
		if !hasProblem(topo, r1.Addr(), dbstate.ProblemStopped) {
			t.Fatalf("problems: %v", topo.Problems)
		}
		if lag := topo.Instances[r1.Addr()].Replication.SecondsBehind; lag != nil {
			t.Fatalf("Seconds_Behind_Master = %d, want NULL", *lag)
		}
	})
	t.Run("multiple writable", func(t *testing.T) {
		r3 := tp.Get("r3")
		r3.Exec(t, "SET GLOBAL read_only=0")
		defer r3.Exec(t, "SET GLOBAL read_only=1")
		topo := discover(t, c, p.Addr())
		if !hasProblem(topo, r3.Addr(), dbstate.ProblemMultiWritable) || !hasProblem(topo, p.Addr(), dbstate.ProblemMultiWritable) {
			t.Fatalf("problems: %v", topo.Problems)
		}
	})
	t.Run("errant transaction", func(t *testing.T) {
		r2 := tp.Get("r2")
		r2.ErrantTransaction(t)
		topo := discover(t, c, p.Addr())
		if !hasProblem(topo, r2.Addr(), dbstate.ProblemErrant) {
			t.Fatalf("problems: %v", topo.Problems)
		}
		var b strings.Builder
		topo.WriteTree(&b)
		if !strings.Contains(b.String(), "!! errant-gtid") {
			t.Fatalf("tree does not mark the errant GTID:\n%s", b.String())
		}
	})
}

func TestDiscoverChain(t *testing.T) {
	t.Parallel()
	tp := dbtest.Chain(t, 3)
	c := newClient(t)
	// Seeded from the middle: crawls up to c1 and down to c3.
	topo := discover(t, c, tp.Get("c2").Addr())
	c1, c2, c3 := tp.Get("c1").Addr(), tp.Get("c2").Addr(), tp.Get("c3").Addr()
	if len(topo.Instances) != 3 || len(topo.Roots) != 1 || topo.Roots[0] != c1 {
		t.Fatalf("instances %d roots %v", len(topo.Instances), topo.Roots)
	}
	if topo.Instances[c2].Master != c1 || topo.Instances[c3].Master != c2 {
		t.Fatalf("chain not found: c2->%s c3->%s", topo.Instances[c2].Master, topo.Instances[c3].Master)
	}
	if d := topo.Descendants(c1); len(d) != 2 {
		t.Fatalf("descendants of c1: %v", d)
	}
	if len(topo.Problems) != 0 {
		t.Fatalf("problems: %v", topo.Problems)
	}
	t.Run("replica without GTID", func(t *testing.T) {
		c3 := tp.Get("c3")
		c3.Exec(t, "STOP SLAVE", "CHANGE MASTER TO MASTER_USE_GTID=no", "START SLAVE")
		defer c3.Exec(t, "STOP SLAVE", "CHANGE MASTER TO MASTER_USE_GTID=slave_pos", "START SLAVE")
		// START SLAVE returns before c3's IO thread has registered with c2 again, and until it has, c2's
		// SHOW SLAVE HOSTS does not name c3, so a crawl from c2 does not reach it yet.
		waitUntil(t, 15*time.Second, func() error {
			topo, err := dbstate.Discover(context.Background(), c, []string{c2}, dbstate.DiscoverOptions{})
			if err != nil {
				return err
			}
			if !hasProblem(topo, c3.Addr(), dbstate.ProblemNoGTID) {
				return fmt.Errorf("problems: %v", topo.Problems)
			}
			return nil
		})
	})
	t.Run("lag", func(t *testing.T) {
		// Real lag, not an intended delay (MASTER_DELAY is not lag): c2's SQL thread waits for a table lock.
		defer holdLag(t, tp.Get("c2"), tp.Get("c1"), "lag")()
		waitUntil(t, 15*time.Second, func() error {
			topo, err := dbstate.Discover(context.Background(), c, []string{c1}, dbstate.DiscoverOptions{Diagnose: dbstate.DiagnoseOptions{MaxLag: time.Second}})
			if err != nil {
				return err
			}
			if !hasProblem(topo, c2, dbstate.ProblemLag) {
				return fmt.Errorf("no lag diagnosed yet: %v", topo.Problems)
			}
			return nil
		})
	})
	t.Run("loop", func(t *testing.T) {
		// c1 replicating from c3 closes a loop c1 -> c2 -> c3 -> c1.
		tp.Get("c1").ReplicateFrom(t, tp.Get("c3"))
		defer tp.Get("c1").Exec(t, "STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0")
		topo := discover(t, c, c2)
		found := false
		for _, p := range topo.Problems {
			if p.Kind == dbstate.ProblemLoop {
				found = true
			}
		}
		if !found {
			t.Fatalf("no loop diagnosed: %v", topo.Problems)
		}
		var b strings.Builder
		topo.WriteTree(&b)
		t.Log("\n" + b.String())
	})
}

func TestDiscoverTwoInstancesOnOneHost(t *testing.T) {
	t.Parallel()
	tp := dbtest.Build(t, "a>b")
	a, b := tp.Get("a"), tp.Get("b")
	c := newClient(t)
	topo := discover(t, c, b.Addr())
	if len(topo.Instances) != 2 {
		t.Fatalf("found %d instances", len(topo.Instances))
	}
	ia, ib := topo.Instances[a.Addr()], topo.Instances[b.Addr()]
	if ia == nil || ib == nil || ib.Master != a.Addr() || ia.Port == ib.Port {
		t.Fatalf("a=%+v b=%+v", ia, ib)
	}
	if strings.Split(a.Addr(), ":")[0] != strings.Split(b.Addr(), ":")[0] {
		t.Fatal("instances are not on one host")
	}
	if len(topo.Problems) != 0 {
		t.Fatalf("problems: %v", topo.Problems)
	}
	t.Run("one server under several names is one instance", func(t *testing.T) {
		other := fmt.Sprintf("[::ffff:127.0.0.1]:%d", a.Port)
		topo := discover(t, c, other, fmt.Sprintf("localhost:%d", b.Port), b.Socket)
		if len(topo.Instances) != 2 || topo.Resolve(other) != a.Addr() || topo.Resolve(fmt.Sprintf("localhost:%d", b.Port)) != b.Addr() {
			t.Fatalf("instances %d, aliases %v", len(topo.Instances), topo.Aliases)
		}
		if _, err := dbstate.CheckSwitchover(topo, dbstate.SwitchoverOptions{Primary: other, Candidate: fmt.Sprintf("localhost:%d", b.Port)}); err != nil {
			t.Fatalf("switchover by other names: %v", err)
		}
	})
	t.Run("switchover with no other replica, and back", func(t *testing.T) {
		a.Exec(t, "CREATE TABLE test.two (id INT PRIMARY KEY)", "INSERT INTO test.two VALUES (1)")
		for _, pair := range [][2]*dbtest.Instance{{a, b}, {b, a}} {
			if _, audit, err := switchover(t, c, pair[0], pair[1], dbstate.SwitchoverOptions{}, nil); err != nil {
				t.Fatalf("%s -> %s: %v\n%s", pair[0].Name, pair[1].Name, err, audit)
			}
			assertSwitched(t, c, pair[1], []*dbtest.Instance{a, b})
			pair[1].Exec(t, fmt.Sprintf("INSERT INTO test.two VALUES (%d)", pair[1].ServerID+10))
		}
		b.WaitCaughtUp(t, a)
		if got := b.QueryString(t, "SELECT COUNT(*) FROM test.two"); got != "3" {
			t.Fatalf("b has %s rows, want 3", got)
		}
	})
}
