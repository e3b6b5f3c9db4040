package dbstate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// The least privileges of dbstate's account, as dbtest.LeastPrivilegeGrants and dbtest.ReadGrant (and the
// README) give them.
var (
	readGrants   = grantedPrivileges(dbtest.ReadGrant)
	changeGrants = grantedPrivileges(dbtest.LeastPrivilegeGrants[0])
)

// grantedPrivileges is the privilege list of "GRANT a, b ON *.* TO %s".
func grantedPrivileges(grant string) []string {
	list, _, _ := strings.Cut(strings.TrimPrefix(grant, "GRANT "), " ON ")
	return strings.Split(list, ", ")
}

// createAccount creates user@'127.0.0.1' on the primary (it replicates) with privs on *.* and, when
// selectMySQL, SELECT on mysql.*.
func createAccount(t testing.TB, p *dbtest.Instance, user string, privs []string, selectMySQL bool) *dbstate.Client {
	t.Helper()
	p.Exec(t, fmt.Sprintf("CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY 'pw'", user))
	if len(privs) > 0 {
		p.Exec(t, fmt.Sprintf("GRANT %s ON *.* TO '%s'@'127.0.0.1'", strings.Join(privs, ", "), user))
	}
	if selectMySQL {
		p.Exec(t, fmt.Sprintf("GRANT SELECT ON mysql.* TO '%s'@'127.0.0.1'", user))
	}
	c := dbstate.NewClient(dbstate.Credentials{User: user, Password: "pw"}, 3*time.Second, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

func without(privs []string, drop string) []string {
	var out []string
	for _, p := range privs {
		if p != drop {
			out = append(out, p)
		}
	}
	return out
}

// TestPrivileges: the least-privilege account of the README can switch over and back; each missing privilege
// is refused at preflight, naming it and the instance, with nothing changed; topology show says "lacks
// privilege", not unreachable.
func TestPrivileges(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 2)
	p, r1, r2 := tp.Get("p"), tp.Get("r1"), tp.Get("r2")
	all := []*dbtest.Instance{p, r1, r2}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := newClient(t)
	createAppAccounts(t, p)

	cases := []struct{ user, drop string }{{"no_mysql_select", "SELECT ON mysql"}}
	for k, priv := range changeGrants {
		cases = append(cases, struct{ user, drop string }{fmt.Sprintf("lacks%d", k), priv})
	}
	clients := map[string]*dbstate.Client{}
	for _, cs := range cases {
		clients[cs.user] = createAccount(t, p, cs.user, without(changeGrants, cs.drop), cs.drop != "SELECT ON mysql")
	}
	least := createAccount(t, p, "least", changeGrants, true)
	// The same privileges through a default role, granted a nested role with part of them.
	p.Exec(t, "CREATE ROLE dbstate_inner", "CREATE ROLE dbstate_role",
		"GRANT "+strings.Join(changeGrants[:4], ", ")+" ON *.* TO dbstate_inner",
		"GRANT "+strings.Join(changeGrants[4:], ", ")+" ON *.* TO dbstate_role", "GRANT SELECT ON mysql.* TO dbstate_role",
		"GRANT dbstate_inner TO dbstate_role")
	viaRole := createAccount(t, p, "viarole", nil, false)
	p.Exec(t, "GRANT dbstate_role TO 'viarole'@'127.0.0.1'", "SET DEFAULT ROLE dbstate_role FOR 'viarole'@'127.0.0.1'")
	ro := createAccount(t, p, "readonly", readGrants, false)
	noMonitor := createAccount(t, p, "nomonitor", []string{"REPLICATION MASTER ADMIN"}, false)
	for _, r := range []*dbtest.Instance{r1, r2} {
		r.WaitCaughtUp(t, p)
	}
	before := p.QueryString(t, "SELECT @@gtid_binlog_pos")

	for _, cs := range cases {
		t.Run("switchover without "+cs.drop, func(t *testing.T) {
			c := clients[cs.user]
			_, err := dbstate.PlanSwitchover(ctx, c, discover(t, c, p.Addr()), dbstate.SwitchoverOptions{
				Primary: p.Addr(), Candidate: r1.Addr(), Replication: replCreds()})
			var re *dbstate.RefusalError
			if !errors.As(err, &re) || !errors.Is(err, dbstate.ErrMissingPrivilege) || !strings.Contains(err.Error(), cs.drop) {
				t.Fatalf("err = %v, want a refusal naming %s", err, cs.drop)
			}
			named := false
			for _, in := range []*dbtest.Instance{p, r1} {
				named = named || strings.Contains(err.Error(), "on "+in.Addr()+" lacks") || strings.Contains(err.Error(), in.Addr()+": lacks privilege")
			}
			if !named {
				t.Fatalf("the refusal does not say on which instance: %v", err)
			}
		})
	}
	t.Run("move without REPLICATION SLAVE ADMIN", func(t *testing.T) {
		c := clients[fmt.Sprintf("lacks%d", 2)] // changeGrants[2]
		_, err := dbstate.PlanMove(ctx, c, discover(t, c, p.Addr()), dbstate.MoveOptions{Replica: r2.Addr(), Under: r1.Addr()})
		if !errors.Is(err, dbstate.ErrMissingPrivilege) || !strings.Contains(err.Error(), r2.Addr()+" lacks REPLICATION SLAVE ADMIN") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("nothing changed", func(t *testing.T) {
		if got := p.QueryString(t, "SELECT @@gtid_binlog_pos"); got != before || p.QueryString(t, "SELECT @@read_only") != "0" {
			t.Fatalf("primary changed: %s -> %s", before, got)
		}
		assertOriginal(t, admin, p, []*dbtest.Instance{r1, r2})
	})
	t.Run("read-only account reads the tree, and is refused a move", func(t *testing.T) {
		topo := discover(t, ro, p.Addr())
		if len(topo.Instances) != 3 || len(topo.Problems) != 0 {
			t.Fatalf("topology: %+v", topo.Problems)
		}
		_, err := dbstate.PlanMove(ctx, ro, topo, dbstate.MoveOptions{Replica: r2.Addr(), Under: r1.Addr()})
		if !errors.Is(err, dbstate.ErrMissingPrivilege) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("topology show says lacks privilege, not unreachable", func(t *testing.T) {
		topo := discover(t, noMonitor, p.Addr())
		var b strings.Builder
		topo.WriteTree(&b)
		if !hasProblem(topo, p.Addr(), dbstate.ProblemPrivilege) || hasProblem(topo, p.Addr(), dbstate.ProblemUnreachable) ||
			!strings.Contains(b.String(), "LACKS PRIVILEGE") || strings.Contains(b.String(), "UNREACHABLE") || !strings.Contains(b.String(), "SLAVE MONITOR") {
			t.Fatalf("%+v\n%s", topo.Problems, b.String())
		}
	})
	t.Run("privileges through a default role and a nested role count", func(t *testing.T) {
		if _, err := dbstate.PlanSwitchover(ctx, viaRole, discover(t, viaRole, p.Addr()), dbstate.SwitchoverOptions{
			Primary: p.Addr(), Candidate: r1.Addr(), Replication: replCreds()}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the least privileges switch over and back", func(t *testing.T) {
		for _, step := range [][2]*dbtest.Instance{{p, r1}, {r1, p}} {
			// The admin account (ALL PRIVILEGES) that the test reads with would stay locked on the demoted
			// primary: an operator's admin or monitoring account is named with NeverLock.
			never := append(slices.Clone(testbedNeverLock),
				dbstate.Account{User: "least", Host: "127.0.0.1"})
			_, audit, err := switchover(t, least, step[0], step[1], dbstate.SwitchoverOptions{NeverLock: never}, nil)
			if err != nil {
				t.Fatalf("%v\naudit:\n%s", err, audit)
			}
			assertSwitched(t, admin, step[1], all)
		}
	})
}
