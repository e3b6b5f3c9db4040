package dbstate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Records of a switchover of x:1 to y:1 by run r1, in the order Execute writes them.
var (
	app      = Account{User: "app", Host: "%"}
	ro1      = true
	ro0      = false
	planS    = AuditRecord{Run: "r1", Phase: "plan", Result: "start", Plan: "switchover: make y:1 the primary"}
	fenceS   = AuditRecord{Run: "r1", Step: stepFenceWriters, Instance: "x:1", Phase: "do", Result: "start"}
	fenceI   = AuditRecord{Run: "r1", Step: stepFenceWriters, Instance: "x:1", Phase: "do", Result: "intent", Fence: &FenceAction{Lock: []Account{app}}}
	fenceOK  = AuditRecord{Run: "r1", Step: stepFenceWriters, Instance: "x:1", Phase: "do", Result: "ok"}
	roS      = AuditRecord{Run: "r1", Step: stepSetReadOnly, Instance: "x:1", Phase: "do", Result: "start"}
	roI      = AuditRecord{Run: "r1", Step: stepSetReadOnly, Instance: "x:1", Phase: "do", Result: "intent", Fence: &FenceAction{ReadOnly: &ro1}}
	roOK     = AuditRecord{Run: "r1", Step: stepSetReadOnly, Instance: "x:1", Phase: "do", Result: "ok"}
	promS    = AuditRecord{Run: "r1", Step: stepPromote, Instance: "y:1", Phase: "do", Result: "start"}
	promOK   = AuditRecord{Run: "r1", Step: stepPromote, Instance: "y:1", Phase: "do", Result: "ok"}
	promF    = AuditRecord{Run: "r1", Step: stepPromote, Instance: "y:1", Phase: "do", Result: "failed"}
	promU    = AuditRecord{Run: "r1", Step: stepPromote, Instance: "y:1", Phase: "undo", Result: "ok"}
	roU      = AuditRecord{Run: "r1", Step: stepSetReadOnly, Instance: "x:1", Phase: "undo", Result: "ok"}
	fenceU   = AuditRecord{Run: "r1", Step: stepFenceWriters, Instance: "x:1", Phase: "undo", Result: "ok"}
	unfS     = AuditRecord{Run: "r1", Step: stepUnfenceWriters, Instance: "x:1", Phase: "do", Result: "start"}
	unfOK    = AuditRecord{Run: "r1", Step: stepUnfenceWriters, Instance: "x:1", Phase: "do", Result: "ok"}
	unfCln   = AuditRecord{Run: "r1", Step: stepUnfenceWriters, Instance: "x:1", Phase: "cleanup", Result: "ok"}
	unfClnF  = AuditRecord{Run: "r1", Step: stepUnfenceWriters, Instance: "x:1", Phase: "cleanup", Result: "failed"}
	unfKeep  = AuditRecord{Run: "r1", Step: stepUnfenceWriters, Instance: "x:1", Phase: "do", Result: "intent", Fence: &FenceAction{Kept: []Account{app}}}
	planOK   = AuditRecord{Run: "r1", Phase: "plan", Result: "ok"}
	planNRB  = AuditRecord{Run: "r1", Phase: "plan", Result: "not-rolled-back"}
	planRB   = AuditRecord{Run: "r1", Phase: "plan", Result: "rolled-back"}
	planRBI  = AuditRecord{Run: "r1", Phase: "plan", Result: "rollback-incomplete"}
	toWindow = []AuditRecord{planS, fenceS, fenceI, fenceOK, roS, roI, roOK}
)

func with(recs []AuditRecord, more ...AuditRecord) []AuditRecord {
	return append(append([]AuditRecord(nil), recs...), more...)
}

// rerun is r copied into run id.
func rerun(id string, recs ...AuditRecord) []AuditRecord {
	out := make([]AuditRecord, len(recs))
	for k, r := range recs {
		r.Run = id
		out[k] = r
	}
	return out
}

// lifted are the records of a recover run r9 that unlocked app and lifted read_only on x:1, for run r1.
func lifted(readOnly bool) []AuditRecord {
	out := []AuditRecord{
		{Run: "r9", Phase: "plan", Result: "start", Plan: "recover"},
		{Run: "r9", Step: stepUnlockAccounts, Instance: "x:1", Phase: "do", Result: "start"},
		{Run: "r9", Step: stepUnlockAccounts, Instance: "x:1", Phase: "do", Result: "intent", Fence: &FenceAction{OfRun: "r1", Unlock: []Account{app}}},
		{Run: "r9", Step: stepUnlockAccounts, Instance: "x:1", Phase: "do", Result: "ok"},
	}
	if readOnly {
		out = append(out,
			AuditRecord{Run: "r9", Step: stepLiftReadOnly, Instance: "x:1", Phase: "do", Result: "start"},
			AuditRecord{Run: "r9", Step: stepLiftReadOnly, Instance: "x:1", Phase: "do", Result: "intent", Fence: &FenceAction{OfRun: "r1", ReadOnly: &ro0}},
			AuditRecord{Run: "r9", Step: stepLiftReadOnly, Instance: "x:1", Phase: "do", Result: "ok"})
	}
	return out
}

func TestFindLeftovers(t *testing.T) {
	type want struct {
		run      string
		locked   string // "" for none
		readOnly string
		promoted Promotion
		result   string
	}
	for _, tc := range []struct {
		name string
		recs []AuditRecord
		run  string
		want want
	}{
		{"killed before the fence", []AuditRecord{planS, fenceS}, "", want{"r1", "", "", PromotedNo, ""}},
		{"killed while locking (intent written)", []AuditRecord{planS, fenceS, fenceI}, "", want{"r1", "'app'@'%'", "", PromotedNo, ""}},
		{"killed after the fence", []AuditRecord{planS, fenceS, fenceI, fenceOK}, "", want{"r1", "'app'@'%'", "", PromotedNo, ""}},
		{"killed before set-read-only changed anything", []AuditRecord{planS, fenceS, fenceI, fenceOK, roS}, "", want{"r1", "'app'@'%'", "", PromotedNo, ""}},
		{"killed after set-read-only", toWindow, "", want{"r1", "'app'@'%'", "x:1", PromotedNo, ""}},
		{"killed in promote", with(toWindow, promS), "", want{"r1", "'app'@'%'", "x:1", PromotedMaybe, ""}},
		{"killed after promote", with(toWindow, promS, promOK), "", want{"r1", "'app'@'%'", "", PromotedYes, ""}},
		{"killed after unfence", with(toWindow, promS, promOK, unfS, unfOK), "", want{"r1", "", "", PromotedYes, ""}},
		{"killed while unfencing", with(toWindow, promS, promOK, unfS), "", want{"r1", "'app'@'%'", "", PromotedYes, ""}},
		{"clean run", with(toWindow, promS, promOK, unfS, unfOK, planOK), "", want{"r1", "", "", PromotedYes, "ok"}},
		{"clean run, locks kept on the demoted primary", with(toWindow, promS, promOK, planOK), "", want{"r1", "'app'@'%'", "", PromotedYes, "ok"}},
		{"failed past promote, cleanup kept the locks", with(toWindow, promS, promOK, unfKeep, unfCln, planNRB), "", want{"r1", "'app'@'%'", "", PromotedYes, "not-rolled-back"}},
		{"kept locks, then recovered", with(with(toWindow, promS, promOK, planOK), lifted(false)...), "r1", want{"r1", "", "", PromotedYes, "ok"}},
		{"already read-only: no intent", []AuditRecord{planS, fenceS, fenceOK, roS, roOK, promS, promF}, "", want{"r1", "", "", PromotedMaybe, ""}},
		{"rolled back cleanly", with(toWindow, promS, promF, promU, roU, fenceU, unfCln, planRB), "", want{"r1", "", "", PromotedNo, "rolled-back"}},
		{"killed in the rollback", with(toWindow, promS, promF, promU), "", want{"r1", "'app'@'%'", "x:1", PromotedNo, ""}},
		{"rollback failed to unlock", with(toWindow, promS, promF, promU, roU, unfClnF, planRBI), "", want{"r1", "'app'@'%'", "", PromotedNo, "rollback-incomplete"}},
		{"a clean run after the interrupted one", with(toWindow, rerun("r2", planS, fenceS, fenceOK, planOK)...), "", want{"r1", "'app'@'%'", "x:1", PromotedNo, ""}},
		{"two runs, the named one clean", with(toWindow, rerun("r2", planS, planOK)...), "r2", want{"r2", "", "", PromotedNo, "ok"}},
		{"two interrupted runs: the last one", with(toWindow, rerun("r2", planS, fenceS, fenceI)...), "", want{"r2", "'app'@'%'", "", PromotedNo, ""}},
		{"recovered", with(toWindow, lifted(true)...), "", want{"r9", "", "", PromotedNo, ""}},
		{"recovered, asked by run", with(toWindow, lifted(true)...), "r1", want{"r1", "", "", PromotedNo, ""}},
		{"recover killed after unlocking", with(toWindow, lifted(true)...)[:len(toWindow)+5], "r1", want{"r1", "", "x:1", PromotedNo, ""}},
		{"recover killed while unlocking", with(toWindow, lifted(false)[:3]...), "r1", want{"r1", "'app'@'%'", "x:1", PromotedNo, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := FindLeftovers(tc.recs, tc.run)
			if err != nil {
				t.Fatal(err)
			}
			var locked []string
			for _, la := range l.Locked {
				if la.Instance != "x:1" {
					t.Errorf("locked on %s", la.Instance)
				}
				locked = append(locked, accountList(la.Accounts))
			}
			got := want{l.Run, strings.Join(locked, ";"), strings.Join(l.ReadOnly, ","), l.Promoted, l.Result}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if l.Empty() != (got.locked == "" && got.readOnly == "") {
				t.Errorf("Empty() = %v for %s", l.Empty(), l)
			}
		})
	}
	if _, err := FindLeftovers(toWindow, "nope"); !errors.Is(err, ErrRunNotFound) {
		t.Errorf("unknown run: err = %v", err)
	}
}

func jsonLines(t *testing.T, recs []AuditRecord) string {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		j, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// A kill -9 can cut the last line: ReadLeftovers skips it and uses what came before.
func TestReadLeftoversTruncatedLastLine(t *testing.T) {
	log := jsonLines(t, toWindow)
	full := jsonLines(t, []AuditRecord{promS})
	log += full[:len(full)/2]
	l, err := ReadLeftovers(strings.NewReader(log), "")
	if err != nil {
		t.Fatal(err)
	}
	if l.Run != "r1" || len(l.Locked) != 1 || len(l.ReadOnly) != 1 || l.Promoted != PromotedNo {
		t.Fatalf("got %+v", l)
	}
	if _, err := ReadLeftovers(strings.NewReader(""), ""); !errors.Is(err, ErrRunNotFound) {
		t.Errorf("empty log: err = %v", err)
	}
}

// Execute writes the intent records: fence-writers names the accounts, set-read-only the read_only, each before
// the change.
func TestSwitchoverAnnouncesFenceActions(t *testing.T) {
	var got []AuditRecord
	p := &Plan{Kind: "switchover", Steps: []*Step{{Name: stepFenceWriters, Instance: "x:1", Do: func(ctx context.Context) error {
		announce(ctx, FenceAction{Lock: []Account{app}}, "about to lock")
		return errors.New("killed")
	}}}}
	audit, _ := auditOf(t, p, ExecOptions{})
	for _, line := range strings.Split(strings.TrimSpace(audit), "\n") {
		var r AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if len(got) < 3 || got[2].Result != "intent" || got[2].Fence == nil || got[2].Fence.Lock[0] != app || got[2].Detail != "about to lock" {
		t.Fatalf("no intent record before the outcome:\n%s", audit)
	}
	announce(context.Background(), FenceAction{}, "outside Execute: no-op")
}

// PlanRecover refuses to make the old primary writable when the candidate may have been promoted or another
// instance is writable, and plans unlock and lift otherwise.
func TestPlanRecover(t *testing.T) {
	f := newFake("y:1")
	ctx := context.Background()
	l, _ := FindLeftovers(toWindow, "")
	if _, err := PlanRecover(ctx, f, nil, l); !errors.Is(err, ErrUnreachable) {
		t.Errorf("no topology: err = %v", err)
	}
	topo := f.topology()
	p, err := PlanRecover(ctx, f, topo, l)
	if err != nil {
		t.Fatal(err)
	}
	f.locked[app] = true
	f.vars["x:1"].ReadOnly = true
	if err := p.Execute(ctx, ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	if f.locked[app] || f.vars["x:1"].ReadOnly {
		t.Fatalf("after recover: locked=%v read_only=%v\n%s", f.locked[app], f.vars["x:1"].ReadOnly, f.statements())
	}
	f.vars["y:1"].ReadOnly = false
	if _, err := PlanRecover(ctx, f, f.topology(), l); !errors.Is(err, ErrMultipleWritable) || !strings.Contains(err.Error(), "y:1") {
		t.Errorf("y:1 writable: err = %v, want ErrMultipleWritable naming y:1", err)
	}
	f.vars["y:1"].ReadOnly = true
	maybe, _ := FindLeftovers(with(toWindow, promS), "")
	if _, err := PlanRecover(ctx, f, topo, maybe); !errors.Is(err, ErrPromotionUnknown) {
		t.Errorf("promote started: err = %v, want ErrPromotionUnknown", err)
	}
	// Promote's read_only=0 took after all (a hung candidate ran it when it resumed): the candidate is the
	// primary, the old one stays read-only, and the locks are lifted through the candidate.
	f.vars["y:1"].ReadOnly = false
	p, err = PlanRecover(ctx, f, topo, maybe)
	if err != nil {
		t.Fatalf("promote started, candidate writable: %v", err)
	}
	for _, st := range p.Steps {
		if st.Name == stepLiftReadOnly || st.Name == stepUnlockAccounts && st.Instance != "y:1" {
			t.Fatalf("candidate writable: step %s on %s", st.Name, st.Instance)
		}
	}
	f.vars["y:1"].ReadOnly = true
	clean, _ := FindLeftovers(with(toWindow, promS, promF, promU, roU, fenceU, planRB), "")
	if _, err := PlanRecover(ctx, f, topo, clean); !errors.Is(err, ErrNothingToRecover) {
		t.Errorf("rolled back: err = %v, want ErrNothingToRecover", err)
	}
	hostile, _ := FindLeftovers([]AuditRecord{{Run: "r", Step: stepFenceWriters, Instance: "x:1", Phase: "do", Result: "intent",
		Fence: &FenceAction{Lock: []Account{{User: "a\x1b[2J", Host: "%"}}}}}, "")
	if _, err := PlanRecover(ctx, f, nil, hostile); !errors.Is(err, ErrInvalidValue) || strings.Contains(err.Error(), "\x1b") {
		t.Errorf("control characters in an account: err = %q, want ErrInvalidValue, cleaned", err)
	}
	badAddr, _ := FindLeftovers([]AuditRecord{{Run: "r", Step: stepSetReadOnly, Instance: "no port", Phase: "do", Result: "intent",
		Fence: &FenceAction{ReadOnly: &ro1}}}, "")
	if _, err := PlanRecover(ctx, f, nil, badAddr); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("instance without a port: err = %v, want ErrInvalidValue", err)
	}
	onlyLocked, _ := FindLeftovers(with(toWindow, promS, promOK), "")
	p, err = PlanRecover(ctx, f, nil, onlyLocked)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 2 || p.Steps[1].Name != stepUnlockAccounts || !strings.Contains(p.Steps[1].Description, "'app'@'%'") {
		t.Fatalf("plan: %+v", p.Steps)
	}
}

func FuzzReadLeftovers(f *testing.F) {
	f.Add(`{"run":"r1","phase":"plan","result":"start"}` + "\n" + `{"run":"r1","step":"fence-writers","instance":"x:1","phase":"do","result":"intent","fence":{"lock":[{"user":"a","host":"%"}]}}`)
	f.Add(`{"run":"r9","step":"unlock-accounts","instance":"x:1","phase":"do","result":"intent","fence":{"of_run":"r9","unlock":[{"user":"a","host":"%"}]}}` + "\n" + `{"run":"r9","step":"unlock-accounts","instance":"x:1","phase":"do","result":"ok"}`)
	f.Add("not json\n{}")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ReadLeftovers(strings.NewReader(s), "")
		if err == nil && l.Empty() != (len(l.Locked) == 0 && len(l.ReadOnly) == 0) {
			t.Fatal("Empty inconsistent")
		}
	})
}
