package dbstate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// fakePlan builds a plan of n steps that record what ran into log; step failAt fails (-1: none); pnr marks the
// point of no return (-1: none); undoFail makes that step's undo fail.
func fakePlan(n, failAt, pnr, undoFail int, log *[]string) *Plan {
	p := &Plan{Kind: "test", Summary: "fake"}
	for k := range n {
		name := fmt.Sprintf("s%d", k)
		s := &Step{Name: name, Instance: "db:1", Description: "do " + name, PointOfNoReturn: k == pnr}
		s.Do = func(context.Context) error {
			*log = append(*log, "do "+name)
			if k == failAt {
				return errors.New("boom")
			}
			return nil
		}
		if k%2 == 0 { // odd steps have no undo
			s.Undo = func(context.Context) error {
				*log = append(*log, "undo "+name)
				if k == undoFail {
					return errors.New("undo boom")
				}
				return nil
			}
		}
		p.Steps = append(p.Steps, s)
	}
	return p
}

func TestExecute(t *testing.T) {
	tests := []struct {
		name                         string
		failAt, pnr, undoFail        int
		want                         string
		rolledBack, pastPNR, wantErr bool
		maybe                        bool // step failAt fails with ErrMaybePastPointOfNoReturn
	}{
		{name: "all ok", failAt: -1, pnr: -1, undoFail: -1, want: "do s0,do s1,do s2,do s3,do s4"},
		{name: "failure undoes the failed step and completed steps in reverse", failAt: 2, pnr: -1, undoFail: -1,
			want: "do s0,do s1,do s2,undo s2,undo s0", rolledBack: true, wantErr: true},
		{name: "failure after the point of no return is not undone", failAt: 3, pnr: 2, undoFail: -1,
			want: "do s0,do s1,do s2,do s3", pastPNR: true, wantErr: true},
		{name: "failure at the point of no return is undone", failAt: 2, pnr: 2, undoFail: -1,
			want: "do s0,do s1,do s2,undo s2,undo s0", rolledBack: true, wantErr: true},
		{name: "failure at the point of no return that may have passed it is not undone", failAt: 2, pnr: 2, undoFail: -1, maybe: true,
			want: "do s0,do s1,do s2", pastPNR: true, wantErr: true},
		{name: "an undo that fails makes the rollback incomplete, the others still run", failAt: 4, pnr: -1, undoFail: 2,
			want: "do s0,do s1,do s2,do s3,do s4,undo s4,undo s2,undo s0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			var audit strings.Builder
			p := fakePlan(5, tt.failAt, tt.pnr, tt.undoFail, &log)
			if tt.maybe {
				p.Steps[tt.failAt].Do = func(context.Context) error {
					log = append(log, "do "+p.Steps[tt.failAt].Name)
					return fmt.Errorf("%w: no answer", ErrMaybePastPointOfNoReturn)
				}
			}
			err := p.Execute(context.Background(), ExecOptions{Audit: &audit, User: "alice"})
			if got := strings.Join(log, ","); got != tt.want {
				t.Fatalf("ran %s\nwant %s", got, tt.want)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			var ee *ExecError
			if err != nil {
				if !errors.As(err, &ee) || ee.RolledBack != tt.rolledBack || ee.PastPointOfNoReturn != tt.pastPNR {
					t.Fatalf("err = %#v", err)
				}
				if tt.rolledBack != strings.Contains(err.Error(), "rolled back: every completed step was undone") {
					t.Fatalf("message does not say what happened: %v", err)
				}
				if tt.pastPNR && (len(ee.Remaining) == 0 || !strings.HasPrefix(ee.Remaining[0], ee.Step+" ")) {
					t.Fatalf("the failed step is not the first left to do: %q", ee.Remaining)
				}
			}
			sc := bufio.NewScanner(strings.NewReader(audit.String()))
			lines := 0
			for sc.Scan() {
				var r AuditRecord
				if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.User != "alice" || r.Time.IsZero() || r.Result == "" {
					t.Fatalf("audit line %q: %v", sc.Text(), err)
				}
				lines++
			}
			if lines < len(log)+2 { // every do and undo, plus plan start and end
				t.Fatalf("%d audit lines for %d actions:\n%s", lines, len(log), audit.String())
			}
		})
	}
}

func TestExecuteHookAndCancel(t *testing.T) {
	var log []string
	p := fakePlan(4, -1, -1, -1, &log)
	ctx, cancel := context.WithCancel(context.Background())
	err := p.Execute(ctx, ExecOptions{BeforeStep: func(_ context.Context, s *Step) error {
		if s.Name == "s2" {
			cancel() // as SIGINT would
		}
		return nil
	}})
	var ee *ExecError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &ee) || !ee.RolledBack {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(log, ","); got != "do s0,do s1,undo s2,undo s0" {
		t.Fatalf("ran %s", got)
	}
}

func TestWriteTextShowsEverything(t *testing.T) {
	var log []string
	p := fakePlan(3, -1, 1, -1, &log)
	p.Steps[0].Precondition, p.Steps[0].UndoText = "pre", "undo it"
	p.Steps[2].Cleanup = true
	p.Preflight = []PreflightCheck{{Name: "c1", Passed: true, Detail: "fine"}}
	p.Warnings = []string{"careful"}
	var b strings.Builder
	p.WriteText(&b)
	for _, s := range []string{"Plan: fake", "ok   c1", "warning: careful", "1. s0 on db:1", "check: pre", "undo:  undo it", "point of no return", "cleanup: always runs"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("plan text lacks %q:\n%s", s, b.String())
		}
	}
	if len(log) != 0 {
		t.Fatal("printing ran a step")
	}
}

func TestExecuteCleanup(t *testing.T) {
	injected := errors.New("injected")
	tests := []struct {
		name          string
		failAt, pnr   int
		cleanupFails  bool
		cancelAt      string // cancel ctx in the hook of this step
		want          string
		rolledBack    bool
		remaining     string
		inMessage     string
		hookOnCleanup bool
		finish        bool // Plan.FinishPastPointOfNoReturn
	}{
		{name: "in its place when all goes well", failAt: -1, pnr: 1, want: "do s0,do s1,do s2,do s3,do s4", hookOnCleanup: true},
		{name: "after a failure past the point of no return", failAt: 2, pnr: 1,
			want: "do s0,do s1,do s2,do s3", remaining: "s2,s4", inMessage: "cleanup done: s3"},
		{name: "after the rollback of a failure before the point of no return", failAt: 1, pnr: 2,
			want: "do s0,do s1,undo s0,do s3", rolledBack: true, inMessage: "cleanup done: s3"},
		{name: "a failing cleanup makes the rollback incomplete", failAt: 1, pnr: 2, cleanupFails: true,
			want: "do s0,do s1,undo s0,do s3", inMessage: "cleanup FAILED"},
		{name: "a failing cleanup past the point of no return is left to do", failAt: 2, pnr: 1, cleanupFails: true,
			want: "do s0,do s1,do s2,do s3", remaining: "s2,s3,s4", inMessage: "cleanup FAILED"},
		{name: "finishing past the point of no return runs the steps after the failed one too", failAt: 2, pnr: 1, finish: true,
			want: "do s0,do s1,do s2,do s3,do s4", remaining: "s2", inMessage: "done after the failure: s4"},
		{name: "even when cancelled", failAt: -1, pnr: 2, cancelAt: "s1",
			want: "do s0,undo s0,do s3", rolledBack: true, inMessage: "cleanup done: s3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			p := fakePlan(5, tt.failAt, tt.pnr, -1, &log)
			p.FinishPastPointOfNoReturn = tt.finish
			cl := p.Steps[3]
			cl.Cleanup = true
			if tt.cleanupFails {
				cl.Do = func(context.Context) error { log = append(log, "do s3"); return injected }
			} else {
				cl.Do = func(ctx context.Context) error {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					log = append(log, "do s3")
					return nil
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hooked := false
			var audit strings.Builder
			err := p.Execute(ctx, ExecOptions{Audit: &audit, User: "alice", BeforeStep: func(_ context.Context, s *Step) error {
				if s.Name == tt.cancelAt {
					cancel()
				}
				if s == cl {
					hooked = true
				}
				return nil
			}})
			if got := strings.Join(log, ","); got != tt.want {
				t.Fatalf("ran %s\nwant %s", got, tt.want)
			}
			if hooked != tt.hookOnCleanup {
				t.Fatalf("BeforeStep asked before the cleanup step: %v", hooked)
			}
			if tt.want == "do s0,do s1,do s2,do s3,do s4" && !tt.finish {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ee *ExecError
			if !errors.As(err, &ee) || ee.RolledBack != tt.rolledBack {
				t.Fatalf("err = %v", err)
			}
			var rem []string
			for _, r := range ee.Remaining {
				rem = append(rem, strings.Fields(r)[0])
			}
			if got := strings.Join(rem, ","); got != tt.remaining {
				t.Fatalf("remaining %s, want %s", got, tt.remaining)
			}
			if !strings.Contains(err.Error(), tt.inMessage) {
				t.Fatalf("message lacks %q: %v", tt.inMessage, err)
			}
			if !strings.Contains(audit.String(), `"step":"s3","instance":"db:1","phase":"cleanup"`) {
				t.Fatalf("no cleanup record in the audit log:\n%s", audit.String())
			}
		})
	}
}

// The audit log has a start record for each step before the step runs: after a crash inside a step, the log
// shows which one was running.
func TestAuditStartBeforeEachStep(t *testing.T) {
	var log []string
	var audit strings.Builder
	p := fakePlan(3, 2, -1, -1, &log)
	var seen string
	do := p.Steps[1].Do
	p.Steps[1].Do = func(ctx context.Context) error {
		lines := strings.Split(strings.TrimSpace(audit.String()), "\n")
		seen = lines[len(lines)-1] // what a crash now would leave last
		return do(ctx)
	}
	_ = p.Execute(context.Background(), ExecOptions{Audit: &audit, User: "alice"})
	var last AuditRecord
	if err := json.Unmarshal([]byte(seen), &last); err != nil || last.Step != "s1" || last.Phase != "do" || last.Result != "start" {
		t.Fatalf("last audit line while s1 runs: %s (%v)", seen, err)
	}
	// Every step, and every undo, has its start record before its outcome.
	started := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(audit.String()))
	for sc.Scan() {
		var r AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		key := r.Phase + " " + r.Step
		switch {
		case r.Step == "":
		case r.Result == "start":
			started[key] = true
		case !started[key]:
			t.Fatalf("%s %s without a start record before it:\n%s", key, r.Result, audit.String())
		}
	}
	if !started["undo s2"] || !started["undo s0"] {
		t.Fatalf("undo start records missing:\n%s", audit.String())
	}
}
