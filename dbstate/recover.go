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
	"github.com/go-sql-driver/mysql"
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
	// Via is the old primary when the instance is a replica of it that the run fenced (FenceAction.Via): while
	// the candidate was not promoted, an unlock binlogged there replicates to the instance, which is how recover
	// lifts the locks when dbstate's own login is one of them.
	Via string `json:"via,omitempty"`
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
	// while the candidate was not promoted and the run is not to be finished (Forward): otherwise the old primary
	// is meant to stay read-only.
	ReadOnly []string `json:"read_only,omitempty"`
	// Events are the events disable-events announced stopping on the old primary and that were not enabled again
	// since, neither there (an undo) nor on the new primary (enable-events).
	Events    []StoppedEvents `json:"events,omitempty"`
	Candidate string          `json:"candidate,omitempty"` // where promote ran, if it started
	Promoted  Promotion       `json:"promoted"`
	// Forward is set when a switchover went past the point where only going forward is safe, and left steps of
	// that way undone: recover completes them (see Forward).
	Forward *Forward `json:"forward,omitempty"`
	// Moved are the old primary's replicas that a switchover moved (or started moving) under its candidate and
	// that no undo moved back, when the candidate was never promoted: recover points them back at OldPrimary.
	Moved      []string `json:"moved,omitempty"`
	OldPrimary string   `json:"old_primary,omitempty"` // the switchover's old primary, when the log names it
}

// Forward is what a switchover left undone past the point where only going forward is safe: its candidate was
// promoted, or may have been (promote started and the log has no outcome), or the run died between locking
// dbstate's own login on the old primary (fence-own-account) and the promotion, after the candidate had applied
// the old primary's final position. In the last two cases the old primary may take no admin login at all and
// making it writable again is no longer safe, while the candidate has every write: recover finishes the
// switchover, as the run would have.
type Forward struct {
	OldPrimary string   `json:"old_primary"`
	Candidate  string   `json:"candidate"`
	Replicas   []string `json:"replicas,omitempty"` // the old primary's other replicas, moved under the candidate
	// Promote: the promotion is not known to have completed; recover completes it, after checking that the old
	// primary is read-only and logged nothing the candidate lacks (or finds the candidate writable already).
	Promote bool `json:"promote"`
	// Reset, Repoint and Verify: reset-candidate (RESET SLAVE ALL on the candidate), repoint-old-primary (the old
	// primary replicates from the candidate) and verify did not complete.
	Reset   bool `json:"reset_candidate"`
	Repoint bool `json:"repoint_old_primary"`
	Verify  bool `json:"verify"`
}

func (fw *Forward) String() string {
	var todo []string
	if fw.Promote {
		todo = append(todo, "promote "+fw.Candidate)
	}
	if fw.Reset {
		todo = append(todo, "reset its replication")
	}
	if fw.Repoint {
		todo = append(todo, "repoint "+fw.OldPrimary+" under it")
	}
	if fw.Verify {
		todo = append(todo, "verify")
	}
	return "switchover of " + fw.OldPrimary + " to " + fw.Candidate + " left unfinished: " + strings.Join(todo, ", ")
}

// Empty reports whether the run left nothing to lift.
func (l *Leftovers) Empty() bool {
	return len(l.Locked) == 0 && len(l.ReadOnly) == 0 && len(l.Events) == 0 && l.Forward == nil && len(l.Moved) == 0
}

// String says, in words, what the run left.
func (l *Leftovers) String() string {
	var parts []string
	if l.Forward != nil {
		parts = append(parts, l.Forward.String())
	}
	for _, r := range l.Moved {
		parts = append(parts, r+" moved under the candidate (the old primary "+l.OldPrimary+" stays the primary)")
	}
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
	addrs := append(slices.Clone(l.ReadOnly), l.Moved...)
	if len(l.Moved) > 0 && l.OldPrimary == "" {
		return fmt.Errorf("%w: audit log: moved replicas without the old primary they left", ErrInvalidValue)
	}
	for _, a := range []string{l.Candidate, l.OldPrimary} {
		if a != "" {
			addrs = append(addrs, a)
		}
	}
	if fw := l.Forward; fw != nil {
		addrs = append(append(addrs, fw.OldPrimary, fw.Candidate), fw.Replicas...)
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
		if la.Via != "" {
			addrs = append(addrs, la.Via)
		}
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
	via      map[string]string    // FenceAction.Via, by instance
	accounts int
	pending  map[string]FenceAction // a recover run's announced lifts, by step and instance, until they succeed
	sw       switchTrack
}

// switchTrack is what the fold learns of a switchover's course: its instances, from the steps that ran on them,
// and how far it got.
type switchTrack struct {
	x, y       string   // the old primary and the candidate
	replicas   []string // the old primary's other replicas (fence-replica, move-replica)
	moved      []string // move-replica announced moving them, and no undo moved them back
	waited     bool     // wait-for-candidate succeeded: the candidate applied the old primary's final position
	ownStarted bool     // fence-own-account announced its lock: dbstate's own login may be locked on the old primary
	done       map[string]bool
}

// Steps of a switchover whose instance the fold remembers, and those past the point of no return it tracks.
const (
	stepMoveReplica     = "move-replica"
	stepCatchUp         = "catch-up"
	stepWaitCandidate   = "wait-for-candidate"
	stepResetCandidate  = "reset-candidate"
	stepRepointOld      = "repoint-old-primary"
	stepVerify          = "verify"
	stepCompletePromote = "complete-promote"
	stepMoveBack        = "move-back"
)

// track records what a switchover's record says of its course.
func (sw *switchTrack) track(rec AuditRecord) {
	if rec.Phase == "undo" && rec.Step == stepMoveReplica && (rec.Result == "ok" || rec.Result == "nothing-changed") {
		sw.moved = slices.DeleteFunc(sw.moved, func(r string) bool { return r == rec.Instance })
	}
	ok := rec.Result == "ok" && (rec.Phase == "do" || rec.Phase == "cleanup")
	if ok && (rec.Step == stepResetCandidate || rec.Step == stepRepointOld || rec.Step == stepVerify) {
		sw.markDone(rec.Step)
	}
	if ok && rec.Step == stepWaitCandidate {
		sw.waited = true
	}
	if rec.Result == "intent" && rec.Step == stepMoveReplica && rec.Fence != nil && rec.Fence.MovedFrom != "" {
		// Announced before the move changes anything: without it, the replica was not touched.
		if sw.x == "" {
			sw.x = rec.Fence.MovedFrom
		}
		if !slices.Contains(sw.moved, rec.Instance) && len(sw.moved) < maxAuditRuns {
			sw.moved = append(sw.moved, rec.Instance)
		}
	}
	if rec.Result == "intent" && rec.Step == stepFenceOwn {
		// Announced right before the lock on the old primary, after the candidate's own lock was lifted: without
		// it, dbstate's login still gets in there and the run can go back.
		sw.ownStarted = true
	}
	if rec.Phase == "undo" && rec.Step == stepFenceOwn && (rec.Result == "ok" || rec.Result == "nothing-changed") {
		// The run was rolling back (before its point of no return) and unlocked dbstate's login there again: it
		// chose to go back, and that login gets in, so recover goes back too.
		sw.ownStarted = false
	}
	if rec.Phase != "do" || rec.Result != "start" || rec.Instance == "" {
		return
	}
	add := func(list []string) []string {
		if !slices.Contains(list, rec.Instance) && len(list) < maxAuditRuns {
			list = append(list, rec.Instance)
		}
		return list
	}
	switch rec.Step {
	case stepFenceWriters, stepSetReadOnly, stepDisableEvents:
		sw.x = rec.Instance
	case stepFenceOwn:
		sw.x = rec.Instance
	case stepCatchUp, stepFenceCandidate, stepWaitCandidate, stepPromote:
		sw.y = rec.Instance
	case stepFenceReplica:
		sw.replicas = add(sw.replicas)
	case stepMoveReplica:
		sw.replicas = add(sw.replicas)
	}
}

func (sw *switchTrack) markDone(step string) {
	if sw.done == nil {
		sw.done = map[string]bool{}
	}
	sw.done[step] = true
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
	if strings.HasPrefix(st.l.Plan, "switchover:") {
		st.sw.track(rec)
	}
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
		if fa.Via != "" && len(fa.Lock) > 0 {
			if st.via == nil {
				st.via = map[string]string{}
			}
			st.via[rec.Instance] = fa.Via
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
		switch fa.Completes {
		case "":
		case stepPromote:
			of.l.Promoted = PromotedYes
			of.sw.markDone(stepPromote)
		case stepMoveBack:
			of.sw.moved = slices.DeleteFunc(of.sw.moved, func(r string) bool { return r == target })
		default:
			of.sw.markDone(fa.Completes)
		}
	}
	return nil
}

// forward is what the run left undone on the way forward (see Forward), nil when nothing or when the run never
// went past the point where only going forward is safe.
func (st *runState) forward() *Forward {
	sw := &st.sw
	// A run that completed left nothing undone; one that rolled back (completely or not) meant to go back, and its
	// leftovers are lifted as such.
	if sw.x == "" || sw.y == "" || (st.l.Result != "" && st.l.Result != "not-rolled-back") {
		return nil
	}
	promoted := st.l.Promoted == PromotedYes || sw.done[stepPromote]
	// Died between fence-own-account and the promotion, with the candidate caught up: the old primary may take
	// no admin login (to make it writable again), while the candidate has every write.
	gap := sw.ownStarted && sw.waited && st.l.Result == ""
	if !promoted && st.l.Promoted != PromotedMaybe && !gap {
		return nil
	}
	fw := &Forward{OldPrimary: sw.x, Candidate: sw.y, Replicas: slices.Clone(sw.replicas), Promote: !promoted,
		Reset: !sw.done[stepResetCandidate], Repoint: !sw.done[stepRepointOld], Verify: !sw.done[stepVerify]}
	slices.Sort(fw.Replicas)
	if !fw.Promote && !fw.Reset && !fw.Repoint && !fw.Verify {
		return nil
	}
	return fw
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
		l.Locked = append(l.Locked, LockedAccounts{Instance: i, Accounts: slices.Clone(st.locked[i]), Via: st.via[i]})
	}
	ev := make([]string, 0, len(st.events))
	for i := range st.events {
		ev = append(ev, i)
	}
	slices.Sort(ev)
	for _, i := range ev {
		l.Events = append(l.Events, StoppedEvents{Instance: i, Events: slices.Clone(st.events[i])})
	}
	if st.sw.done[stepPromote] {
		l.Promoted = PromotedYes
	}
	if strings.HasPrefix(l.Plan, "switchover:") {
		l.OldPrimary = st.sw.x
		l.Forward = st.forward()
	}
	if l.Forward != nil && l.Candidate == "" {
		l.Candidate = l.Forward.Candidate
	}
	if l.Promoted == PromotedNo && l.Forward == nil {
		l.Moved = slices.Clone(st.sw.moved)
		slices.Sort(l.Moved)
	}
	if l.Promoted != PromotedYes && l.Forward == nil {
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
	return PlanRecoverWith(ctx, s, t, l, RecoverOptions{})
}

// RecoverOptions are what recovering a switchover past its point of no return may need besides dbstate's login.
type RecoverOptions struct {
	// Replication are the credentials the old primary replicates from the candidate with, when recover must
	// repoint it (Forward.Repoint): as the switchover's --repl-user. Empty User: such a plan is refused.
	Replication Credentials
	// OldPrimary, when set, reads the old primary's variables (read_only, gtid_binlog_pos) when dbstate's own
	// login cannot log in there (fence-own-account locked it): a client that logs in as the replication account,
	// which does not bypass read_only and so is never locked by the fence. Only Vars is used. A promotion that
	// recover completes needs one of the two logins to read the old primary.
	OldPrimary VarsReader
	// BreakGlass, when set, logs in to the old primary as an account that the fence never locks (one without
	// READ ONLY ADMIN or ALL PRIVILEGES, holding REPLICATION SLAVE ADMIN and SLAVE MONITOR), to repoint it when
	// dbstate's own login is locked there and it replicates from no one: the one case that dbstate's login
	// cannot reach (ErrStranded). Only ReplicaStatus, Vars, Exec and ChangeMaster on the old primary are used.
	BreakGlass Servers
}

// VarsReader reads the variables dbstate uses of one instance. *Client implements it.
type VarsReader interface {
	Vars(ctx context.Context, addr string) (*Vars, error)
}

// PlanRecoverWith is PlanRecover with options. When l.Forward is set (a switchover that went past the point where
// only going forward is safe), the plan finishes the switchover instead of lifting read_only: it completes the
// promotion (after checking that the old primary X is read-only and logged nothing the candidate Y lacks),
// lifts Y's fence, enables the stopped events on Y, resets Y's replication, repoints X under Y with o.Replication,
// lifts the locks on X through Y and on the other replicas, and verifies that they all replicate from Y. When X
// takes no login of dbstate's (its own account locked there) while X replicates from no one, no unlock can
// reach it: the repoint step then uses o.BreakGlass when set, and otherwise fails with ErrStranded, saying exactly
// what to run on X (exit 1 from the command).
func PlanRecoverWith(ctx context.Context, s Servers, t *Topology, l *Leftovers, o RecoverOptions) (*Plan, error) {
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
	// fencedLater are instances dbstate cannot read because the run may have locked its own login there (a
	// replica it fenced, FenceAction.Via): read again once unlocked, before read_only is lifted.
	var fencedLater []string
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
			case in.Error != "" && l.fencedReplica(t, a):
				fencedLater = append(fencedLater, a)
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
		} else if len(unreadable) == 0 && len(fencedLater) == 0 {
			ck.pass("one writable", "no instance of %s's tree is writable", x)
		} else if len(unreadable) == 0 {
			ck.pass("one writable", "no instance of %s's tree is writable that dbstate can read; %s, fenced by the run (dbstate's own "+
				"login locked there), are read again once unlocked, before read_only is lifted", x, strings.Join(fencedLater, ", "))
		}
	}
	fw := l.Forward
	promoted := l.Promoted == PromotedYes || fw != nil
	if fw != nil {
		ck.pass("forward", "%s: recover finishes it (going back is no longer safe: %s)", fw, forwardWhy(l))
		if fw.Repoint && o.Replication.User == "" {
			ck.fail("replication credentials", ErrReplicationLogin, fmt.Sprintf("%s must be repointed under %s: give the switchover's "+
				"--repl-user and --repl-password-file", fw.OldPrimary, fw.Candidate))
		}
	}
	for _, r := range l.Moved {
		ck.pass("moved back", "%s was moved under the candidate: it is pointed back at %s, the primary", r, l.OldPrimary)
	}
	if len(l.Events) > 0 {
		switch {
		case fw != nil:
			ck.pass("events", "enabled on %s, the new primary, once promoted (binlogged: SLAVESIDE_DISABLED on its replicas)", fw.Candidate)
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
		Do:          func(ctx context.Context) error { return allReadOnly(ctx, s, others, "became writable since planning") },
	})
	if fw != nil && fw.Promote {
		p.Steps = append(p.Steps, completePromoteStep(s, o.OldPrimary, l.Run, fw.OldPrimary, fw.Candidate))
	}
	// The candidate's own fence first (it is the primary now), then its events and its replication; the old
	// primary's locks only once it replicates from the candidate, so that an unlock through the candidate
	// reaches it.
	var later []LockedAccounts
	for _, la := range l.Locked {
		switch {
		case promoted && l.Candidate != "" && la.Instance != l.Candidate:
			later = append(later, la)
		case l.Promoted == PromotedNo && la.Via != "" && la.Via != la.Instance:
			// A replica fenced before the promotion, dbstate's own login perhaps locked there: through the old
			// primary, which it still replicates from (directly or through the candidate).
			p.Steps = append(p.Steps, unlockThroughStep(s, l.Run, la.Via, "the old primary, still the primary", la))
		default:
			p.Steps = append(p.Steps, unlockLeftoverStep(s, l.Run, la))
		}
	}
	for _, se := range l.Events {
		pr := l.Promoted
		if fw != nil {
			pr = PromotedYes
		}
		p.Steps = append(p.Steps, restoreEventsStep(s, l.Run, pr, l.Candidate, se))
	}
	if fw != nil && fw.Reset {
		p.Steps = append(p.Steps, completeStep(l.Run, stepResetCandidate, resetCandidateStep(s, fw.Candidate)))
	}
	if fw != nil && fw.Repoint {
		var xLocked []Account
		for _, la := range later {
			if la.Instance == fw.OldPrimary {
				xLocked = la.Accounts
			}
		}
		p.Steps = append(p.Steps, completeRepointStep(s, o.BreakGlass, l.Run, fw.OldPrimary, fw.Candidate, o.Replication, xLocked))
	}
	for _, la := range later {
		p.Steps = append(p.Steps, unlockThroughStep(s, l.Run, l.Candidate, "the new primary", la))
	}
	for _, r := range l.Moved {
		p.Steps = append(p.Steps, moveBackStep(s, l.Run, r, l.OldPrimary))
	}
	if len(fencedLater) > 0 && len(l.ReadOnly) > 0 {
		p.Steps = append(p.Steps, &Step{
			Name: "recheck-unlocked", ReadsOnly: true, Instance: strings.Join(fencedLater, ", "),
			Description: "read the instances unlocked above again: each must answer and be read-only before read_only is lifted",
			Do:          func(ctx context.Context) error { return allReadOnly(ctx, s, fencedLater, "is writable") },
		})
	}
	for _, x := range l.ReadOnly {
		p.Steps = append(p.Steps, liftReadOnlyStep(s, l.Run, x))
	}
	if fw != nil && (fw.Verify || fw.Repoint) {
		p.Steps = append(p.Steps, completeStep(l.Run, stepVerify, verifyStep(s, fw.Candidate, append([]string{fw.OldPrimary}, fw.Replicas...))))
	}
	return p, nil
}

// allReadOnly fails (ErrMultipleWritable, saying what) unless every one of addrs answers and is read-only.
func allReadOnly(ctx context.Context, s Servers, addrs []string, what string) error {
	for _, a := range addrs {
		v, err := s.Vars(ctx, a)
		if err != nil {
			return err
		}
		if !v.ReadOnly {
			return fmt.Errorf("%w: %s %s", ErrMultipleWritable, a, what)
		}
	}
	return nil
}

// fencedReplica reports whether the run fenced the instance at key a of t as a replica of its old primary
// (FenceAction.Via), where dbstate's own login may be locked, while the candidate was not promoted: recover
// unlocks it through the old primary, and reads it only then.
func (l *Leftovers) fencedReplica(t *Topology, a string) bool {
	if l.Promoted != PromotedNo {
		return false
	}
	for _, la := range l.Locked {
		if la.Via != "" && t.Resolve(la.Instance) == a {
			return true
		}
	}
	return false
}

// forwardWhy says why a run's leftovers are finished forward.
func forwardWhy(l *Leftovers) string {
	switch {
	case l.Promoted == PromotedYes:
		return "the candidate was promoted"
	case l.Promoted == PromotedMaybe:
		return "promote started and the log does not say how it ended"
	default:
		return "dbstate died after it started locking its own login on " + l.Forward.OldPrimary +
			" (fence-own-account), when the candidate had applied its final position: that login may no longer get in there"
	}
}

// completeStep is st, a step of a switchover that a run left undone, run by recover on the run's behalf: its
// record marks it done for that run.
func completeStep(run, completes string, st *Step) *Step {
	do := st.Do
	st.Do = func(ctx context.Context) error {
		announce(ctx, FenceAction{OfRun: run, Completes: completes}, "about to complete "+completes+" of run "+run)
		return do(ctx)
	}
	st.Undo, st.UndoText = nil, ""
	return st
}

// oldPrimaryVars reads X's variables with dbstate's login, or, when that fails (its account locked there),
// with fallback.
func oldPrimaryVars(ctx context.Context, s Servers, fallback VarsReader, X string) (*Vars, error) {
	v, err := s.Vars(ctx, X)
	if err == nil || fallback == nil {
		return v, err
	}
	v, ferr := fallback.Vars(ctx, X)
	if ferr != nil {
		return nil, fmt.Errorf("%w; as the replication account: %v", err, ferr)
	}
	return v, nil
}

// completePromoteStep finishes a promotion that a run started or was about to start: when Y is writable
// already, nothing; otherwise it waits (up to 10 s) until Y applied X's gtid_binlog_pos, stops Y's replication,
// checks that Y has everything X logged and that X is read-only (read with dbstate's login, or the fallback's
// when that login is locked there), and makes Y writable. A failed check starts Y's replication again.
func completePromoteStep(s Servers, fallback VarsReader, run, X, Y string) *Step {
	return &Step{
		Name: stepCompletePromote, Instance: Y,
		Description: fmt.Sprintf("finish the promotion of %s, unless it is writable already: read %s (read_only=1 and its gtid_binlog_pos; "+
			"as the replication account if dbstate's login is locked there), wait until %s applied that position, STOP SLAVE on %s, "+
			"check again that %s has everything %s logged, SET GLOBAL read_only=0 on %s", Y, X, Y, Y, Y, X, Y),
		Do: func(ctx context.Context) error {
			announce(ctx, FenceAction{OfRun: run, Completes: stepPromote}, "about to complete the promotion of "+Y)
			yv, err := s.Vars(ctx, Y)
			if err != nil {
				return err
			}
			if !yv.ReadOnly {
				return nil // promote made it writable before the run died
			}
			xv, err := oldPrimaryVars(ctx, s, fallback, X)
			if err != nil {
				return fmt.Errorf("cannot read %s, so cannot tell whether it logged anything %s lacks: %w", X, Y, err)
			}
			if !xv.ReadOnly {
				return fmt.Errorf("%w: %s is writable: not promoting %s (two writable primaries); see dbstate topology show", ErrMultipleWritable, X, Y)
			}
			if st, err := s.ReplicaStatus(ctx, Y); err == nil && st != nil && !st.Healthy() {
				// promote's STOP SLAVE may have run before dbstate died: let Y apply what it lacks.
				if err := s.Exec(ctx, Y, "START SLAVE"); err != nil {
					return err
				}
			}
			if err := s.WaitApplied(ctx, Y, xv.GTIDBinlogPos, 10*time.Second); err != nil {
				return fmt.Errorf("%s has not applied %s's position %s: %w", Y, X, xv.GTIDBinlogPos, err)
			}
			if err := s.Exec(ctx, Y, "STOP SLAVE"); err != nil {
				return err
			}
			restart := func(cause error) error {
				if err := s.Exec(ctx, Y, "START SLAVE"); err != nil {
					return fmt.Errorf("%w (and START SLAVE on %s failed: %v)", cause, Y, err)
				}
				return cause
			}
			yv, err = s.Vars(ctx, Y)
			if err != nil {
				return restart(err)
			}
			if xv, err = oldPrimaryVars(ctx, s, fallback, X); err != nil {
				return restart(err)
			}
			if !xv.ReadOnly || !yv.GTIDCurrentPos.Contains(xv.GTIDBinlogPos) {
				return restart(fmt.Errorf("%s changed meanwhile (read_only=%v, gtid_binlog_pos %s; %s has %s): not promoting %s",
					X, xv.ReadOnly, xv.GTIDBinlogPos, Y, yv.GTIDCurrentPos, Y))
			}
			return s.Exec(ctx, Y, "SET GLOBAL read_only=0")
		},
	}
}

// completeRepointStep makes X replicate from Y, as repoint-old-primary would have, unless it does already.
// When dbstate's login is locked on X and X replicates from no one, nothing of dbstate's reaches X: the error
// says what to run there.
func completeRepointStep(s, breakGlass Servers, run, X, Y string, repl Credentials, xLocked []Account) *Step {
	yh, yp, _ := splitAddr(Y) // Validate checked it
	cm := ChangeMaster{Host: yh, Port: yp, User: repl.User, Password: repl.Password, DemoteToSlave: true}
	// What a login without READ ONLY ADMIN may send to the read-only X: no MASTER_DEMOTE_TO_SLAVE, current_pos.
	bg := ChangeMaster{Host: yh, Port: yp, User: repl.User, Password: repl.Password, CurrentPos: true}
	desc := fmt.Sprintf("unless %s replicates from %s already: %s; START SLAVE (before 10.10: gtid_slave_pos from gtid_binlog_pos "+
		"instead of MASTER_DEMOTE_TO_SLAVE)", X, Y, cm.Redacted())
	if breakGlass != nil {
		desc += fmt.Sprintf("; when dbstate's login is locked on %s: as the break-glass login, %s; START SLAVE; then, once the unlock "+
			"through %s let dbstate's login in, back to MASTER_USE_GTID=slave_pos (gtid_slave_pos from gtid_current_pos)", X, bg.Redacted(), Y)
	}
	return &Step{
		Name: stepRepointOld, Instance: X, Description: desc,
		Do: func(ctx context.Context) error {
			announce(ctx, FenceAction{OfRun: run, Completes: stepRepointOld}, "about to repoint "+X+" under "+Y)
			st, err := s.ReplicaStatus(ctx, X)
			if isAccountLocked(err) && len(xLocked) > 0 {
				// X may replicate from Y already (repointed by the operator, or by the run before it died): then
				// an unlock through Y gets dbstate's login in. Replication from Y delivers it within moments.
				if uerr := unlockThrough(ctx, s, Y, X, xLocked, 3*time.Second); uerr == nil {
					st, err = s.ReplicaStatus(ctx, X)
				}
			}
			if isAccountLocked(err) && breakGlass != nil {
				if err := breakGlass.ChangeMaster(ctx, X, bg, true); err != nil {
					return fmt.Errorf("as the break-glass login: %w", err)
				}
				if err := unlockThrough(ctx, s, Y, X, xLocked, 30*time.Second); err != nil {
					return fmt.Errorf("%s replicates from %s as the break-glass login set it, but dbstate's login does not get in: %w", X, Y, err)
				}
				st, err = s.ReplicaStatus(ctx, X)
			}
			if isAccountLocked(err) {
				return strandedError(X, Y, bg, err)
			}
			if err != nil {
				return err
			}
			if st != nil && operatorAddr(st.MasterAddr()) == operatorAddr(Y) {
				switch {
				case st.UsingGTID == "Current_Pos":
					// Repointed by a login that could not demote: what X logged itself is in gtid_current_pos.
					return s.Exec(ctx, X, "STOP SLAVE", "SET GLOBAL gtid_slave_pos = @@GLOBAL.gtid_current_pos",
						"CHANGE MASTER TO MASTER_USE_GTID=slave_pos", "START SLAVE")
				case !st.Healthy():
					return s.Exec(ctx, X, "START SLAVE")
				}
				return nil
			}
			v, err := s.Vars(ctx, X)
			if err != nil {
				return err
			}
			step, err := repointOldPrimaryStep(s, X, Y, repl, VersionAtLeast(v.Version, 10, 10))
			if err != nil {
				return err
			}
			return step.Do(ctx)
		},
	}
}

// isAccountLocked reports whether err is MariaDB's ER_ACCOUNT_HAS_BEEN_LOCKED (4151): a login to a locked account.
func isAccountLocked(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 4151
}

// ErrStranded is returned by recover when the old primary replicates from no one and takes no login of dbstate's
// (its account locked there): nothing dbstate does reaches it, and the error says what to run there.
var ErrStranded = errors.New("the old primary is out of reach")

// strandedError says what to run on X when dbstate's login is locked there and X replicates from nobody.
func strandedError(X, Y string, cm ChangeMaster, err error) error {
	return fmt.Errorf("%w: %s takes no login of dbstate's (%v) and replicates from no one, so no unlock through %s reaches it. "+
		"On %s, log in with an account that is not locked and holds REPLICATION SLAVE ADMIN (the fence locks only accounts that "+
		"bypass read_only: one without READ ONLY ADMIN or ALL PRIVILEGES will do; it may not MASTER_DEMOTE_TO_SLAVE there, hence "+
		"current_pos) and run: %s; START SLAVE; then run dbstate recover --audit-log FILE --yes again: it lifts the locks on %s "+
		"through %s and sets %s back to MASTER_USE_GTID=slave_pos (or give recover that account "+
		"with --break-glass-defaults-file, and it does this itself). Without such an account: "+
		"restart %s with --skip-grant-tables --skip-networking, run FLUSH PRIVILEGES; SET SESSION sql_log_bin=0; and ALTER USER ... "+
		"ACCOUNT UNLOCK for dbstate's account, restart it normally, and run dbstate recover again",
		ErrStranded, X, err, Y, X, cm.Redacted(), X, Y, X, X)
}

// moveBackStep points r, which a switchover that never promoted moved (or started moving) under its candidate,
// back at X, the primary (MASTER_USE_GTID=slave_pos, keeping its MASTER_DELAY and credentials), unless it
// replicates from X already; a replica the run stopped mid-move is started again.
func moveBackStep(s Servers, run, r, X string) *Step {
	return &Step{
		Name: stepMoveBack, Instance: r,
		Description: fmt.Sprintf("point %s back at %s, the primary, unless it replicates from it already (STOP SLAVE; wait until %s "+
			"logged its position; CHANGE MASTER; START SLAVE), and wait (up to 10s) until it replicates", r, X, X),
		Do: func(ctx context.Context) error {
			announce(ctx, FenceAction{OfRun: run, Completes: stepMoveBack, For: r}, "about to point "+r+" back at "+X)
			st, err := s.ReplicaStatus(ctx, r)
			if err != nil {
				return err
			}
			if st == nil {
				return fmt.Errorf("%w: %s replicates from no one", ErrNotReplica, r)
			}
			if operatorAddr(st.MasterAddr()) == operatorAddr(X) {
				if !st.Healthy() {
					if err := s.Exec(ctx, r, "START SLAVE"); err != nil {
						return err
					}
				}
			} else {
				mv, err := moveStep(s, operatorAddr, r, st.MasterAddr(), X, int(st.SQLDelay), 30*time.Second)
				if err != nil {
					return err
				}
				if err := mv.Do(ctx); err != nil {
					return err
				}
			}
			return waitReplicating(ctx, s, r, X, 10*time.Second)
		},
	}
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

// unlockThroughStep lifts what run left locked on la.Instance from Y, the primary it replicates from (role says
// which: the new primary, for the demoted primary and the moved replicas after a promotion; the old primary,
// for the candidate and the replicas when there was none): a binlogged ALTER USER ... ACCOUNT UNLOCK, a no-op
// on Y where the locks were never binlogged, replicates to la.Instance and unlocks the accounts there. That
// works even when every admin login of la.Instance is locked (dbstate's own and root@localhost included). It
// waits (up to 30 s) until la.Instance applied it. It unlocks on la.Instance directly instead when the login can
// (that needs no replication from Y).
func unlockThroughStep(s Servers, run, Y, role string, la LockedAccounts) *Step {
	return &Step{
		Name: stepUnlockAccounts, Instance: Y,
		Description: fmt.Sprintf("ALTER USER ... ACCOUNT UNLOCK on %s (%s), binlogged, so that it replicates to %s "+
			"and unlocks there: %s; wait (up to 30s) until %s applied it (directly on %s, sql_log_bin=0, when the login can)",
			Y, role, la.Instance, accountList(la.Accounts), la.Instance, la.Instance),
		Do: func(ctx context.Context) error {
			announce(ctx, FenceAction{OfRun: run, Unlock: la.Accounts, For: la.Instance},
				"about to unlock on "+la.Instance+" (directly, or through "+Y+"): "+accountList(la.Accounts))
			// Directly first (sql_log_bin=0), when this login is not locked there: that also works when the
			// demoted primary does not replicate from Y (a run that died before repointing it).
			direct := s.SetAccountsLocked(ctx, la.Instance, la.Accounts, false, nil)
			if direct == nil {
				return nil
			}
			if err := unlockThrough(ctx, s, Y, la.Instance, la.Accounts, 30*time.Second); err != nil {
				return fmt.Errorf("%s: unlocking there failed (%v), and %w", la.Instance, direct, err)
			}
			return nil
		},
	}
}

// unlockThrough runs ALTER USER ... ACCOUNT UNLOCK for accounts on Y, binlogged, and waits (up to wait) until X
// applied it: dbstate's own login may be locked on X until then, so X's reads are retried. It fails when X does
// not apply it in time (it does not replicate from Y).
func unlockThrough(ctx context.Context, s Servers, Y, X string, accounts []Account, wait time.Duration) error {
	stmts := make([]string, 0, len(accounts))
	for _, a := range accounts {
		acc, err := a.sql()
		if err != nil {
			return err
		}
		stmts = append(stmts, "ALTER USER "+acc+" ACCOUNT UNLOCK")
	}
	if err := s.Exec(ctx, Y, stmts...); err != nil {
		return err
	}
	v, err := s.Vars(ctx, Y)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(wait)
	for {
		x, err := s.Vars(ctx, X)
		if err == nil && x.GTIDCurrentPos.Contains(v.GTIDBinlogPos) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s has not applied the unlock from %s after %v (does it replicate from %s?): %v", X, Y, wait, Y, err)
		}
		if err := ctxwait.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
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
