package dbstate_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

func desired(t testing.TB, doc string) *dbstate.DesiredVars {
	t.Helper()
	d, err := dbstate.ParseDesiredVars(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func addrs(insts []*dbtest.Instance) []string {
	out := make([]string, len(insts))
	for k, in := range insts {
		out[k] = in.Addr()
	}
	return out
}

// globals reads @@GLOBAL values of some variables on an instance, as root.
func globals(t testing.TB, in *dbtest.Instance, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		out[n] = in.QueryString(t, "SELECT @@GLOBAL."+n)
	}
	return out
}

func sameMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

const tenVars = `
variables:
  max_connections: 321
  slow_query_log: "on"
  long_query_time: 1500ms
  wait_timeout: 10m
  interactive_timeout: 1h
  key_buffer_size: 2M
  sql_mode: no_engine_substitution, STRICT_TRANS_TABLES
  optimizer_switch: mrr=on
  net_read_timeout: 45s
  max_allowed_packet: 32M
`

// TestVarsPushReplicated runs on one primary with three replicas: a push of 10 variables, then an empty plan;
// rejections at plan time that send nothing; a value that passes validation but that the replicas refuse at
// apply time, which rolls back everywhere; and a DBA's SET GLOBAL between apply and read-back.
func TestVarsPushReplicated(t *testing.T) {
	tp := dbtest.PrimaryWithReplicas(t, 3)
	c := newClient(t)
	ctx := context.Background()
	insts := addrs(tp.Instances)

	t.Run("push 10 variables to 4 instances, then the plan is empty", func(t *testing.T) {
		d := desired(t, tenVars)
		p, err := dbstate.PlanVariables(ctx, c, insts, d, dbstate.VarsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Changed() || len(p.Plan.Steps) != 4 {
			t.Fatalf("plan: changed=%v steps=%d", p.Changed(), len(p.Plan.Steps))
		}
		var text bytes.Buffer
		p.WriteText(&text)
		if !strings.Contains(text.String(), "max_connections") || !strings.Contains(text.String(), "-> 321") {
			t.Fatalf("plan text:\n%s", text.String())
		}
		var audit bytes.Buffer
		res, err := p.Execute(ctx, dbstate.VarsExecOptions{Audit: &audit})
		if err != nil {
			t.Fatalf("%v\n%s", err, audit.String())
		}
		if res.Outcome != dbstate.OutcomeApplied {
			t.Fatalf("outcome %q", res.Outcome)
		}
		for _, in := range tp.Instances {
			g := globals(t, in, "max_connections", "long_query_time", "wait_timeout", "key_buffer_size", "max_allowed_packet", "sql_mode")
			want := map[string]string{"max_connections": "321", "long_query_time": "1.5", "wait_timeout": "600",
				"key_buffer_size": "2097152", "max_allowed_packet": "33554432", "sql_mode": "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION"}
			if !sameMaps(g, want) {
				t.Errorf("%s: %v", in.Name, g)
			}
		}
		if n := strings.Count(audit.String(), `"result":"ok"`); n < 1+4*3 {
			t.Errorf("audit has %d ok records:\n%s", n, audit.String())
		}
		again, err := dbstate.PlanVariables(ctx, c, insts, d, dbstate.VarsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if again.Changed() {
			var b bytes.Buffer
			again.WriteText(&b)
			t.Fatalf("second plan not empty:\n%s", b.String())
		}
	})

	t.Run("non-dynamic, unknown and session-only variables are rejected at plan time", func(t *testing.T) {
		before := globals(t, tp.Get("p"), "max_connections")
		d := desired(t, "variables: {max_connections: 400, datadir: /tmp/x, no_such_variable: 1, timestamp: 5, read_only: 'OFF'}\n")
		_, err := dbstate.PlanVariables(ctx, c, insts, d, dbstate.VarsOptions{})
		var re *dbstate.VarsRejectedError
		if !errors.As(err, &re) || !errors.Is(err, dbstate.ErrVarsRejected) {
			t.Fatalf("err = %v", err)
		}
		reasons := map[string]string{}
		for _, i := range re.Issues {
			if i.Instance == "" {
				t.Errorf("issue without instance: %+v", i)
			}
			reasons[i.Variable] = i.Reason
		}
		for v, want := range map[string]string{"datadir": "not dynamic", "no_such_variable": "unknown variable",
			"timestamp": "session-only", "read_only": "does not push"} {
			if !strings.Contains(reasons[v], want) {
				t.Errorf("%s: reason %q, want %q", v, reasons[v], want)
			}
		}
		if len(re.Issues) != 4*4 {
			t.Errorf("%d issues, want 4 variables x 4 instances: %v", len(re.Issues), re.Issues)
		}
		if g := globals(t, tp.Get("p"), "max_connections"); !sameMaps(g, before) {
			t.Fatalf("max_connections changed: %v -> %v", before, g)
		}
	})

	t.Run("a group override out of range on one instance: nothing changes anywhere", func(t *testing.T) {
		var before []map[string]string
		for _, in := range tp.Instances {
			before = append(before, globals(t, in, "max_connections", "wait_timeout"))
		}
		d := desired(t, `
variables: {max_connections: 222, wait_timeout: 100}
groups:
  big:
    instances: [`+tp.Get("r2").Addr()+`]
    variables: {max_connections: 1000000}
`)
		_, err := dbstate.PlanVariables(ctx, c, insts, d, dbstate.VarsOptions{})
		var re *dbstate.VarsRejectedError
		if !errors.As(err, &re) || len(re.Issues) != 1 || re.Issues[0].Instance != tp.Get("r2").Addr() ||
			re.Issues[0].Variable != "max_connections" || !strings.Contains(re.Issues[0].Reason, "above the maximum 100000") {
			t.Fatalf("err = %v", err)
		}
		for k, in := range tp.Instances {
			if g := globals(t, in, "max_connections", "wait_timeout"); !sameMaps(g, before[k]) {
				t.Fatalf("%s changed: %v -> %v", in.Name, before[k], g)
			}
		}
	})

	t.Run("replicas refuse at apply time: rolled back everywhere, verified", func(t *testing.T) {
		p0 := tp.Get("p")
		before := globals(t, p0, "slave_parallel_threads", "max_connections")
		// slave_parallel_threads cannot change while a replica's threads run: the primary takes it, the replicas
		// refuse it.
		d := desired(t, "variables: {slave_parallel_threads: 4, max_connections: 333}\n")
		p, err := dbstate.PlanVariables(ctx, c, insts, d, dbstate.VarsOptions{Parallel: 2})
		if err != nil {
			t.Fatal(err)
		}
		var audit bytes.Buffer
		res, err := p.Execute(ctx, dbstate.VarsExecOptions{Audit: &audit})
		if !errors.Is(err, dbstate.ErrVarsRolledBack) || res.Outcome != dbstate.OutcomeRolledBack {
			t.Fatalf("err = %v, outcome %q\n%s", err, res.Outcome, audit.String())
		}
		if len(res.Failures) != 3 {
			t.Errorf("failures: %+v", res.Failures)
		}
		for _, f := range res.Failures {
			if f.Phase != "apply" || f.Instance == p0.Addr() {
				t.Errorf("failure %+v", f)
			}
		}
		for _, in := range tp.Instances {
			if g := globals(t, in, "slave_parallel_threads", "max_connections"); !sameMaps(g, before) {
				t.Errorf("%s not restored: %v, want %v", in.Name, g, before)
			}
		}
		if !strings.Contains(audit.String(), `"result":"rolled-back"`) || !strings.Contains(audit.String(), `"step":"restore"`) {
			t.Errorf("audit:\n%s", audit.String())
		}
	})

	t.Run("a DBA's SET GLOBAL between apply and read-back rolls back", func(t *testing.T) {
		r1 := tp.Get("r1")
		before := globals(t, r1, "net_write_timeout")
		d := desired(t, "variables: {net_write_timeout: 77}\n")
		p, err := dbstate.PlanVariables(ctx, c, insts, d, dbstate.VarsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Execute(ctx, dbstate.VarsExecOptions{BeforePhase: func(ctx context.Context, phase string) error {
			if phase == "read-back" {
				r1.Exec(t, "SET GLOBAL net_write_timeout = 99")
			}
			return nil
		}})
		if !errors.Is(err, dbstate.ErrVarsRolledBack) || len(res.Failures) != 1 || res.Failures[0].Instance != r1.Addr() ||
			!strings.Contains(res.Failures[0].Error, `reads "99", want "77"`) {
			t.Fatalf("err = %v, result %+v", err, res)
		}
		for _, in := range tp.Instances {
			if g := globals(t, in, "net_write_timeout"); !sameMaps(g, before) {
				t.Errorf("%s: %v, want %v", in.Name, g, before)
			}
		}
	})

	t.Run("the plan's steps are real: Plan.Execute runs them one instance at a time, with undo", func(t *testing.T) {
		before := globals(t, tp.Get("p"), "net_write_timeout")
		d := desired(t, "variables: {net_write_timeout: 88}\n")
		p, err := dbstate.PlanVariables(ctx, c, insts, d, dbstate.VarsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Fail on the third instance: the steps of the first two are undone in reverse.
		n := 0
		err = p.Plan.Execute(ctx, dbstate.ExecOptions{BeforeStep: func(ctx context.Context, s *dbstate.Step) error {
			if n++; n == 3 {
				return errors.New("injected")
			}
			return nil
		}})
		var ee *dbstate.ExecError
		if !errors.As(err, &ee) || !ee.RolledBack {
			t.Fatalf("err = %v", err)
		}
		for _, in := range tp.Instances {
			if g := globals(t, in, "net_write_timeout"); !sameMaps(g, before) {
				t.Errorf("%s: %v, want %v", in.Name, g, before)
			}
		}
		if err := p.Plan.Execute(ctx, dbstate.ExecOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, in := range tp.Instances {
			if g := globals(t, in, "net_write_timeout"); g["net_write_timeout"] != "88" {
				t.Errorf("%s: %v", in.Name, g)
			}
		}
	})
	t.Run("a value changed since the plan: nothing is applied", func(t *testing.T) {
		p0 := tp.Get("p")
		d := desired(t, "variables: {net_write_timeout: 66}\n")
		p, err := dbstate.PlanVariables(ctx, c, insts, d, dbstate.VarsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p0.Exec(t, "SET GLOBAL net_write_timeout = 55")
		res, err := p.Execute(ctx, dbstate.VarsExecOptions{})
		if !errors.Is(err, dbstate.ErrVarsStale) || res.Outcome != dbstate.OutcomeNotApplied {
			t.Fatalf("err = %v, outcome %q", err, res.Outcome)
		}
		if g := globals(t, tp.Get("r3"), "net_write_timeout"); g["net_write_timeout"] == "66" {
			t.Fatal("applied on r3")
		}
		p0.Exec(t, "SET GLOBAL net_write_timeout = DEFAULT")
	})
}

// TestVarsPushInstanceDies kills instances midway, on three unconnected instances (variables are per server).
func TestVarsPushInstanceDies(t *testing.T) {
	insts := dbtest.Start(t, 4)
	c := newClient(t)
	ctx := context.Background()
	names := []string{"max_connections", "wait_timeout", "slow_query_log"}
	doc := "variables: {max_connections: 444, wait_timeout: 1234, slow_query_log: ON}\n"

	t.Run("hung (SIGSTOP) before read-back: reported incomplete, and its statements restore it", func(t *testing.T) {
		live := insts[:3]
		before := globals(t, live[0], names...)
		p, err := dbstate.PlanVariables(ctx, c, addrs(live), desired(t, doc), dbstate.VarsOptions{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		hung := live[2]
		pid := hung.Pid()
		res, err := p.Execute(ctx, dbstate.VarsExecOptions{BeforePhase: func(ctx context.Context, phase string) error {
			if phase == "read-back" {
				syscall.Kill(pid, syscall.SIGSTOP)
			}
			return nil
		}})
		syscall.Kill(pid, syscall.SIGCONT)
		if !errors.Is(err, dbstate.ErrVarsRollbackIncomplete) || len(res.Incomplete) != 1 || res.Incomplete[0].Instance != hung.Addr() {
			t.Fatalf("err = %v, incomplete %+v", err, res.Incomplete)
		}
		for _, in := range live[:2] {
			if g := globals(t, in, names...); !sameMaps(g, before) {
				t.Errorf("%s not restored: %v, want %v", in.Addr(), g, before)
			}
		}
		// It still holds the new values, as the report warned; the report's statements put it back.
		if g := globals(t, hung, "max_connections"); g["max_connections"] != "444" {
			t.Fatalf("hung instance: %v", g)
		}
		for _, stmt := range res.Incomplete[0].Statements {
			hung.Exec(t, stmt)
		}
		if g := globals(t, hung, names...); !sameMaps(g, before) {
			t.Errorf("after the report's statements: %v, want %v", g, before)
		}
	})
	t.Run("cancelled (ctrl-C) after apply: the restore still runs, rolled back everywhere", func(t *testing.T) {
		live := insts[:3]
		before := globals(t, live[0], names...)
		p, err := dbstate.PlanVariables(ctx, c, addrs(live), desired(t, doc), dbstate.VarsOptions{Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var restoreCtxErr error
		res, err := p.Execute(cctx, dbstate.VarsExecOptions{BeforePhase: func(hctx context.Context, phase string) error {
			switch phase {
			case "read-back":
				cancel()
			case "restore":
				restoreCtxErr = hctx.Err()
			}
			return nil
		}})
		if !errors.Is(err, dbstate.ErrVarsRolledBack) || res.Outcome != dbstate.OutcomeRolledBack || restoreCtxErr != nil {
			t.Fatalf("err = %v, outcome %q, restore ctx %v", err, res.Outcome, restoreCtxErr)
		}
		for _, in := range live {
			if g := globals(t, in, names...); !sameMaps(g, before) {
				t.Errorf("%s not restored: %v, want %v", in.Addr(), g, before)
			}
		}
	})
	t.Run("hung (SIGSTOP) during the restore: the report says so, the others are restored", func(t *testing.T) {
		live := insts[:3]
		before := globals(t, live[0], names...)
		p, err := dbstate.PlanVariables(ctx, c, addrs(live), desired(t, doc), dbstate.VarsOptions{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		hung := live[0]
		pid := hung.Pid()
		res, err := p.Execute(ctx, dbstate.VarsExecOptions{BeforePhase: func(ctx context.Context, phase string) error {
			switch phase {
			case "read-back":
				return errors.New("injected read-back failure")
			case "restore":
				syscall.Kill(pid, syscall.SIGSTOP)
			}
			return nil
		}})
		syscall.Kill(pid, syscall.SIGCONT)
		if !errors.Is(err, dbstate.ErrVarsRollbackIncomplete) || len(res.Incomplete) != 1 || res.Incomplete[0].Instance != hung.Addr() ||
			res.Incomplete[0].Values["max_connections"] != "unknown" {
			t.Fatalf("err = %v, incomplete %+v", err, res.Incomplete)
		}
		for _, in := range live[1:] {
			if g := globals(t, in, names...); !sameMaps(g, before) {
				t.Errorf("%s not restored: %v, want %v", in.Addr(), g, before)
			}
		}
		for _, stmt := range res.Incomplete[0].Statements {
			hung.Exec(t, stmt)
		}
		if g := globals(t, hung, names...); !sameMaps(g, before) {
			t.Errorf("after the report's statements: %v, want %v", g, before)
		}
	})
	t.Run("killed between apply and read-back: the others are restored and verified", func(t *testing.T) {
		live := insts[:3]
		before := globals(t, live[0], names...)
		p, err := dbstate.PlanVariables(ctx, c, addrs(live), desired(t, doc), dbstate.VarsOptions{Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		victim := live[1]
		res, err := p.Execute(ctx, dbstate.VarsExecOptions{BeforePhase: func(ctx context.Context, phase string) error {
			if phase == "read-back" {
				if g := globals(t, victim, "max_connections"); g["max_connections"] != "444" {
					t.Errorf("victim not changed before it is killed: %v", g)
				}
				victim.Kill(t)
			}
			return nil
		}})
		if !errors.Is(err, dbstate.ErrVarsRollbackIncomplete) || res.Outcome != dbstate.OutcomeRollbackIncomplete {
			t.Fatalf("err = %v, outcome %q", err, res.Outcome)
		}
		if len(res.Incomplete) != 1 || res.Incomplete[0].Instance != victim.Addr() ||
			res.Incomplete[0].Values["max_connections"] != "unknown" || len(res.Incomplete[0].Statements) != 3 {
			t.Fatalf("incomplete: %+v", res.Incomplete)
		}
		for _, in := range []*dbtest.Instance{live[0], live[2]} {
			if g := globals(t, in, names...); !sameMaps(g, before) {
				t.Errorf("%s not restored: %v, want %v", in.Addr(), g, before)
			}
		}
		var b bytes.Buffer
		res.WriteText(&b)
		if !strings.Contains(b.String(), "ROLLBACK INCOMPLETE") || !strings.Contains(b.String(), victim.Addr()) ||
			!strings.Contains(b.String(), "SET GLOBAL max_connections = "+before["max_connections"]+";") {
			t.Fatalf("report:\n%s", b.String())
		}
	})

	t.Run("rollback cannot complete: the report names the instance, its values and the statements", func(t *testing.T) {
		a, b, dead := insts[0], insts[2], insts[3]
		before := globals(t, a, names...)
		p, err := dbstate.PlanVariables(ctx, c, []string{a.Addr(), b.Addr(), dead.Addr()}, desired(t, doc), dbstate.VarsOptions{Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Execute(ctx, dbstate.VarsExecOptions{BeforePhase: func(ctx context.Context, phase string) error {
			switch phase {
			case "apply":
				dead.Kill(t) // apply fails there: nothing was sent to it
			case "restore":
				b.Kill(t) // b changed, and dies before it is restored
			}
			return nil
		}})
		if !errors.Is(err, dbstate.ErrVarsRollbackIncomplete) {
			t.Fatalf("err = %v", err)
		}
		if len(res.Incomplete) != 1 || res.Incomplete[0].Instance != b.Addr() || res.Incomplete[0].Reason == "" {
			t.Fatalf("incomplete: %+v", res.Incomplete)
		}
		if g := globals(t, a, names...); !sameMaps(g, before) {
			t.Errorf("a not restored: %v, want %v", g, before)
		}
		var out bytes.Buffer
		res.WriteText(&out)
		for _, want := range []string{"ROLLBACK INCOMPLETE", b.Addr(), "unknown", "SET GLOBAL wait_timeout = 28800;", "SET GLOBAL slow_query_log = 'OFF';"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, out.String())
			}
		}
		if strings.Contains(out.String(), "!!! "+dead.Addr()) {
			t.Errorf("the instance that never changed is reported incomplete:\n%s", out.String())
		}
	})
}
