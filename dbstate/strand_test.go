package dbstate_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// TestSwitchoverNeverStrandsAndVerifiesItsRollback, on one testbed p>a p>b:
//   - b hung (SIGSTOP: still registered with p, answering nothing): a switchover of p to a is refused before
//     anything changes, naming b; left out of the plan, b would go on replicating from the demoted primary;
//   - with b named as allowed unreachable, the switchover proceeds, its preflight says b is LEFT BEHIND, and
//     the plan warns of the accounts that --never-lock exempts (root@localhost here);
//   - a rollback says "rolled back" only after reading the servers back: an ALL PRIVILEGES session (root) writes
//     to the candidate while it still replicates (the write that the old primary would lack), the switchover
//     fails before the promotion, every undo succeeds, and the error says "rollback NOT VERIFIED", naming the
//     candidate and the transaction the primary lacks.
func TestSwitchoverNeverStrandsAndVerifiesItsRollback(t *testing.T) {
	// Not parallel: its client's statement timeout is short (2 s, so that the hung replica costs little), which
	// healthy statements could miss with the other switchover suites running beside it on 2 cores.
	tp := dbtest.Build(t, "p>a p>b")
	p, a, b := tp.Get("p"), tp.Get("a"), tp.Get("b")
	p.Exec(t, "CREATE TABLE test.strand (id INT PRIMARY KEY)")
	a.WaitCaughtUp(t, p)
	b.WaitCaughtUp(t, p)
	c := boundedClient(t) // a hung b costs its 2 s connect timeout per read, not forever
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	b.Pause(t)
	paused := true
	defer func() {
		if paused {
			b.Resume(t)
		}
	}()
	t.Run("a hung replica is refused, named", func(t *testing.T) {
		_, _, err := switchover(t, c, p, a, dbstate.SwitchoverOptions{}, nil)
		var re *dbstate.RefusalError
		if !errors.As(err, &re) || !errors.Is(err, dbstate.ErrUnreachable) || !strings.Contains(err.Error(), b.Addr()) {
			t.Fatalf("err = %v, want a refusal with ErrUnreachable naming %s", err, b.Addr())
		}
		t.Log(err)
		if p.QueryString(t, "SELECT @@read_only") != "0" || a.QueryString(t, "SELECT @@read_only") != "1" {
			t.Fatal("a refused switchover changed something")
		}
	})
	t.Run("allowed unreachable: proceeds, leaving it behind", func(t *testing.T) {
		plan, err := planSwitchover(ctx, t, c, p, a, dbstate.SwitchoverOptions{AllowUnreachable: []string{b.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		plan.WriteText(&text)
		if !strings.Contains(text.String(), b.Addr()+" is LEFT BEHIND") {
			t.Fatalf("the plan does not say that b is left behind:\n%s", text.String())
		}
		if !strings.Contains(text.String(), "NOT CHECKED, unreadable (allowed unreachable): "+b.Addr()) {
			t.Fatalf("the errant check does not name b as not checked:\n%s", text.String())
		}
		if w := strings.Join(plan.Warnings, "\n"); !strings.Contains(w, "'root'@'localhost'") || !strings.Contains(w, "never locked (--never-lock)") ||
			!strings.Contains(w, "split brain") {
			t.Fatalf("no warning of the risk of the --never-lock account root@localhost: %q", plan.Warnings)
		}
		if err := plan.Execute(ctx, dbstate.ExecOptions{User: "test"}); err != nil {
			t.Fatal(err)
		}
		b.Resume(t)
		paused = false
		// As left: b still replicates from p, the demoted primary, which replicates from a.
		if st := b.SlaveStatus(t); st["Master_Port"] != p.QueryString(t, "SELECT @@port") {
			t.Fatalf("b replicates from port %s, want p's", st["Master_Port"])
		}
		a.Exec(t, "INSERT INTO test.strand VALUES (1)")
		p.WaitCaughtUp(t, a)
		b.WaitCaughtUp(t, a)
	})
	if t.Failed() {
		return
	}
	t.Run("a rollback that finds a transaction the primary lacks is NOT VERIFIED", func(t *testing.T) {
		// Now a is the primary, p its replica (and b p's). Switch a to p; before the final wait, root (never
		// locked here) writes to p, the candidate, while it still replicates; then the switchover fails.
		_, audit, err := switchover(t, c, a, p, dbstate.SwitchoverOptions{}, func(_ context.Context, s *dbstate.Step) error {
			if s.Name == "wait-for-candidate" {
				p.Exec(t, "INSERT INTO test.strand VALUES (2)")
				return errors.New("injected fault")
			}
			return nil
		})
		var ee *dbstate.ExecError
		if !errors.As(err, &ee) || ee.RolledBack || ee.VerifyErr == nil || len(ee.UndoErrs) != 0 || !strings.Contains(err.Error(), "rollback NOT VERIFIED") ||
			!strings.Contains(ee.VerifyErr.Error(), p.Addr()+" has ") || !strings.Contains(ee.VerifyErr.Error(), "which "+a.Addr()+" lacks") {
			t.Fatalf("err = %v, want every undo done and the rollback NOT VERIFIED, naming %s\naudit:\n%s", err, p.Addr(), audit)
		}
		t.Log(err)
		if !strings.Contains(audit, `"phase":"verify","result":"failed"`) {
			t.Fatalf("the audit log does not record the failed verification:\n%s", audit)
		}
		// Everything that was undone is as it was: a writable, p replicating from it.
		if a.QueryString(t, "SELECT @@read_only") != "0" || p.QueryString(t, "SELECT @@read_only") != "1" {
			t.Fatal("the undo did not restore the roles")
		}
	})
}
