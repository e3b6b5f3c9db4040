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
	}{
		{name: "all ok", failAt: -1, pnr: -1, undoFail: -1, want: "do s0,do s1,do s2,do s3,do s4"},
		{name: "failure undoes the failed step and completed steps in reverse", failAt: 2, pnr: -1, undoFail: -1,
			want: "do s0,do s1,do s2,undo s2,undo s0", rolledBack: true, wantErr: true},
		{name: "failure after the point of no return is not undone", failAt: 3, pnr: 2, undoFail: -1,
			want: "do s0,do s1,do s2,do s3", pastPNR: true, wantErr: true},
		{name: "failure at the point of no return is undone", failAt: 2, pnr: 2, undoFail: -1,
			want: "do s0,do s1,do s2,undo s2,undo s0", rolledBack: true, wantErr: true},
		{name: "an undo that fails makes the rollback incomplete, the others still run", failAt: 4, pnr: -1, undoFail: 2,
			want: "do s0,do s1,do s2,do s3,do s4,undo s4,undo s2,undo s0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			var audit strings.Builder
			err := fakePlan(5, tt.failAt, tt.pnr, tt.undoFail, &log).Execute(context.Background(), ExecOptions{Audit: &audit, User: "alice"})
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
	p.Preflight = []PreflightCheck{{Name: "c1", Detail: "fine"}}
	p.Warnings = []string{"careful"}
	var b strings.Builder
	p.WriteText(&b)
	for _, s := range []string{"Plan: fake", "ok  c1", "warning: careful", "1. s0 on db:1", "check: pre", "undo:  undo it", "point of no return"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("plan text lacks %q:\n%s", s, b.String())
		}
	}
	if len(log) != 0 {
		t.Fatal("printing ran a step")
	}
}
