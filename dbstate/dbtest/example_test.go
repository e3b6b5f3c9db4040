package dbtest_test

import (
	"testing"

	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// TestExample is how a test of yours uses dbtest: build a topology from a description, write, wait for the
// replicas, inject a fault, and check what your code makes of it. Everything is gone after the test.
func TestExample(t *testing.T) {
	topo := dbtest.Build(t, "a>b a>c") // a is the primary; b and c replicate from it by GTID
	a, b, c := topo.Get("a"), topo.Get("b"), topo.Get("c")

	a.Exec(t, "CREATE TABLE test.t (id INT PRIMARY KEY)", "INSERT INTO test.t VALUES (1)")
	b.WaitCaughtUp(t, a)
	c.WaitCaughtUp(t, a)
	if got := b.QueryString(t, "SELECT COUNT(*) FROM test.t"); got != "1" {
		t.Fatalf("b has %s rows", got)
	}

	// Faults: a stopped SQL thread, then an errant transaction on c.
	b.StopSQLThread(t)
	if s := b.SlaveStatus(t); s["Slave_SQL_Running"] != "No" || s["Seconds_Behind_Master"] != "" {
		t.Fatalf("status: %v", s)
	}
	b.StartSQLThread(t)
	c.ErrantTransaction(t)

	// Connect your own code with the admin account over TCP (or as root over a.Socket).
	t.Logf("connect to %s as %s (password dbtest.AdminPassword)", a.Addr(), dbtest.AdminUser)
}
