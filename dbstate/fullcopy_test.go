package dbstate_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// TestSwitchoverRefusesWhatIsNotAFullCopy on real MariaDB: a candidate with a replication filter, a replica
// that dbstate cannot read, a wrong replication password, a candidate in another GTID domain, and a replica with
// a transaction that carries the primary's server id are each refused before anything changes, naming the
// instance.
func TestSwitchoverRefusesWhatIsNotAFullCopy(t *testing.T) {
	t.Parallel()
	tp := dbtest.BuildWith(t, "p>a p>b p>c", map[string][]string{"a": {"--replicate-ignore-table=test.skipped"}})
	p, a, b, cc := tp.Get("p"), tp.Get("a"), tp.Get("b"), tp.Get("c")
	createAppAccounts(t, p)
	for _, r := range []*dbtest.Instance{a, b, cc} {
		r.WaitCaughtUp(t, p)
	}
	// A new client each time: connections opened while b's grants were revoked keep what they had.
	refused := func(t *testing.T, y *dbtest.Instance, want error, names string) {
		t.Helper()
		_, _, err := switchover(t, newClient(t), p, y, dbstate.SwitchoverOptions{}, nil)
		var re *dbstate.RefusalError
		if !errors.As(err, &re) || !errors.Is(err, want) || !strings.Contains(err.Error(), names) {
			t.Fatalf("err = %v, want a refusal with %v naming %s", err, want, names)
		}
	}
	t.Run("a candidate with a replication filter", func(t *testing.T) {
		refused(t, a, dbstate.ErrReplicationFilter, "Replicate_Ignore_Table=test.skipped")
		assertOriginal(t, newClient(t), p, []*dbtest.Instance{a, b, cc})
	})
	t.Run("a replica that dbstate cannot read", func(t *testing.T) {
		for _, h := range []string{"127.0.0.1", "localhost"} {
			oneSession(t, b, "SET SESSION sql_log_bin=0", "REVOKE ALL PRIVILEGES, GRANT OPTION FROM '"+dbtest.AdminUser+"'@'"+h+"'")
		}
		refused(t, cc, dbstate.ErrMissingPrivilege, b.Addr())
		for _, h := range []string{"127.0.0.1", "localhost"} {
			oneSession(t, b, "SET SESSION sql_log_bin=0", "GRANT ALL ON *.* TO '"+dbtest.AdminUser+"'@'"+h+"' WITH GRANT OPTION")
		}
		assertOriginal(t, newClient(t), p, []*dbtest.Instance{a, b, cc})
	})
	t.Run("a wrong replication password", func(t *testing.T) {
		_, _, err := switchover(t, newClient(t), p, cc, dbstate.SwitchoverOptions{
			Replication: dbstate.Credentials{User: dbtest.ReplUser, Password: "wrong"}}, nil)
		if !errors.Is(err, dbstate.ErrReplicationLogin) || !strings.Contains(err.Error(), "1045") {
			t.Fatalf("err = %v, want ErrReplicationLogin", err)
		}
		assertOriginal(t, newClient(t), p, []*dbtest.Instance{a, b, cc})
	})
	t.Run("a candidate in another GTID domain", func(t *testing.T) {
		cc.Exec(t, "SET GLOBAL gtid_domain_id=5")
		refused(t, cc, dbstate.ErrGTIDDomain, cc.Addr()+" has gtid_domain_id=5")
		cc.Exec(t, "SET GLOBAL gtid_domain_id=0")
		assertOriginal(t, newClient(t), p, []*dbtest.Instance{a, b, cc})
	})
	t.Run("an errant transaction with the primary's server id", func(t *testing.T) {
		oneSession(t, b, "SET SESSION server_id="+strconv.Itoa(p.ServerID), "CREATE TABLE test.errant (id INT)")
		refused(t, cc, dbstate.ErrErrantGTID, b.Addr()+" has 0-"+strconv.Itoa(p.ServerID)+"-")
		if p.QueryString(t, "SELECT @@read_only") != "0" {
			t.Fatal("a refused switchover changed the primary")
		}
	})
}

// oneSession runs statements as root on one connection of in, and puts the session settings the tests change
// back before the connection returns to the pool.
func oneSession(t *testing.T, in *dbtest.Instance, stmts ...string) {
	t.Helper()
	conn, err := in.DB().Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range append(stmts, "SET SESSION sql_log_bin=1", "SET SESSION server_id=@@GLOBAL.server_id") {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s on %s: %v", s, in.Name, err)
		}
	}
}

// TestSwitchoverUsesTheOperatorsAddresses: the candidate reports a report_host that does not resolve. dbstate
// connects to the addresses the operator gave, and the old primary and the moved replica replicate from the
// candidate by that address.
func TestSwitchoverUsesTheOperatorsAddresses(t *testing.T) {
	t.Parallel()
	tp := dbtest.BuildWith(t, "p>a p>b", map[string][]string{"a": {"--report-host=nonexistent.invalid"}})
	p, a, b := tp.Get("p"), tp.Get("a"), tp.Get("b")
	c := newClient(t)
	ctx := context.Background()
	topo, err := dbstate.Discover(ctx, c, []string{p.Addr(), a.Addr()}, dbstate.DiscoverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := dbstate.PlanSwitchover(ctx, c, topo, dbstate.SwitchoverOptions{Primary: p.Addr(), Candidate: a.Addr(), Replication: replCreds(), NeverLock: testbedNeverLock})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	plan.WriteText(&text)
	if strings.Contains(text.String(), "MASTER_HOST='nonexistent.invalid'") {
		t.Fatalf("the plan names the candidate by its report_host:\n%s", text.String())
	}
	if err := plan.Execute(ctx, dbstate.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*dbtest.Instance{p, b} {
		st := r.SlaveStatus(t)
		if st["Master_Host"] != "127.0.0.1" || st["Master_Port"] != strconv.Itoa(a.Port) || st["Slave_SQL_Running"] != "Yes" {
			t.Fatalf("%s replicates from %s:%s (sql %s)", r.Name, st["Master_Host"], st["Master_Port"], st["Slave_SQL_Running"])
		}
	}
}
