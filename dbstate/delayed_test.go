package dbstate_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// TestSwitchoverKeepsDelayedReplica: a replica with MASTER_DELAY, behind by about its delay, is not lagging
// (lag counts beyond sql_delay), does not make the switchover refuse, is moved under the new primary with its
// delay kept, and topology show marks it delayed.
func TestSwitchoverKeepsDelayedReplica(t *testing.T) {
	t.Parallel()
	tp := dbtest.PrimaryWithReplicas(t, 2)
	p, r1, r2 := tp.Get("p"), tp.Get("r1"), tp.Get("r2")
	createAppAccounts(t, p)
	r1.WaitCaughtUp(t, p)
	r2.WaitCaughtUp(t, p)
	c := newClient(t)
	const delay = 3
	r2.AddLag(t, delay*time.Second)
	// Writes that r2 applies only after its delay: its Seconds_Behind_Master grows to about the delay.
	seq := -1000
	waitUntil(t, 20*time.Second, func() error {
		seq--
		p.Exec(t, fmt.Sprintf("INSERT INTO test.w (seq, via, at) VALUES (%d, 0, NOW(6))", seq))
		if n, _ := strconv.Atoi(r2.SlaveStatus(t)["Seconds_Behind_Master"]); n < 2 {
			return errors.New("r2 not behind by its delay yet")
		}
		return nil
	})
	topo := discover(t, c, p.Addr())
	if hasProblem(topo, r2.Addr(), dbstate.ProblemLag) {
		t.Fatalf("a delayed replica reported as lagging: %v", topo.Problems)
	}
	var tree strings.Builder
	topo.WriteTree(&tree)
	if !strings.Contains(tree.String(), "delayed=3s") {
		t.Fatalf("tree does not mark it delayed:\n%s", tree.String())
	}
	// A bound below the delay: only lag beyond the delay counts.
	_, audit, err := switchover(t, c, p, r1, dbstate.SwitchoverOptions{MaxLag: time.Second}, nil)
	if err != nil {
		t.Fatalf("%v\naudit:\n%s", err, audit)
	}
	assertSwitched(t, c, r1, []*dbtest.Instance{p, r1, r2})
	if got := r2.SlaveStatus(t)["SQL_Delay"]; got != strconv.Itoa(delay) {
		t.Fatalf("SQL_Delay after the switchover = %q, want %d", got, delay)
	}
}
