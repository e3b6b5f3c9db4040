package dbstate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
)

// Positions are compared per domain in Go: MariaDB has no gtid_subset.
func ExampleErrant() {
	master := dbstate.MustParsePosition("0-1-100")
	replica := dbstate.MustParsePosition("0-2-101") // server 2 wrote locally while replicating
	fmt.Println(dbstate.Errant(replica, 2, master))
	fmt.Println(master.Contains(dbstate.MustParsePosition("0-1-99")))
	// Output:
	// [0-2-101]
	// true
}

// CheckSwitchover is pure: a Topology (from Discover, or built by hand as here) goes in, the passed checks or
// every reason to refuse come out.
func ExampleCheckSwitchover() {
	zero := int64(0)
	topo := &dbstate.Topology{Instances: map[string]*dbstate.Instance{
		"db1:3306": {Addr: "db1:3306", Vars: dbstate.Vars{ServerID: 1, BinlogFormat: "ROW", LogBin: true}},
		"db2:3306": {Addr: "db2:3306", Master: "db1:3306", Vars: dbstate.Vars{ServerID: 2, ReadOnly: true, BinlogFormat: "MIXED", LogBin: true},
			Replication: &dbstate.ReplicaStatus{MasterHost: "db1", MasterPort: 3306, IORunning: "Yes", SQLRunning: "Yes",
				SecondsBehind: &zero, UsingGTID: "Slave_Pos"}},
	}}
	_, err := dbstate.CheckSwitchover(topo, dbstate.SwitchoverOptions{Primary: "db1:3306", Candidate: "db2:3306"})
	fmt.Println(errors.Is(err, dbstate.ErrBinlogFormat), errors.Is(err, dbstate.ErrNoBinlog))
	// Output: true true
}

// The Go API: discover, plan, print, execute with an audit log.
func ExampleSwitchover() {
	ctx := context.Background()
	c := dbstate.NewClient(dbstate.Credentials{User: "dba", Password: "from a file, not the source"}, 5*time.Second, nil)
	defer c.Close()
	topo, err := dbstate.Discover(ctx, c, []string{"db1:3306"}, dbstate.DiscoverOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	plan, err := dbstate.PlanSwitchover(ctx, c, topo, dbstate.SwitchoverOptions{Primary: "db1:3306", Candidate: "db2:3306",
		Replication: dbstate.Credentials{User: "repl", Password: "..."}})
	if err != nil {
		fmt.Println(err) // a *RefusalError: errors.Is(err, dbstate.ErrLagTooHigh), ...
		return
	}
	plan.WriteText(os.Stdout)
	if err := plan.Execute(ctx, dbstate.ExecOptions{Audit: os.Stderr}); err != nil {
		var ee *dbstate.ExecError
		if errors.As(err, &ee) && ee.RolledBack {
			fmt.Println("nothing changed:", err)
		}
	}
}
