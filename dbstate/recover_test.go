package dbstate

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
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

// The gap: dbstate killed after fence-own-account announced locking its own login on x:1, with y:1 caught up
// (wait-for-candidate ok), before promote; finished is a recover run r8 that completes it.
var (
	self     = Account{User: "dbstate", Host: "%"}
	waitS    = AuditRecord{Run: "r1", Step: stepWaitCandidate, Instance: "y:1", Phase: "do", Result: "start"}
	waitOK   = AuditRecord{Run: "r1", Step: stepWaitCandidate, Instance: "y:1", Phase: "do", Result: "ok"}
	ownS     = AuditRecord{Run: "r1", Step: stepFenceOwn, Instance: "x:1", Phase: "do", Result: "start"}
	ownI     = AuditRecord{Run: "r1", Step: stepFenceOwn, Instance: "x:1", Phase: "do", Result: "intent", Fence: &FenceAction{Lock: []Account{self}}}
	ownU     = AuditRecord{Run: "r1", Step: stepFenceOwn, Instance: "x:1", Phase: "undo", Result: "ok"}
	gap      = with(toWindow, waitS, waitOK, ownS, ownI)
	finished = append(append(append(append([]AuditRecord{{Run: "r8", Phase: "plan", Result: "start", Plan: "recover: lift"}},
		completing("r8", stepCompletePromote, "y:1", stepPromote)...),
		completing("r8", stepResetCandidate, "y:1", stepResetCandidate)...),
		completing("r8", stepRepointOld, "x:1", stepRepointOld)...),
		append(completing("r8", stepVerify, "x:1", stepVerify),
			AuditRecord{Run: "r8", Step: stepUnlockAccounts, Instance: "y:1", Phase: "do", Result: "start"},
			AuditRecord{Run: "r8", Step: stepUnlockAccounts, Instance: "y:1", Phase: "do", Result: "intent", Fence: &FenceAction{OfRun: "r1", Unlock: []Account{app, self}, For: "x:1"}},
			AuditRecord{Run: "r8", Step: stepUnlockAccounts, Instance: "y:1", Phase: "do", Result: "ok"})...)
)

// completing are the records of a recover run's step that completes step of run r1.
func completing(run, name, instance, step string) []AuditRecord {
	return []AuditRecord{
		{Run: run, Step: name, Instance: instance, Phase: "do", Result: "start"},
		{Run: run, Step: name, Instance: instance, Phase: "do", Result: "intent", Fence: &FenceAction{OfRun: "r1", Completes: step}},
		{Run: run, Step: name, Instance: instance, Phase: "do", Result: "ok"},
	}
}

// fwCode names what a Forward has left to do, "" for nil.
func fwCode(fw *Forward) string {
	if fw == nil {
		return ""
	}
	var parts []string
	for _, p := range []struct {
		on   bool
		name string
	}{{fw.Promote, "promote"}, {fw.Reset, "reset"}, {fw.Repoint, "repoint"}, {fw.Verify, "verify"}} {
		if p.on {
			parts = append(parts, p.name)
		}
	}
	return strings.Join(parts, ",")
}

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
		forward  string // fwCode
	}
	for _, tc := range []struct {
		name string
		recs []AuditRecord
		run  string
		want want
	}{
		{"killed before the fence", []AuditRecord{planS, fenceS}, "", want{"r1", "", "", PromotedNo, "", ""}},
		{"killed while locking (intent written)", []AuditRecord{planS, fenceS, fenceI}, "", want{"r1", "'app'@'%'", "", PromotedNo, "", ""}},
		{"killed after the fence", []AuditRecord{planS, fenceS, fenceI, fenceOK}, "", want{"r1", "'app'@'%'", "", PromotedNo, "", ""}},
		{"killed before set-read-only changed anything", []AuditRecord{planS, fenceS, fenceI, fenceOK, roS}, "", want{"r1", "'app'@'%'", "", PromotedNo, "", ""}},
		{"killed after set-read-only", toWindow, "", want{"r1", "'app'@'%'", "x:1", PromotedNo, "", ""}},
		{"killed in promote", with(toWindow, promS), "", want{"r1", "'app'@'%'", "", PromotedMaybe, "", "promote,reset,repoint,verify"}},
		{"killed after promote", with(toWindow, promS, promOK), "", want{"r1", "'app'@'%'", "", PromotedYes, "", "reset,repoint,verify"}},
		{"killed after unfence", with(toWindow, promS, promOK, unfS, unfOK), "", want{"r1", "", "", PromotedYes, "", "reset,repoint,verify"}},
		{"killed while unfencing", with(toWindow, promS, promOK, unfS), "", want{"r1", "'app'@'%'", "", PromotedYes, "", "reset,repoint,verify"}},
		{"clean run", with(toWindow, promS, promOK, unfS, unfOK, planOK), "", want{"r1", "", "", PromotedYes, "ok", ""}},
		{"clean run, locks kept on the demoted primary", with(toWindow, promS, promOK, planOK), "", want{"r1", "'app'@'%'", "", PromotedYes, "ok", ""}},
		{"failed past promote, cleanup kept the locks", with(toWindow, promS, promOK, unfKeep, unfCln, planNRB), "", want{"r1", "'app'@'%'", "", PromotedYes, "not-rolled-back", "reset,repoint,verify"}},
		{"kept locks, then recovered", with(with(toWindow, promS, promOK, planOK), lifted(false)...), "r1", want{"r1", "", "", PromotedYes, "ok", ""}},
		{"already read-only: no intent", []AuditRecord{planS, fenceS, fenceOK, roS, roOK, promS, promF}, "", want{"r1", "", "", PromotedMaybe, "", "promote,reset,repoint,verify"}},
		{"rolled back cleanly", with(toWindow, promS, promF, promU, roU, fenceU, unfCln, planRB), "", want{"r1", "", "", PromotedNo, "rolled-back", ""}},
		{"killed in the rollback", with(toWindow, promS, promF, promU), "", want{"r1", "'app'@'%'", "x:1", PromotedNo, "", ""}},
		{"rollback failed to unlock", with(toWindow, promS, promF, promU, roU, unfClnF, planRBI), "", want{"r1", "'app'@'%'", "", PromotedNo, "rollback-incomplete", ""}},
		{"a clean run after the interrupted one", with(toWindow, rerun("r2", planS, fenceS, fenceOK, planOK)...), "", want{"r1", "'app'@'%'", "x:1", PromotedNo, "", ""}},
		{"two runs, the named one clean", with(toWindow, rerun("r2", planS, planOK)...), "r2", want{"r2", "", "", PromotedNo, "ok", ""}},
		{"two interrupted runs: the last one", with(toWindow, rerun("r2", planS, fenceS, fenceI)...), "", want{"r2", "'app'@'%'", "", PromotedNo, "", ""}},
		{"recovered", with(toWindow, lifted(true)...), "", want{"r9", "", "", PromotedNo, "", ""}},
		{"recovered, asked by run", with(toWindow, lifted(true)...), "r1", want{"r1", "", "", PromotedNo, "", ""}},
		{"recover killed after unlocking", with(toWindow, lifted(true)...)[:len(toWindow)+5], "r1", want{"r1", "", "x:1", PromotedNo, "", ""}},
		{"recover killed while unlocking", with(toWindow, lifted(false)[:3]...), "r1", want{"r1", "'app'@'%'", "x:1", PromotedNo, "", ""}},
		{"killed between fence-own-account and promote, candidate caught up", gap, "", want{"r1", "'app'@'%', 'dbstate'@'%'", "", PromotedNo, "", "promote,reset,repoint,verify"}},
		{"killed in fence-own-account, the final wait failed", with(toWindow, waitS, ownS), "", want{"r1", "'app'@'%'", "x:1", PromotedNo, "", ""}},
		{"gap, then recover finished it", with(gap, finished...), "r1", want{"r1", "", "", PromotedYes, "", ""}},
		{"gap, recover finished all but the repoint", with(gap, finished[:8]...), "r1", want{"r1", "'app'@'%', 'dbstate'@'%'", "", PromotedYes, "", "repoint,verify"}},
		// promote failed before its point of no return and the run rolled back, which had unlocked dbstate's own
		// login on x:1 again when dbstate was killed: the run chose to go back, and nothing keeps recover from it.
		{"gap, killed in the rollback after fence-own-account's undo", with(gap, promS, promF, promU, ownU), "", want{"r1", "'app'@'%'", "x:1", PromotedNo, "", ""}},
		{"promote's undo failed in a rollback: not forward", with(toWindow, promS, promF, roU, fenceU, planRBI), "", want{"r1", "", "", PromotedMaybe, "rollback-incomplete", ""}},
		{"completed run: nothing forward", with(toWindow, promS, promOK, planOK), "r1", want{"r1", "'app'@'%'", "", PromotedYes, "ok", ""}},
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
			got := want{l.Run, strings.Join(locked, ";"), strings.Join(l.ReadOnly, ","), l.Promoted, l.Result, fwCode(l.Forward)}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if l.Empty() != (got.locked == "" && got.readOnly == "" && got.forward == "") {
				t.Errorf("Empty() = %v for %s", l.Empty(), l)
			}
		})
	}
	// A replica moved under the candidate before the run died (never promoted): pointed back, unless undone.
	mvS := AuditRecord{Run: "r1", Step: stepMoveReplica, Instance: "z:1", Phase: "do", Result: "start"}
	mvI := AuditRecord{Run: "r1", Step: stepMoveReplica, Instance: "z:1", Phase: "do", Result: "intent", Fence: &FenceAction{MovedFrom: "x:1"}}
	mvU := AuditRecord{Run: "r1", Step: stepMoveReplica, Instance: "z:1", Phase: "undo", Result: "ok"}
	back := completing("r7", stepMoveBack, "z:1", stepMoveBack)
	back[1].Fence.For = "z:1"
	for _, tc := range []struct {
		name  string
		recs  []AuditRecord
		moved string
	}{
		{"killed after a move", []AuditRecord{planS, mvS, mvI}, "z:1"},
		{"killed before the move announced anything", []AuditRecord{planS, mvS}, ""},
		{"the move undone", []AuditRecord{planS, mvS, mvI, mvU}, ""},
		{"moved back by recover", with([]AuditRecord{planS, mvS, mvI}, back...), ""},
		{"promoted: it stays", with(toWindow, mvS, mvI, promS, promOK), ""},
	} {
		l, err := FindLeftovers(tc.recs, "r1")
		if err != nil || strings.Join(l.Moved, ",") != tc.moved || (tc.moved != "" && (l.OldPrimary != "x:1" || l.Empty())) {
			t.Errorf("%s: moved %q (old primary %q), err %v; want %q", tc.name, l.Moved, l.OldPrimary, err, tc.moved)
		}
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
	// Promote started, and the log does not say how it ended: recover finishes the switchover, which needs the
	// replication credentials to repoint x:1.
	maybe, _ := FindLeftovers(with(toWindow, promS), "")
	if _, err := PlanRecover(ctx, f, topo, maybe); !errors.Is(err, ErrReplicationLogin) || !strings.Contains(err.Error(), "--repl-user") {
		t.Errorf("promote started, no replication credentials: err = %v, want ErrReplicationLogin", err)
	}
	p, err = PlanRecoverWith(ctx, f, topo, maybe, RecoverOptions{Replication: Credentials{User: "repl", Password: "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := stepNames(p); got != "recheck complete-promote reset-candidate repoint-old-primary unlock-accounts verify" {
		t.Errorf("forward plan: %s", got)
	}
	var b strings.Builder
	p.WriteText(&b)
	if strings.Contains(b.String(), "'pw'") {
		t.Errorf("password in the plan:\n%s", b.String())
	}
	// Promote's read_only=0 took after all (a hung candidate ran it when it resumed): the candidate is the
	// primary, the old one stays read-only, and the locks are lifted through the candidate.
	f.vars["y:1"].ReadOnly = false
	p, err = PlanRecoverWith(ctx, f, topo, maybe, RecoverOptions{Replication: Credentials{User: "repl", Password: "pw"}})
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
	onlyLocked, _ := FindLeftovers(with(toWindow, promS, promOK, planOK), "")
	p, err = PlanRecover(ctx, f, nil, onlyLocked)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 2 || p.Steps[1].Name != stepUnlockAccounts || !strings.Contains(p.Steps[1].Description, "'app'@'%'") {
		t.Fatalf("plan: %+v", p.Steps)
	}
}

func stepNames(p *Plan) string {
	var names []string
	for _, s := range p.Steps {
		names = append(names, s.Name)
	}
	return strings.Join(names, " ")
}

func FuzzReadLeftovers(f *testing.F) {
	f.Add(`{"run":"r1","phase":"plan","result":"start"}` + "\n" + `{"run":"r1","step":"fence-writers","instance":"x:1","phase":"do","result":"intent","fence":{"lock":[{"user":"a","host":"%"}]}}`)
	f.Add(`{"run":"r9","step":"unlock-accounts","instance":"x:1","phase":"do","result":"intent","fence":{"of_run":"r9","unlock":[{"user":"a","host":"%"}]}}` + "\n" + `{"run":"r9","step":"unlock-accounts","instance":"x:1","phase":"do","result":"ok"}`)
	f.Add("not json\n{}")
	// A switchover killed between fence-own-account and promote (finished forward), and one killed after a move.
	f.Add(`{"run":"r1","phase":"plan","result":"start","plan":"switchover: make y:1 the primary"}` + "\n" +
		`{"run":"r1","step":"wait-for-candidate","instance":"y:1","phase":"do","result":"ok"}` + "\n" +
		`{"run":"r1","step":"fence-own-account","instance":"x:1","phase":"do","result":"start"}`)
	f.Add(`{"run":"r1","phase":"plan","result":"start","plan":"switchover: make y:1 the primary"}` + "\n" +
		`{"run":"r1","step":"move-replica","instance":"z:1","phase":"do","result":"intent","fence":{"moved_from":"x:1"}}`)
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ReadLeftovers(strings.NewReader(s), "")
		if err != nil {
			return
		}
		if l.Empty() != (len(l.Locked) == 0 && len(l.ReadOnly) == 0 && len(l.Events) == 0 && l.Forward == nil && len(l.Moved) == 0) {
			t.Fatal("Empty inconsistent")
		}
		if l.Validate() == nil && (strings.ContainsRune(l.String(), '\x1b') || strings.ContainsRune(l.Describe(), '\x1b')) {
			t.Fatalf("control character in %q", l)
		}
	})
}

// A run killed while dbstate's own login was locked on the candidate (fence-candidate, before the promotion):
// the fold keeps the locks with the old primary they can be lifted through, and recover unlocks them there,
// binlogged, when its login cannot unlock on the candidate directly.
func TestRecoverOwnAccountLockedOnTheCandidate(t *testing.T) {
	own := Account{User: "dbstate", Host: "%"}
	candS := AuditRecord{Run: "r1", Step: stepFenceCandidate, Instance: "y:1", Phase: "do", Result: "start"}
	candI := AuditRecord{Run: "r1", Step: stepFenceCandidate, Instance: "y:1", Phase: "do", Result: "intent",
		Fence: &FenceAction{Lock: []Account{app, own}, Via: "x:1"}}
	candOK := AuditRecord{Run: "r1", Step: stepFenceCandidate, Instance: "y:1", Phase: "do", Result: "ok"}
	candU := AuditRecord{Run: "r1", Step: stepFenceCandidate, Instance: "y:1", Phase: "undo", Result: "ok"}
	unfC := AuditRecord{Run: "r1", Step: stepUnfenceCandidate, Instance: "y:1", Phase: "do", Result: "ok"}
	for _, tc := range []struct {
		name string
		recs []AuditRecord
		want string // leftovers on y:1, "" for none
		via  string
	}{
		{"killed while locking", []AuditRecord{planS, candS, candI}, "'app'@'%', 'dbstate'@'%'", "x:1"},
		{"killed in the window", with([]AuditRecord{planS, candS, candI, candOK}, toWindow[1:]...), "'app'@'%', 'dbstate'@'%'", "x:1"},
		{"rolled back", with([]AuditRecord{planS, candS, candI, candOK}, candU), "", ""},
		{"unfenced after the promotion", with([]AuditRecord{planS, candS, candI, candOK}, promS, promOK, unfC), "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := FindLeftovers(tc.recs, "")
			if err != nil {
				t.Fatal(err)
			}
			got, via := "", ""
			for _, la := range l.Locked {
				if la.Instance == "y:1" {
					got, via = accountList(la.Accounts), la.Via
				}
			}
			if got != tc.want || via != tc.via {
				t.Fatalf("locked on y:1: %q via %q, want %q via %q (%s)", got, via, tc.want, tc.via, l)
			}
		})
	}
	l, _ := FindLeftovers([]AuditRecord{planS, candS, candI}, "")
	f := newFake("y:1")
	f.locked[app], f.locked[own] = true, true
	// dbstate's login is locked on y:1: the direct unlock fails there.
	f.fail["y:1: unlock "+app.String()] = errors.New("Error 4151 (HY000): Access denied, this account is locked")
	p, err := PlanRecover(context.Background(), f, nil, l)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Execute(context.Background(), ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := f.statements(); !strings.Contains(got, "x:1: ALTER USER 'app'@'%' ACCOUNT UNLOCK; x:1: ALTER USER 'dbstate'@'%' ACCOUNT UNLOCK") {
		t.Fatalf("not unlocked through the old primary: %s", got)
	}
	if d := p.Steps[1].Description; !strings.Contains(d, "on x:1 (the old primary") || !strings.Contains(d, "replicates to y:1") {
		t.Fatalf("step: %s", d)
	}
	// Killed in the window: x:1 is left read-only, and y:1 cannot be read with dbstate's login locked there. That
	// does not refuse the recovery: y:1 is read again once unlocked, before read_only is lifted.
	l, _ = FindLeftovers(with([]AuditRecord{planS, candS, candI, candOK}, toWindow[1:]...), "")
	f = newFake("y:1")
	f.vars["x:1"].ReadOnly = true
	f.fail["y:1: vars"] = errors.New("Error 4151 (HY000): Access denied, this account is locked")
	topo := f.topology()
	if p, err = PlanRecover(context.Background(), f, topo, l); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range p.Steps {
		names = append(names, st.Name+" "+st.Instance)
	}
	if got := strings.Join(names, ", "); got != "recheck (none), unlock-accounts x:1, unlock-accounts x:1, recheck-unlocked y:1, lift-read-only x:1" {
		t.Fatalf("steps: %s", got)
	}
	delete(f.fail, "y:1: vars")
	f.vars["y:1"].ReadOnly = false // became writable meanwhile: read_only stays on x:1
	if err := p.Execute(context.Background(), ExecOptions{}); !errors.Is(err, ErrMultipleWritable) || !f.vars["x:1"].ReadOnly {
		t.Fatalf("err = %v, x:1 read_only=%v: want ErrMultipleWritable, x:1 left read-only", err, f.vars["x:1"].ReadOnly)
	}
	// An instance that the run did not fence and cannot be read still refuses.
	l, _ = FindLeftovers(toWindow, "")
	f.fail["y:1: vars"] = errors.New("Error 4151 (HY000): Access denied, this account is locked")
	if _, err := PlanRecover(context.Background(), f, f.topology(), l); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("unfenced unreadable replica: err = %v, want ErrUnreachable", err)
	}
	// Once promoted, the old primary no longer feeds the candidate: no unlock through it.
	l, _ = FindLeftovers(with([]AuditRecord{planS, candS, candI, candOK}, promS, promOK), "")
	if p, err = PlanRecover(context.Background(), f, nil, l); err != nil {
		t.Fatal(err)
	}
	for _, st := range p.Steps {
		if st.Instance == "x:1" && strings.Contains(st.Description, "y:1") {
			t.Fatalf("after a promotion, unlocks y:1 through x:1: %s", st.Description)
		}
	}
}

// otherLogin reads an instance of f as another login would: past the faults injected for dbstate's.
type otherLogin struct{ f *fakeServers }

func (o otherLogin) Vars(_ context.Context, addr string) (*Vars, error) {
	o.f.mu.Lock()
	defer o.f.mu.Unlock()
	c := *o.f.vars[addr]
	return &c, nil
}

// Killed between fence-own-account and promote, with dbstate's login locked on x:1 (error 4151) and x:1
// replicating from no one: recover reads x:1 as the other login, promotes y:1 and resets it, then stops at the
// repoint with ErrStranded, naming what to run on x:1. Once x:1 replicates from y:1 (the operator ran it), a
// second recover finishes, and a third finds nothing.
func TestPlanRecoverForwardStranded(t *testing.T) {
	f := newFake("y:1")
	ctx := context.Background()
	f.vars["x:1"].ReadOnly = true
	locked := &mysql.MySQLError{Number: 4151, Message: "Access denied, this account is locked"}
	f.fail["x:1: vars"], f.fail["x:1: status"] = locked, locked
	ro := RecoverOptions{Replication: Credentials{User: "repl", Password: "pw"}, OldPrimary: otherLogin{f}}
	log := jsonLines(t, gap)
	l, err := ReadLeftovers(strings.NewReader(log), "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := PlanRecoverWith(ctx, f, nil, l, ro)
	if err != nil {
		t.Fatal(err)
	}
	if got := stepNames(p); got != "recheck complete-promote reset-candidate repoint-old-primary unlock-accounts verify" {
		t.Fatalf("plan: %s", got)
	}
	var audit strings.Builder
	err = p.Execute(ctx, ExecOptions{Audit: &audit})
	if !errors.Is(err, ErrStranded) || !strings.Contains(err.Error(), "CHANGE MASTER TO MASTER_HOST='y'") || strings.Contains(err.Error(), "'pw'") {
		t.Fatalf("err = %v, want ErrStranded with the CHANGE MASTER to run (password redacted)", err)
	}
	if f.vars["y:1"].ReadOnly || f.status["y:1"] != nil {
		t.Fatalf("y:1 not promoted and reset: %s", f.statements())
	}
	log += audit.String()
	if l, _ = ReadLeftovers(strings.NewReader(log), "r1"); fwCode(l.Forward) != "repoint,verify" || l.Promoted != PromotedYes {
		t.Fatalf("after the first recover: %s (promoted %s)", fwCode(l.Forward), l.Promoted)
	}
	// The operator repointed x:1; the unlock through y:1 lets dbstate's login in again.
	delete(f.fail, "x:1: vars")
	delete(f.fail, "x:1: status")
	f.status["x:1"] = &ReplicaStatus{MasterHost: "y", MasterPort: 1, IORunning: "Yes", SQLRunning: "Yes", UsingGTID: "Slave_Pos"}
	p, err = PlanRecoverWith(ctx, f, nil, l, ro)
	if err != nil {
		t.Fatal(err)
	}
	audit.Reset()
	if err := p.Execute(ctx, ExecOptions{Audit: &audit}); err != nil {
		t.Fatal(err)
	}
	if f.locked[app] || f.locked[self] {
		t.Fatalf("still locked: %s", f.statements())
	}
	log += audit.String()
	if l, _ = ReadLeftovers(strings.NewReader(log), "r1"); !l.Empty() {
		t.Fatalf("left after the second recover: %s", l)
	}
}
