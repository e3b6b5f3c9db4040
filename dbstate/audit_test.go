package dbstate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// auditOf executes p and returns its audit log.
func auditOf(t *testing.T, p *Plan, opt ExecOptions) (string, error) {
	t.Helper()
	var b bytes.Buffer
	opt.Audit = &b
	err := p.Execute(context.Background(), opt)
	return b.String(), err
}

func TestAuditRecordsCarryWhoWhereWhich(t *testing.T) {
	var log []string
	p := fakePlan(2, -1, -1, -1, &log)
	p.Account = "dbstate@127.0.0.1"
	p.Steps[0].Detail = func() string { return "locked 'app'@'%'" }
	out, err := auditOf(t, p, ExecOptions{User: "alice", Host: "admin1"})
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.User != "alice" || r.Host != "admin1" || r.Account != "dbstate@127.0.0.1" || len(r.Run) != 16 {
			t.Fatalf("record lacks who/where: %s", line)
		}
		runs[r.Run] = true
	}
	if len(runs) != 1 {
		t.Fatalf("%d run ids in one execution", len(runs))
	}
	if !strings.Contains(out, `"detail":"locked 'app'@'%'"`) {
		t.Fatalf("no detail:\n%s", out)
	}
}

func TestRollbackIsVerified(t *testing.T) {
	var log []string
	p := fakePlan(3, 2, -1, -1, &log)
	p.VerifyRollback = func(context.Context) error { return errors.New("db:1 does not replicate") }
	out, err := auditOf(t, p, ExecOptions{})
	var ee *ExecError
	if !errors.As(err, &ee) || ee.RolledBack || ee.VerifyErr == nil || !strings.Contains(err.Error(), "rollback NOT VERIFIED") ||
		!strings.Contains(out, `"phase":"verify","result":"failed"`) {
		t.Fatalf("err = %v\n%s", err, out)
	}
	p = fakePlan(3, 2, -1, -1, &log)
	p.VerifyRollback = func(context.Context) error { return nil }
	if _, err := auditOf(t, p, ExecOptions{}); !errors.As(err, &ee) || !ee.RolledBack {
		t.Fatalf("err = %v", err)
	}
}

func TestOneShotPlanRunsOnce(t *testing.T) {
	var log []string
	p := fakePlan(1, -1, -1, -1, &log)
	p.OneShot = true
	if err := p.Execute(context.Background(), ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Execute(context.Background(), ExecOptions{}); !errors.Is(err, ErrPlanExecuted) {
		t.Fatalf("second run: %v", err)
	}
	if len(log) != 1 {
		t.Fatalf("ran %v", log)
	}
}

func TestReadAuditRun(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	rec := func(run, step, phase, result string, ms int) string {
		b, _ := json.Marshal(AuditRecord{Time: t0.Add(time.Duration(ms) * time.Millisecond), Run: run, Host: "h", User: "u",
			Account: "dbstate@%", Plan: "switchover: make b the primary in place of a", Step: step, Instance: "a:1", Phase: phase, Result: result})
		return string(b)
	}
	run1 := []string{rec("r1", "", "plan", "start", 0), rec("r1", "set-read-only", "do", "start", 100), rec("r1", "set-read-only", "do", "ok", 101),
		rec("r1", "promote", "do", "start", 105), rec("r1", "promote", "do", "ok", 112), rec("r1", "", "plan", "ok", 130)}
	run2 := []string{rec("r2", "", "plan", "start", 1000), rec("r2", "catch-up", "do", "start", 1001)}
	tests := []struct {
		name, log, run string
		wantID         string
		records        int
		skipped        int
		window         time.Duration
		wantErr        error
		timeline       []string
	}{
		{name: "last run by default", log: strings.Join(append(run1, run2...), "\n"), wantID: "r2", records: 2,
			timeline: []string{"Run r2", "unfinished", "2 runs in this log"}},
		{name: "a run by id, with its window", log: strings.Join(append(run1, run2...), "\n"), run: "r1", wantID: "r1", records: 6,
			window: 12 * time.Millisecond, timeline: []string{"by OS user u on host h, as database account dbstate@%", "Result: ok", "Write window (set-read-only started to promote done): 12.0 ms"}},
		{name: "garbage and a cut last line are skipped", log: "not json\n\n" + strings.Join(run1, "\n") + "\n{\"time\":\"2026", run: "r1",
			wantID: "r1", records: 6, skipped: 3, window: 12 * time.Millisecond, timeline: []string{"3 lines skipped"}},
		{name: "an over-long line is skipped", log: strings.Repeat("x", maxAuditLine+10) + "\n" + strings.Join(run1, "\n"), run: "r1",
			wantID: "r1", records: 6, skipped: 1, window: 12 * time.Millisecond},
		{name: "unknown run", log: strings.Join(run1, "\n"), run: "nope", wantErr: ErrRunNotFound},
		{name: "empty log", log: "", wantErr: ErrRunNotFound},
		{name: "control characters are cleaned", log: rec("r\x1b[2J", "", "plan", "start", 0), wantID: "r\x1b[2J", records: 1,
			timeline: []string{"Run r?[2J"}},
		{name: "bidirectional overrides and other format characters are cleaned", log: rec("r\u202ex\u2066", "", "plan", "start", 0),
			wantID: "r\u202ex\u2066", records: 1, timeline: []string{"Run r?x?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ReadAuditRun(strings.NewReader(tt.log), tt.run)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.ID != tt.wantID || len(r.Records) != tt.records || r.Skipped != tt.skipped {
				t.Fatalf("run %q with %d records, %d skipped", r.ID, len(r.Records), r.Skipped)
			}
			if w, ok := r.Window(); w != tt.window || ok != (tt.window > 0) {
				t.Fatalf("window %v %v, want %v", w, ok, tt.window)
			}
			var b strings.Builder
			if err := r.WriteTimeline(&b); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.timeline {
				if !strings.Contains(b.String(), s) {
					t.Fatalf("timeline lacks %q:\n%s", s, b.String())
				}
			}
			if strings.ContainsAny(b.String(), "\x1b\u202e\u2066") {
				t.Fatal("escape or bidirectional control character reached the timeline")
			}
		})
	}
}

func FuzzReadAuditRun(f *testing.F) {
	f.Add(`{"time":"2026-12-01T10:00:00Z","run":"a","phase":"plan","result":"start"}` + "\n" + `{"run":"a","step":"promote","phase":"do","result":"ok"}`)
	f.Add("garbage\n{}\n{\"phase\":\"do\"}")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ReadAuditRun(strings.NewReader(s), "")
		if err != nil {
			return
		}
		var b strings.Builder
		if err := r.WriteTimeline(&b); err != nil {
			t.Fatal(err)
		}
		for _, c := range b.String() {
			if c < 0x20 && c != '\n' {
				t.Fatalf("control character %q in the timeline", c)
			}
		}
	})
}

func TestGapAndProgress(t *testing.T) {
	if g := Gap(MustParsePosition("0-1-100,1-2-10"), MustParsePosition("0-1-58,1-3-12")); g != 42 {
		t.Fatalf("gap %d, want 42", g)
	}
	if g := Gap(MustParsePosition("0-1-5"), nil); g != 5 {
		t.Fatalf("gap %d from nothing, want 5", g)
	}
	// A wait that takes a while reports progress, with the gap left.
	f := newFake("y:1")
	f.vars["y:1"].GTIDCurrentPos = MustParsePosition("0-1-7")
	var reports []Progress
	ctx := withProgress(context.Background(), func(p Progress) { reports = append(reports, p) }, 10*time.Millisecond)
	err := waitReporting(ctx, f, "catch-up", "y:1", MustParsePosition("0-1-10"), appliedPos, func(ctx context.Context) error {
		time.Sleep(100 * time.Millisecond)
		return nil
	})
	if err != nil || len(reports) == 0 {
		t.Fatalf("err %v, %d reports", err, len(reports))
	}
	if p := reports[0]; p.Left != 3 || p.Instance != "y:1" || !strings.Contains(p.String(), "3 transactions left (at 0-1-7, target 0-1-10)") {
		t.Fatalf("report %+v: %s", p, p)
	}
}
