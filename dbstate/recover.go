package dbstate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/evenkeel/evenkeel/internal/ctxwait"
)

// Recovering from dbstate's own death. A switchover locks accounts on the old primary (fence-writers) and makes
// it read-only (set-read-only); a kill -9 of dbstate between those steps and the end of the run leaves them so.
// Each of those steps writes an audit record with result "intent" (AuditRecord.Fence) before it changes
// anything, and its undo or cleanup writes an outcome record after. Leftovers folds a log into what each run
// may have left; PlanRecover turns that into a plan that lifts exactly that, and whose own records (with
// FenceAction.OfRun) mark it lifted, so that a second recover finds nothing.

// ErrNothingToRecover is returned by PlanRecover when the run left nothing to lift.
var ErrNothingToRecover = errors.New("nothing to recover")

// ErrPromotionUnknown refuses to make the old primary writable again: the run started promoting the candidate
// and the log does not say how that ended, so the candidate may be writable.
var ErrPromotionUnknown = errors.New("the candidate may have been promoted")

// Bounds of the fold: an audit log is outside text.
const maxLeftoverAccounts = 10_000 // per run

// Promotion says whether a run made its candidate writable.
type Promotion string

const (
	PromotedNo    Promotion = "no"    // promote never started, or it was undone
	PromotedYes   Promotion = "yes"   // promote succeeded: the old primary is meant to stay read-only
	PromotedMaybe Promotion = "maybe" // promote started and the log has no outcome that settles it
)

// Step names that the fold recognises; the step constructors use them too.
const (
	stepFenceWriters     = "fence-writers"
	stepUnfenceWriters   = "unfence-writers"
	stepSetReadOnly      = "set-read-only"
	stepPromote          = "promote"
	stepUnlockAccounts   = "unlock-accounts"
	stepLiftReadOnly     = "lift-read-only"
	stepFenceCandidate   = "fence-candidate"
	stepUnfenceCandidate = "unfence-candidate"
	stepFenceReplica     = "fence-replica"
	stepUnfenceReplica   = "unfence-replica"
	stepFenceOwn         = "fence-own-account"
	stepDisableEvents    = "disable-events"
	stepEnableEvents     = "enable-events"
	stepRestoreEvents    = "enable-events-again"
)

// LockedAccounts are accounts a run locked on one instance and did not unlock.
type LockedAccounts struct {
	Instance string    `json:"instance"`
	Accounts []Account `json:"accounts"`
}

// StoppedEvents are events a run stopped on one instance and did not enable again.
type StoppedEvents struct {
	Instance string  `json:"instance"`
	Events   []Event `json:"events"`
}

// Leftovers is what one run of a plan may have left on the servers, from its audit records.
type Leftovers struct {
	Run    string `json:"run"`
	Plan   string `json:"plan"`
	Result string `json:"result"` // the plan's result record; "" when the run has none (it was interrupted)
	// LastStep is the last step that started (for an interrupted run: the one that was running).
	LastStep string `json:"last_step,omitempty"`
	// Locked are the accounts announced by fence-writers and not unlocked since, per instance: also those a
	// switchover kept locked on purpose on the demoted primary (after a promotion, unless UnlockDemoted).
	Locked []LockedAccounts `json:"locked,omitempty"`
	// ReadOnly are the instances that set-read-only announced making read-only, that no undo made writable again,
	// while the candidate was not promoted (after a promotion the old primary is meant to stay read-only).
	ReadOnly []string `json:"read_only,omitempty"`
	// Events are the events disable-events announced stopping on the old primary and that were not enabled again
	// since, neither there (an undo) nor on the new primary (enable-events).
	Events    []StoppedEvents `json:"events,omitempty"`
	Candidate string          `json:"candidate,omitempty"` // where promote ran, if it started
	Promoted  Promotion       `json:"promoted"`
}

// Empty reports whether the run left nothing to lift.
func (l *Leftovers) Empty() bool {
	return len(l.Locked) == 0 && len(l.ReadOnly) == 0 && len(l.Events) == 0
}

// String says, in words, what the run left.
func (l *Leftovers) String() string {
	var parts []string
	for _, la := range l.Locked {
		parts = append(parts, "locked on "+la.Instance+": "+accountList(la.Accounts))
	}
	for _, x := range l.ReadOnly {
		parts = append(parts, x+" left read_only=1")
	}
	for _, se := range l.Events {
		parts = append(parts, "events stopped on "+se.Instance+": "+eventList(se.Events))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

// Describe names the run for a terminal, cleaned of control characters: its id, plan and how it ended.
func (l *Leftovers) Describe() string {
	state := "interrupted in step " + orNone(l.LastStep)
	if l.Result != "" {
		state = "result " + l.Result
	}
	return clean(fmt.Sprintf("run %s (%s; %s)", l.Run, l.Plan, state))
}

// Validate checks what came from the log before it reaches a connection, a statement or a terminal: addresses
// are host:port, account names have no control characters.
func (l *Leftovers) Validate() error {
	addrs := slices.Clone(l.ReadOnly)
	if l.Candidate != "" {
		addrs = append(addrs, l.Candidate)
	}
	for _, se := range l.Events {
		addrs = append(addrs, se.Instance)
		for _, e := range se.Events {
			if _, err := alterEventSQL(e, true); err != nil || clean(e.Schema) != e.Schema || clean(e.Name) != e.Name {
				return fmt.Errorf("%w: audit log: event %s", ErrInvalidValue, e)
			}
		}
	}
	for _, la := range l.Locked {
		addrs = append(addrs, la.Instance)
		for _, a := range la.Accounts {
			if clean(a.User) != a.User || clean(a.Host) != a.Host {
				return fmt.Errorf("%w: audit log: account %q@%q", ErrInvalidValue, clean(a.User), clean(a.Host))
			}
		}
	}
	for _, a := range addrs {
		if _, _, err := splitAddr(a); err != nil || clean(a) != a {
			return fmt.Errorf("%w: audit log: instance %q", ErrInvalidValue, clean(a))
		}
	}
	return nil
}

// runState is the fold of one run's records.
type runState struct {
	l        Leftovers
	locked   map[string][]Account // by instance
	ro       map[string]bool
	kept     map[string]bool      // instances where a cleanup kept the locks on purpose
	events   map[string][]Event   // stopped, by instance
	ownLock  map[string][]Account // fence-own-account's announced locks, by instance
	accounts int
	pending  map[string]FenceAction // a recover run's announced lifts, by step and instance, until they succeed
}

// fold is the pure core of recovery: records go in, in log order; leftovers come out.
type fold struct {
	only  string // when set, only this run (and recover runs that lift its leftovers) is kept
	runs  map[string]*runState
	order []string
}

func (f *fold) state(id string, rec AuditRecord) (*runState, error) {
	st := f.runs[id]
	if st == nil {
		if len(f.runs) >= maxAuditRuns {
			return nil, fmt.Errorf("audit log: more than %d runs to keep", maxAuditRuns)
		}
		// The maps are made on first use: most runs lock nothing.
		st = &runState{l: Leftovers{Run: id, Plan: rec.Plan, Promoted: PromotedNo}}
		f.runs[id] = st
		f.order = append(f.order, id)
	}
	return st, nil
}

func (f *fold) add(id string, rec AuditRecord) error {
	if f.only != "" && id != f.only && (rec.Fence == nil || rec.Fence.OfRun != f.only) && f.runs[id] == nil {
		return nil
	}
	st, err := f.state(id, rec)
	if err != nil {
		return err
	}
	key := rec.Step + " on " + rec.Instance
	settled := rec.Result == "ok" || rec.Result == "nothing-changed"
	switch {
	case rec.Phase == "plan":
		if rec.Result != "start" {
			st.l.Result = rec.Result
		}
	case rec.Result == "intent" && rec.Fence != nil:
		fa := *rec.Fence
		if fa.OfRun != "" {
			if st.pending == nil {
				st.pending = map[string]FenceAction{}
			}
			st.pending[key] = fa
			return nil
		}
		if len(fa.Kept) > 0 {
			if st.kept == nil {
				st.kept = map[string]bool{}
			}
			st.kept[rec.Instance] = true
		}
		for _, a := range fa.Lock {
			if !slices.Contains(st.locked[rec.Instance], a) {
				if st.accounts++; st.accounts > maxLeftoverAccounts {
					return fmt.Errorf("audit log: run %s locks more than %d accounts", id, maxLeftoverAccounts)
				}
				if st.locked == nil {
					st.locked = map[string][]Account{}
				}
				st.locked[rec.Instance] = append(st.locked[rec.Instance], a)
			}
		}
		if fa.ReadOnly != nil && *fa.ReadOnly {
			if st.ro == nil {
				st.ro = map[string]bool{}
			}
			st.ro[rec.Instance] = true
		}
		if len(fa.DisableEvents) > 0 {
			if len(fa.DisableEvents) > maxEvents {
				return fmt.Errorf("audit log: run %s stops more than %d events", id, maxEvents)
			}
			if st.events == nil {
				st.events = map[string][]Event{}
			}
			st.events[rec.Instance] = slices.Clone(fa.DisableEvents)
		}
		if rec.Step == stepFenceOwn {
			if st.ownLock == nil {
				st.ownLock = map[string][]Account{}
			}
			st.ownLock[rec.Instance] = fa.Lock
		}
	case rec.Phase == "do" && rec.Result == "start":
		st.l.LastStep = rec.Step
		if rec.Step == stepPromote {
			st.l.Promoted, st.l.Candidate = PromotedMaybe, rec.Instance
		}
	case rec.Step == stepPromote && rec.Phase == "do" && rec.Result == "ok":
		st.l.Promoted = PromotedYes
	case rec.Step == stepPromote && rec.Phase == "undo" && settled:
		st.l.Promoted = PromotedNo
	case rec.Step == stepFenceWriters && rec.Phase == "undo" && settled,
		rec.Step == stepUnfenceWriters && (rec.Phase == "do" || rec.Phase == "cleanup") && rec.Result == "ok" && !st.kept[rec.Instance]:
		delete(st.locked, rec.Instance)
	case rec.Step == stepSetReadOnly && rec.Phase == "undo" && settled:
		delete(st.ro, rec.Instance)
	case (rec.Step == stepFenceCandidate || rec.Step == stepFenceReplica) && rec.Phase == "undo" && settled,
		(rec.Step == stepUnfenceCandidate || rec.Step == stepUnfenceReplica) && (rec.Phase == "do" || rec.Phase == "cleanup") && rec.Result == "ok":
		delete(st.locked, rec.Instance)
	case rec.Step == stepFenceOwn && rec.Phase == "undo" && settled:
		if left := slices.DeleteFunc(st.locked[rec.Instance], func(b Account) bool { return slices.Contains(st.ownLock[rec.Instance], b) }); len(left) > 0 {
			st.locked[rec.Instance] = left
		} else {
			delete(st.locked, rec.Instance)
		}
	case rec.Step == stepDisableEvents && rec.Phase == "undo" && settled,
		rec.Step == stepEnableEvents && (rec.Phase == "do" || rec.Phase == "cleanup") && rec.Result == "ok" && st.l.Promoted == PromotedYes:
		st.events = nil
	case rec.Phase == "do" && rec.Result == "ok":
		// A recover run's lift succeeded: it no longer is a leftover of the run it names.
		fa, ok := st.pending[key]
		if !ok {
			return nil
		}
		delete(st.pending, key)
		of := f.runs[fa.OfRun]
		if of == nil {
			return nil
		}
		target := rec.Instance
		if fa.For != "" {
			target = fa.For
		}
		if left, ok := of.locked[target]; ok {
			left = slices.DeleteFunc(left, func(b Account) bool { return slices.Contains(fa.Unlock, b) })
			if len(left) == 0 {
				delete(of.locked, target)
			} else {
				of.locked[target] = left
			}
		}
		if fa.ReadOnly != nil && !*fa.ReadOnly {
			delete(of.ro, rec.Instance)
		}
		if len(fa.EnableEvents) > 0 {
			of.events = nil
		}
	}
	return nil
}

// leftovers is what run id left, from the records folded so far.
func (f *fold) leftovers(id string) *Leftovers {
	st := f.runs[id]
	l := st.l
	inst := make([]string, 0, len(st.locked))
	for i := range st.locked {
		inst = append(inst, i)
	}
	slices.Sort(inst)
	for _, i := range inst {
		l.Locked = append(l.Locked, LockedAccounts{Instance: i, Accounts: slices.Clone(st.locked[i])})
	}
	ev := make([]string, 0, len(st.events))
	for i := range st.events {
		ev = append(ev, i)
	}
	slices.Sort(ev)
	for _, i := range ev {
		l.Events = append(l.Events, StoppedEvents{Instance: i, Events: slices.Clone(st.events[i])})
	}
	if l.Promoted != PromotedYes {
		for i := range st.ro {
			l.ReadOnly = append(l.ReadOnly, i)
		}
		slices.Sort(l.ReadOnly)
	}
	return &l
}

// pick returns the leftovers of runID, or, when runID is empty, of the last run that left something (or, when
// none did, of the last run).
func (f *fold) pick(runID string) (*Leftovers, error) {
	if runID != "" {
		if f.runs[runID] == nil {
			return nil, fmt.Errorf("%w: %q", ErrRunNotFound, runID)
		}
		return f.leftovers(runID), nil
	}
	if len(f.order) == 0 {
		return nil, fmt.Errorf("%w: the log has no records", ErrRunNotFound)
	}
	for k := len(f.order) - 1; k >= 0; k-- {
		if l := f.leftovers(f.order[k]); !l.Empty() {
			return l, nil
		}
	}
	return f.leftovers(f.order[len(f.order)-1]), nil
}

// FindLeftovers is pure: from the records of an audit log, in order, what run runID left, or, when runID is
// empty, the last run that left something (the last run when none did). A recover run's records lift what it
// lifted from the run it names.
func FindLeftovers(recs []AuditRecord, runID string) (*Leftovers, error) {
	f := &fold{only: runID, runs: map[string]*runState{}}
	for _, rec := range recs {
		if err := f.add(rec.Run, rec); err != nil {
			return nil, err
		}
	}
	return f.pick(runID)
}

// ReadLeftovers is FindLeftovers on an audit log (JSON lines, read with the bounds of ReadAuditRun: a cut last
// line or a line that is no record is skipped).
func ReadLeftovers(r io.Reader, runID string) (*Leftovers, error) {
	f := &fold{only: runID, runs: map[string]*runState{}}
	if _, err := scanAudit(r, f.add); err != nil {
		return nil, err
	}
	return f.pick(runID)
}

// PlanRecover plans lifting what l says a run left: unlock its accounts (sql_log_bin=0, on that instance only),
// and make its old primary writable again, which it refuses (a *RefusalError) when the candidate may have been
// promoted or any other instance of t, the tree discovered from the old primary, is writable or unreadable. When
// the log does not say how promote ended, it reads the candidate: writable, it counts as promoted. t
// may be nil when nothing is left read-only. ErrNothingToRecover when l is empty.
//
// The plan only goes forward (its first step, a live re-check, is its point of no return): lifting is what
// recovery is for, so a failure names the steps left instead of locking again.
func PlanRecover(ctx context.Context, s Servers, t *Topology, l *Leftovers) (*Plan, error) {
	if l.Empty() {
		return nil, fmt.Errorf("run %s: %w", l.Run, ErrNothingToRecover)
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	ck := &checklist{op: "recover"}
	ck.pass("leftovers", "%s: %s", l.Describe(), l.String())
	if l.Promoted == PromotedMaybe && l.Candidate != "" {
		// The log cannot tell how promote ended (its read_only=0 got no answer, or dbstate died in it); the
		// candidate can: writable, it is the primary, and the old primary stays read-only.
		if v, err := s.Vars(ctx, l.Candidate); err == nil && !v.ReadOnly {
			settled := *l
			settled.Promoted, settled.ReadOnly = PromotedYes, nil
			l = &settled
			ck.pass("promotion", "%s is writable now: it was promoted, and the old primary stays read-only", l.Candidate)
		}
	}
	var others []string // other instances of the tree, to read again right before lifting read_only
	for _, x := range l.ReadOnly {
		if l.Promoted == PromotedMaybe {
			ck.fail("candidate never promoted", ErrPromotionUnknown, fmt.Sprintf("promote on %s started and the log does not say how it ended: "+
				"%s may be writable; look (dbstate topology show) and lift read_only on %s by hand if it is not", l.Candidate, l.Candidate, x))
			continue
		}
		detail := "promote never started"
		if l.Candidate != "" {
			detail = "promote on " + l.Candidate + " was undone"
		}
		ck.pass("candidate never promoted", "%s", detail)
		if t == nil {
			ck.fail("one writable", ErrUnreachable, "the tree of "+x+" was not read")
			continue
		}
		kx := t.Resolve(x)
		var writable, unreadable []string
		for _, a := range t.sortedAddrs() {
			in := t.Instances[a]
			switch {
			case a == kx:
			case in.Error != "":
				unreadable = append(unreadable, a+" ("+in.Error+")")
			case !in.ReadOnly:
				writable = append(writable, a)
			default:
				others = append(others, a)
			}
		}
		if len(unreadable) > 0 {
			ck.fail("tree readable", ErrUnreachable, "cannot tell whether they are writable: "+strings.Join(unreadable, ", "))
		}
		if len(writable) > 0 {
			ck.fail("one writable", ErrMultipleWritable, fmt.Sprintf("writable besides %s: %s; making %s writable would split the tree", x, strings.Join(writable, ", "), x))
		} else if len(unreadable) == 0 {
			ck.pass("one writable", "no instance of %s's tree is writable", x)
		}
	}
	if len(l.Events) > 0 {
		switch {
		case l.Promoted == PromotedMaybe:
			ck.fail("events", ErrPromotionUnknown, fmt.Sprintf("promote on %s started and the log does not say how it ended: "+
				"enable the events %s on whichever instance is the primary, by hand", l.Candidate, l.String()))
		case l.Promoted == PromotedYes:
			ck.pass("events", "enabled on %s, the new primary (binlogged: SLAVESIDE_DISABLED on its replicas)", l.Candidate)
		default:
			ck.pass("events", "enabled again where they were stopped (sql_log_bin=0): the candidate was never promoted")
		}
	}
	checks, err := ck.result()
	if err != nil {
		return nil, err
	}
	p := &Plan{Kind: "recover", Summary: fmt.Sprintf("lift what run %s left: %s", l.Run, l.String()), Preflight: checks,
		OneShot: true, Account: s.Credentials().User}
	p.Steps = append(p.Steps, &Step{
		Name: "recheck", ReadsOnly: true, PointOfNoReturn: true, Instance: orNone(strings.Join(others, ", ")),
		Description: "read again that every other instance of the tree is still read-only (when a read_only is lifted)",
		Do: func(ctx context.Context) error {
			for _, a := range others {
				v, err := s.Vars(ctx, a)
				if err != nil {
					return err
				}
				if !v.ReadOnly {
					return fmt.Errorf("%w: %s became writable since planning", ErrMultipleWritable, a)
				}
			}
			return nil
		},
	})
	for _, la := range l.Locked {
		if l.Promoted == PromotedYes && l.Candidate != "" && la.Instance != l.Candidate {
			p.Steps = append(p.Steps, unlockThroughStep(s, l.Run, l.Candidate, la))
			continue
		}
		p.Steps = append(p.Steps, unlockLeftoverStep(s, l.Run, la))
	}
	for _, se := range l.Events {
		p.Steps = append(p.Steps, restoreEventsStep(s, l.Run, l.Promoted, l.Candidate, se))
	}
	for _, x := range l.ReadOnly {
		p.Steps = append(p.Steps, liftReadOnlyStep(s, l.Run, x))
	}
	return p, nil
}

// unlockLeftoverStep unlocks, on la.Instance only, the accounts run left locked.
func unlockLeftoverStep(s Servers, run string, la LockedAccounts) *Step {
	return &Step{
		Name: stepUnlockAccounts, Instance: la.Instance,
		Description: fmt.Sprintf("ALTER USER ... ACCOUNT UNLOCK (sql_log_bin=0: on %s only): %s", la.Instance, accountList(la.Accounts)),
		Do: func(ctx context.Context) error {
			announce(ctx, FenceAction{OfRun: run, Unlock: la.Accounts}, "about to unlock on "+la.Instance+": "+accountList(la.Accounts))
			return s.SetAccountsLocked(ctx, la.Instance, la.Accounts, false, nil)
		},
	}
}

// liftReadOnlyStep makes x, the old primary that run left read-only, writable again.
func liftReadOnlyStep(s Servers, run, x string) *Step {
	return &Step{
		Name: stepLiftReadOnly, Instance: x,
		Description: fmt.Sprintf("SET GLOBAL read_only=0 on %s (the old primary, left read-only by set-read-only; the candidate was never promoted)", x),
		Do: func(ctx context.Context) error {
			ro := false
			announce(ctx, FenceAction{OfRun: run, ReadOnly: &ro}, "about to SET GLOBAL read_only=0 on "+x)
			return s.Exec(ctx, x, "SET GLOBAL read_only=0")
		},
	}
}

// unlockThroughStep lifts what run left locked on la.Instance, the demoted primary, from the new primary Y: a
// binlogged ALTER USER ... ACCOUNT UNLOCK, a no-op on Y (the locks were never binlogged), replicates to
// la.Instance and unlocks the accounts there. That works even when every admin login of la.Instance is locked
// (dbstate's own and root@localhost included). It waits (up to 30 s) until la.Instance applied it. It unlocks
// on la.Instance directly instead when the login can (that needs no replication from Y).
func unlockThroughStep(s Servers, run, Y string, la LockedAccounts) *Step {
	return &Step{
		Name: stepUnlockAccounts, Instance: Y,
		Description: fmt.Sprintf("ALTER USER ... ACCOUNT UNLOCK on %s, the new primary, binlogged, so that it replicates to %s, the demoted primary, "+
			"and unlocks there: %s; wait (up to 30s) until %s applied it", Y, la.Instance, accountList(la.Accounts), la.Instance),
		Do: func(ctx context.Context) error {
			stmts := make([]string, 0, len(la.Accounts))
			for _, a := range la.Accounts {
				acc, err := a.sql()
				if err != nil {
					return err
				}
				stmts = append(stmts, "ALTER USER "+acc+" ACCOUNT UNLOCK")
			}
			announce(ctx, FenceAction{OfRun: run, Unlock: la.Accounts, For: la.Instance},
				"about to unlock on "+la.Instance+" (directly, or through "+Y+"): "+accountList(la.Accounts))
			// Directly first (sql_log_bin=0), when this login is not locked there: that also works when the
			// demoted primary does not replicate from Y (a run that died before repointing it).
			direct := s.SetAccountsLocked(ctx, la.Instance, la.Accounts, false, nil)
			if direct == nil {
				return nil
			}
			if err := s.Exec(ctx, Y, stmts...); err != nil {
				return err
			}
			v, err := s.Vars(ctx, Y)
			if err != nil {
				return err
			}
			// dbstate's own login may be locked on la.Instance until it applied the unlock: retry the reads.
			deadline := time.Now().Add(30 * time.Second)
			for {
				x, err := s.Vars(ctx, la.Instance)
				if err == nil && x.GTIDCurrentPos.Contains(v.GTIDBinlogPos) {
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s: unlocking there failed (%v), and it has not applied the unlock from %s after 30s "+
						"(does it replicate from %s?): %v", la.Instance, direct, Y, Y, err)
				}
				if err := ctxwait.Sleep(ctx, 100*time.Millisecond); err != nil {
					return err
				}
			}
		},
	}
}

// restoreEventsStep enables again the events run stopped on se.Instance: on the new primary (binlogged) when the
// run promoted its candidate, on se.Instance (sql_log_bin=0) when it did not.
func restoreEventsStep(s Servers, run string, promoted Promotion, candidate string, se StoppedEvents) *Step {
	where, local := se.Instance, true
	if promoted == PromotedYes && candidate != "" {
		where, local = candidate, false
	}
	how := "sql_log_bin=0: the candidate was never promoted"
	if !local {
		how = "binlogged: " + where + " is the new primary"
	}
	return &Step{
		Name: stepRestoreEvents, Instance: where,
		Description: fmt.Sprintf("ALTER EVENT ... ENABLE on %s (%s, keeping each definer): %s", where, how, eventList(se.Events)),
		Do: func(ctx context.Context) error {
			announce(ctx, FenceAction{OfRun: run, EnableEvents: se.Events, For: se.Instance}, "about to enable on "+where+" the events "+eventList(se.Events))
			return s.SetEventsEnabled(ctx, where, se.Events, true, local, nil)
		},
	}
}
