package dbstate_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// hangCase hangs one instance right before one step of a switchover from p to r1 (r2 the other replica).
type hangCase struct {
	step string
	hung string        // p, r1 or r2
	for_ time.Duration // 0: until the switchover returns
	// beforeReadWrite hangs r1 inside promote, right before SET GLOBAL read_only=0 is sent (step is promote).
	beforeReadWrite bool
}

func (c hangCase) String() string {
	how := "until the switchover returns"
	if c.for_ > 0 {
		how = "for " + c.for_.String()
	}
	if c.beforeReadWrite {
		return c.hung + " hung inside promote, right before read_only=0, " + how
	}
	return c.hung + " hung before " + c.step + " " + how
}

// hangBed is the testbed of TestSwitchoverWithAHungInstance, shared by its subtests: p with replicas r1 (the
// candidate) and r2, accounts that bypass read_only (appall, approle), dbstate's own login fenced too, and an
// event on p. Exempt from the fence (NeverLock) are root@localhost, so that the test reads every instance as
// root over the socket, and an operator's break-glass login, which ops (the operator's recover) logs in as:
// dbstate's own login may be left locked on p by an undo that could not reach it.
type hangBed struct {
	c, ops    *dbstate.Client
	p, r1, r2 *dbtest.Instance
	o         dbstate.SwitchoverOptions
}

func (b *hangBed) byName(n string) *dbtest.Instance {
	return map[string]*dbtest.Instance{"p": b.p, "r1": b.r1, "r2": b.r2}[n]
}

func (b *hangBed) all() []*dbtest.Instance { return []*dbtest.Instance{b.p, b.r1, b.r2} }

// pausingServers pauses an instance right before it is sent SET GLOBAL read_only=0 (once).
type pausingServers struct {
	*dbstate.Client
	t     *testing.T
	in    *dbtest.Instance
	for_  time.Duration
	once  sync.Once
	timer **time.Timer
}

func (s *pausingServers) Exec(ctx context.Context, addr string, stmts ...string) error {
	if addr == s.in.Addr() && slices.Contains(stmts, "SET GLOBAL read_only=0") {
		s.once.Do(func() {
			s.in.Pause(s.t)
			if s.for_ > 0 {
				*s.timer = time.AfterFunc(s.for_, func() { s.in.Resume(s.t) })
			}
		})
	}
	return s.Client.Exec(ctx, addr, stmts...)
}

// hangOutcome is one row of the table the test logs.
type hangOutcome struct {
	tc      hangCase
	result  string
	outage  string
	took    time.Duration
	byHand  []string
	errText string
}

// TestSwitchoverWithAHungInstance: the primary p, the candidate r1 or the other replica r2 hangs (SIGSTOP:
// alive, answering nothing) right before each step of a switchover, either until the switchover returns or for
// 4 s (longer than the 3 s window and the 2 s statement timeout), on one testbed with every optional step in the
// plan (move-replica, fence-replica and unfence-replica for r2, disable-events and enable-events for an event,
// fence-own-account for dbstate's own login). Every statement is bounded and so is the window: the switchover
// returns (the test bounds its run: a hang fails it).
//
//   - Before the point of no return it rolls back; when an undo could not reach the hung instance it says so
//     ("rollback INCOMPLETE" or "NOT VERIFIED", never "restored"). Once the instance runs again, the operator
//     redoes what the error names and recover lifts what the audit log says was left: the original topology,
//     nothing locked, the event enabled on p.
//   - Past it (promote made r1 writable), it ends by itself, r1 is the one writable instance, and the error
//     (ExecError.PastPointOfNoReturn) lists the steps that did not complete, which the operator does by hand:
//     then r1 is the primary, p and r2 replicate from it with no errant GTID, nothing is locked, the event runs
//     on r1. The test switches back for the next case.
//
// Every case's outcome, the outage (from read_only=1 on p until p or r1 was writable again, from the audit
// log) and what the operator did by hand are logged as a table at the end. One run on the 2-core test machine
// (go test -race; the whole test 164-165 s):
//
//	case                                   outcome                outage             by hand (then recover)
//	r2 before move-replica, 4 s            rolled back            none               -
//	r1 before move-replica, 4 s            rolled back            none               -
//	r1 before catch-up, 4 s                rolled back            none               -
//	p before catch-up, 4 s                 rolled back            none               -
//	r1 before fence-candidate, 4 s         rolled back            none               -
//	r2 before fence-replica                rollback INCOMPLETE    none               r2 back under p
//	p before fence-writers, 4 s            rolled back            none               -
//	p before disable-events                rollback INCOMPLETE    none               recover: locks on p
//	p before long-writes                   rollback INCOMPLETE    none               recover: locks, events on p
//	p before set-read-only                 rollback INCOMPLETE    none               recover: locks, events on p
//	p before kill-sessions, 4 s            rollback INCOMPLETE    until recover      recover: read_only on p
//	r1 before wait-for-candidate, 4 s      rolled back            2.0 s              -
//	p before wait-for-candidate, 4 s       rollback INCOMPLETE    until recover      recover: read_only on p
//	p before fence-own-account             rollback INCOMPLETE    until recover      recover: locks (dbstate's too), read_only, events on p
//	r1 before promote                      rollback INCOMPLETE    4.0 s              r1 read_only=1, START SLAVE; recover: locks on r1
//	p before promote                       rollback INCOMPLETE    until recover      recover: locks, read_only, events on p
//	r1 inside promote (read_only=0), 4 s   past the point (maybe) until r1 answers   - (reset-candidate sent read_only=0 again); recover
//	r1 before unfence-candidate, 4 s       past the point         0 s                recover: locks on p and r1, events
//	r1 before enable-events, 4 s           past the point         0 s                r1 RESET SLAVE ALL; recover
//	r1 before reset-candidate              past the point         0 s                r1 RESET SLAVE ALL; p START SLAVE (60 s retry); recover
//	p before repoint-old-primary           past the point         0 s                p under r1; recover
//	r1 before repoint-old-primary, 4 s     switched               0 s                -
//	p before verify                        past the point         0 s                p START SLAVE (in one run of two); recover
//	r2 before verify, 4 s                  switched               0 s                -
//	r2 before unfence-replica              past the point         0 s                recover: locks on r2
//
// (No "4 s": hung until the switchover returns. Past the point: the kept locks on the demoted p are lifted by
// recover after every switchover, as the report says.)
func TestSwitchoverWithAHungInstance(t *testing.T) {
	// Not parallel: its statement timeouts are short (2 s), and the other switchover suites running beside it on
	// 2 cores made healthy statements miss them.
	tp := dbtest.PrimaryWithReplicas(t, 2)
	ops, err := dbstate.NewClientWith(dbstate.Credentials{User: "breakglass", Password: appPassword},
		dbstate.ClientOptions{ConnectTimeout: 2 * time.Second, StatementTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ops.Close() })
	b := &hangBed{c: boundedClient(t), ops: ops, p: tp.Get("p"), r1: tp.Get("r1"), r2: tp.Get("r2"),
		o: dbstate.SwitchoverOptions{MaxWindow: 3 * time.Second, Timeout: 4 * time.Second,
			NeverLock: []dbstate.Account{{User: "root", Host: "localhost"}, {User: "breakglass", Host: "127.0.0.1"}}}}
	createAppAccounts(t, b.p)
	b.p.Exec(t, "CREATE USER 'watch'@'localhost' IDENTIFIED BY '"+appPassword+"'", "GRANT SELECT, SLAVE MONITOR ON *.* TO 'watch'@'localhost'",
		"CREATE USER 'breakglass'@'127.0.0.1' IDENTIFIED BY '"+appPassword+"'", "GRANT ALL ON *.* TO 'breakglass'@'127.0.0.1' WITH GRANT OPTION",
		"CREATE TABLE test.tick (id INT PRIMARY KEY, at DATETIME(6))",
		"CREATE DEFINER='root'@'localhost' EVENT test.tick ON SCHEDULE EVERY 1 SECOND DO REPLACE INTO test.tick VALUES (1, NOW(6))")
	for _, in := range b.all() {
		in.Exec(t, "SET GLOBAL event_scheduler=ON")
		if in != b.p {
			in.WaitCaughtUp(t, b.p)
		}
	}

	t.Run("the plan has every step", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		plan, err := planSwitchover(ctx, t, b.c, b.p, b.r1, b.o)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range plan.Steps {
			names = append(names, s.Name)
		}
		want := []string{"move-replica", "catch-up", "fence-candidate", "fence-replica", "fence-writers", "disable-events", "long-writes",
			"set-read-only", "kill-sessions", "wait-for-candidate", "fence-own-account", "promote", "unfence-candidate", "enable-events",
			"reset-candidate", "repoint-old-primary", "unfence-writers", "verify", "unfence-replica"}
		if !slices.Equal(names, want) {
			t.Fatalf("steps %v, want %v", names, want)
		}
	})

	const fixed = 4 * time.Second
	var outcomes []hangOutcome
	for _, tc := range []hangCase{
		{step: "move-replica", hung: "r2", for_: fixed},
		{step: "move-replica", hung: "r1", for_: fixed},
		{step: "catch-up", hung: "r1", for_: fixed},
		{step: "catch-up", hung: "p", for_: fixed},
		{step: "fence-candidate", hung: "r1", for_: fixed},
		{step: "fence-replica", hung: "r2"},
		{step: "fence-writers", hung: "p", for_: fixed},
		{step: "disable-events", hung: "p"},
		{step: "long-writes", hung: "p"},
		{step: "set-read-only", hung: "p"},
		{step: "kill-sessions", hung: "p", for_: fixed},
		{step: "wait-for-candidate", hung: "r1", for_: fixed},
		{step: "wait-for-candidate", hung: "p", for_: fixed},
		{step: "fence-own-account", hung: "p"},
		{step: "promote", hung: "r1"},
		{step: "promote", hung: "p"},
		{step: "promote", hung: "r1", beforeReadWrite: true, for_: fixed},
		{step: "unfence-candidate", hung: "r1", for_: fixed},
		{step: "enable-events", hung: "r1", for_: fixed},
		{step: "reset-candidate", hung: "r1"},
		{step: "repoint-old-primary", hung: "p"},
		{step: "repoint-old-primary", hung: "r1", for_: fixed},
		{step: "verify", hung: "p"},
		{step: "verify", hung: "r2", for_: fixed},
		{step: "unfence-replica", hung: "r2"},
	} {
		t.Run(tc.String(), func(t *testing.T) {
			out := b.hang(t, tc)
			outcomes = append(outcomes, out)
		})
		if t.Failed() {
			break // the testbed may be left in any state
		}
	}

	var tab strings.Builder
	fmt.Fprintf(&tab, "\n%-72s %-32s %-26s %-7s %s\n", "case", "outcome", "outage (p read-only)", "run", "by hand")
	for _, o := range outcomes {
		fmt.Fprintf(&tab, "%-72s %-32s %-26s %-7s %s\n", o.tc, o.result, o.outage, o.took.Round(100*time.Millisecond), orDash(strings.Join(o.byHand, "; ")))
	}
	t.Log(tab.String())

	t.Run("after all that, a switchover completes and reports its window", func(t *testing.T) {
		plan, audit, err := runBounded(t, b.c, b.p, b.r1, b.o, time.Minute, nil)
		if err != nil {
			t.Fatalf("%v\naudit:\n%s", err, audit)
		}
		report := strings.Join(plan.Report(), "\n")
		if !strings.Contains(report, "write-unavailability window: ") || strings.Contains(report, "WARNING") {
			t.Fatalf("report:\n%s", report)
		}
		b.assertSwitched(t, audit)
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// hang runs one case and leaves the testbed in its original topology.
func (b *hangBed) hang(t *testing.T, tc hangCase) hangOutcome {
	out := hangOutcome{tc: tc}
	hung := b.byName(tc.hung)
	var timer *time.Timer
	paused := false
	pause := func() {
		paused = true
		hung.Pause(t)
		if tc.for_ > 0 {
			timer = time.AfterFunc(tc.for_, func() { hung.Resume(t) })
		}
	}
	var s dbstate.Servers = b.c
	hook := func(_ context.Context, st *dbstate.Step) error {
		if st.Name == tc.step && !paused {
			pause()
		}
		return nil
	}
	if tc.beforeReadWrite {
		ps := &pausingServers{Client: b.c, t: t, in: hung, for_: tc.for_, timer: &timer}
		s, hook = ps, func(_ context.Context, st *dbstate.Step) error {
			if st.Name == tc.step {
				paused = true
			}
			return nil
		}
	}
	start := time.Now()
	_, audit, err := runBoundedOn(t, b.c, s, b.p, b.r1, b.o, time.Minute, hook)
	out.took = time.Since(start)
	if timer != nil {
		timer.Stop() // not to resume it in a later case
	}
	hung.Resume(t)
	if !paused {
		t.Fatalf("step %s never ran: %v\naudit:\n%s", tc.step, err, audit)
	}
	out.outage = outage(t, audit)
	for _, in := range b.all() {
		waitUntil(t, 10*time.Second, func() error { return in.ExecErr("SELECT 1") })
	}
	if err != nil {
		out.errText = err.Error()
		t.Logf("%v", err)
	}
	// What the hung instance had in its socket buffer runs once it resumes: whatever happened, never two
	// writable instances.
	time.Sleep(300 * time.Millisecond)
	if w := writable(t, b.all()); len(w) > 1 {
		t.Fatalf("writable once %s resumed: %v (err %v)\naudit:\n%s", hung.Name, w, err, audit)
	}
	var ee *dbstate.ExecError
	switch {
	case err == nil:
		out.result = "switched"
		b.assertSwitched(t, audit)
	case !errors.As(err, &ee):
		t.Fatalf("err = %v, want an ExecError\naudit:\n%s", err, audit)
	case !ee.PastPointOfNoReturn:
		out.result = "rolled back"
		if !ee.RolledBack {
			out.result = "rollback INCOMPLETE"
			if ee.VerifyErr != nil {
				out.result = "rollback NOT VERIFIED"
			}
		}
		if ee.RolledBack != (len(ee.UndoErrs) == 0 && len(ee.CleanupErrs) == 0 && ee.VerifyErr == nil) ||
			ee.RolledBack == (strings.Contains(err.Error(), "INCOMPLETE") || strings.Contains(err.Error(), "NOT VERIFIED")) {
			t.Fatalf("the error does not say truthfully what was undone: %v", err)
		}
		if !strings.Contains(err.Error(), hung.Addr()) {
			t.Fatalf("the error does not name the hung instance %s: %v", hung.Addr(), err)
		}
		out.byHand = b.finishRollback(t, ee, audit)
	default:
		out.result = "past the point of no return"
		if len(ee.Remaining) == 0 || !strings.Contains(err.Error(), "NOT rolled back") {
			t.Fatalf("the error does not say what is left: %v", err)
		}
		out.byHand = b.finishSwitchover(t, ee, audit)
	}
	if out.result == "switched" || strings.HasPrefix(out.result, "past") {
		// Back to the original topology for the next case, as an operator switching back would.
		_, back, err := runBounded(t, b.c, b.r1, b.p, b.o, time.Minute, nil)
		if err != nil {
			t.Fatalf("switching back: %v\naudit:\n%s", err, back)
		}
		liftKept(t, b.ops, back)
		b.assertOriginal(t)
	}
	return out
}

// outage is, from the audit log, how long p was read-only (from right before set-read-only sent read_only=1
// until promote made r1 writable or the undo of set-read-only made p writable again), or why it cannot say.
func outage(t *testing.T, audit string) string {
	t.Helper()
	var from time.Time
	sc := bufio.NewScanner(strings.NewReader(audit))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r dbstate.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Step == "set-read-only" && r.Result == "intent":
			from = r.Time // about to SET GLOBAL read_only=1
		case from.IsZero():
		case r.Step == "promote" && r.Phase == "do" && r.Result == "ok":
			return r.Time.Sub(from).Round(10*time.Millisecond).String() + " (r1 writable)"
		case r.Step == "set-read-only" && r.Phase == "undo" && (r.Result == "ok" || r.Result == "nothing-changed"):
			return r.Time.Sub(from).Round(10*time.Millisecond).String() + " (p writable again)"
		}
	}
	if from.IsZero() {
		return "none"
	}
	return "until done by hand"
}

// finishRollback does by hand what the error of a rollback says was not undone, then recover lifts what the
// audit log says was left, and checks the original topology. It returns what it did by hand.
func (b *hangBed) finishRollback(t *testing.T, ee *dbstate.ExecError, audit string) []string {
	t.Helper()
	var did []string
	msg := ee.Error()
	if strings.Contains(msg, "undo promote on "+b.r1.Addr()) {
		// Promote's undo did not reach r1, and its STOP SLAVE, sent before r1 hung up, may have run when r1
		// resumed: as the error says, make it read-only and start replication.
		b.r1.Exec(t, "SET GLOBAL read_only=1", "START SLAVE")
		did = append(did, "r1: read_only=1, START SLAVE")
	}
	if strings.Contains(msg, "undo move-replica on "+b.r2.Addr()) {
		b.r2.ReplicateFrom(t, b.p)
		did = append(did, "r2: CHANGE MASTER back to p")
	}
	if l, err := dbstate.ReadLeftovers(strings.NewReader(audit), ""); err != nil {
		t.Fatal(err)
	} else if !l.Empty() {
		did = append(did, "recover: "+shortLeftovers(l, b))
	}
	recoverLeftovers(t, b.ops, audit)
	b.assertOriginal(t)
	return did
}

// finishSwitchover checks, past the point of no return, that r1 is the one writable instance and that the
// steps the error lists as not done are the ones that are not, does them by hand, lets recover lift what the
// run kept locked, and checks the switched topology.
func (b *hangBed) finishSwitchover(t *testing.T, ee *dbstate.ExecError, audit string) []string {
	t.Helper()
	left := map[string]bool{}
	for _, r := range ee.Remaining {
		name, _, _ := strings.Cut(r, " ")
		left[name] = true
	}
	waitUntil(t, 10*time.Second, func() error {
		if w := writable(t, b.all()); !slices.Equal(w, []string{"r1"}) && !left["promote"] {
			return fmt.Errorf("writable: %v, want only r1", w)
		}
		return nil
	})
	var did []string
	if left["promote"] {
		// The promotion's read_only=0 got no answer: r1 has every write of p (checked before it was sent), and p
		// is read-only and fenced. Finish it, unless reset-candidate's read_only=0 (or the one in r1's socket
		// buffer) did.
		if b.r1.QueryString(t, "SELECT @@read_only") == "1" {
			b.r1.Exec(t, "SET GLOBAL read_only=0")
			did = append(did, "r1: read_only=0")
		} else {
			did = append(did, "(r1 already writable)")
		}
	}
	if left["reset-candidate"] {
		b.r1.Exec(t, "STOP SLAVE", "RESET SLAVE ALL")
		did = append(did, "r1: RESET SLAVE ALL")
	} else if len(b.r1.SlaveStatus(t)) != 0 {
		t.Fatalf("r1 still has a master, but reset-candidate is not listed as left: %v", ee)
	}
	if p := b.p.SlaveStatus(t); left["repoint-old-primary"] {
		if p["Slave_IO_Running"] == "Yes" && p["Slave_SQL_Running"] == "Yes" && p["Master_Port"] == fmt.Sprint(b.r1.Port) {
			t.Logf("p replicates from r1 although repoint-old-primary is listed as left (its statements ran once p resumed)")
		}
		b.p.Exec(t, "STOP SLAVE", "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_binlog_pos")
		b.p.ReplicateFrom(t, b.r1)
		did = append(did, "p: CHANGE MASTER to r1")
	} else if p["Master_Port"] != fmt.Sprint(b.r1.Port) {
		t.Fatalf("p does not replicate from r1, but repoint-old-primary is not listed as left: %v", ee)
	}
	if left["verify"] {
		// A replica whose first connection to a hung r1 failed waits MASTER_CONNECT_RETRY (60 s by default)
		// before it tries again: restart its replication, as an operator would after a failed verify.
		for _, in := range []*dbtest.Instance{b.p, b.r2} {
			if st := in.SlaveStatus(t); st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" {
				in.Exec(t, "STOP SLAVE", "START SLAVE")
				did = append(did, in.Name+": STOP SLAVE; START SLAVE (io="+st["Slave_IO_Running"]+")")
			}
		}
	}
	if l, err := dbstate.ReadLeftovers(strings.NewReader(audit), ""); err != nil {
		t.Fatal(err)
	} else if !l.Empty() {
		did = append(did, "recover: "+shortLeftovers(l, b))
	}
	b.assertSwitched(t, audit)
	return did
}

// shortLeftovers says what recover lifts, for the table: per instance name, how many accounts, read_only, events.
func shortLeftovers(l *dbstate.Leftovers, b *hangBed) string {
	name := func(addr string) string {
		for _, in := range b.all() {
			if in.Addr() == addr {
				return in.Name
			}
		}
		return addr
	}
	var parts []string
	for _, la := range l.Locked {
		parts = append(parts, fmt.Sprintf("%d accounts locked on %s", len(la.Accounts), name(la.Instance)))
	}
	for _, x := range l.ReadOnly {
		parts = append(parts, "read_only on "+name(x))
	}
	for _, se := range l.Events {
		parts = append(parts, "events stopped on "+name(se.Instance))
	}
	return strings.Join(parts, ", ")
}

// writable names the instances with read_only=0.
func writable(t *testing.T, ins []*dbtest.Instance) []string {
	t.Helper()
	var out []string
	for _, in := range ins {
		if in.QueryString(t, "SELECT @@read_only") == "0" {
			out = append(out, in.Name)
		}
	}
	return out
}

// assertSwitched lets recover lift what the run kept locked on the demoted p (through r1), then checks: r1 the
// primary, p and r2 its healthy replicas without errant GTIDs, nothing locked anywhere, the event enabled on r1
// only.
func (b *hangBed) assertSwitched(t *testing.T, audit string) {
	t.Helper()
	liftKept(t, b.ops, audit)
	assertSwitched(t, b.c, b.r1, b.all())
	b.assertUnfenced(t, b.r1)
}

// assertOriginal checks: p the writable primary, r1 and r2 its healthy replicas without errant GTIDs, nothing
// locked anywhere, the event enabled on p only.
func (b *hangBed) assertOriginal(t *testing.T) {
	t.Helper()
	assertOriginal(t, b.c, b.p, []*dbtest.Instance{b.r1, b.r2})
	b.assertUnfenced(t, b.p)
}

func (b *hangBed) assertUnfenced(t *testing.T, primary *dbtest.Instance) {
	t.Helper()
	for _, in := range b.all() {
		waitUntil(t, 10*time.Second, func() error {
			if got := lockedAccounts(t, in); got != "" {
				return fmt.Errorf("locked on %s: %s", in.Name, got)
			}
			want := "SLAVESIDE_DISABLED"
			if in == primary {
				want = "ENABLED"
			}
			if got := in.QueryString(t, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'test' AND EVENT_NAME = 'tick'"); got != want {
				return fmt.Errorf("event on %s: %s, want %s", in.Name, got, want)
			}
			return nil
		})
	}
}
