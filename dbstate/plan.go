package dbstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Step is one change of a Plan. Check runs right before Do (the precondition, against live servers); Undo, when
// not nil, reverts Do and must be safe to run after a Do that failed halfway.
type Step struct {
	Name         string `json:"name"`
	Instance     string `json:"instance,omitempty"`
	Description  string `json:"description"`            // what Do does, in words (no secrets)
	Precondition string `json:"precondition,omitempty"` // what Check verifies, in words
	UndoText     string `json:"undo,omitempty"`         // what Undo does, in words; empty when there is no undo
	// PointOfNoReturn marks the step after whose success the plan is never rolled back (for a switchover: the
	// candidate became writable), nor after its failure with ErrMaybePastPointOfNoReturn.
	PointOfNoReturn bool `json:"point_of_no_return,omitempty"`
	// Cleanup marks a step that always runs, like a deferred call: in its place when all goes well, and also when
	// an earlier step failed (after the rollback, or past the point of no return), then without BeforeStep. It
	// runs even when ctx is cancelled, bounded by ExecOptions.UndoTimeout. Its Do must be safe to run when the
	// steps it cleans up after did not run or were undone.
	Cleanup bool `json:"cleanup,omitempty"`
	// FailureOnly marks a cleanup step that runs only when an earlier step failed: when all goes well, it is
	// skipped (and not recorded).
	FailureOnly bool `json:"failure_only,omitempty"`
	// ReadsOnly marks a step that only reads and waits: it changes no server, so it needs no undo.
	ReadsOnly bool `json:"reads_only,omitempty"`

	// Detail, when set, is asked after Do succeeds (or fails) for what the step did, in words, for the audit
	// log: which accounts it locked, how many sessions it killed, the position it waited for.
	Detail func() string `json:"-"`

	Check func(ctx context.Context) error `json:"-"`
	Do    func(ctx context.Context) error `json:"-"`
	Undo  func(ctx context.Context) error `json:"-"`
}

// PreflightCheck is one check that planning ran: a plan holds those that passed; a *RefusalError holds all.
type PreflightCheck struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// Plan is an ordered list of steps that changes servers. Nothing runs until Execute.
type Plan struct {
	Kind      string           `json:"kind"` // "switchover" or "move"
	Summary   string           `json:"summary"`
	Preflight []PreflightCheck `json:"preflight"`
	Warnings  []string         `json:"warnings,omitempty"`
	Steps     []*Step          `json:"steps"`
	// FinishPastPointOfNoReturn: past the point of no return, a step that fails does not stop the plan: every
	// step after it still runs in its place (each bounded as usual), and those that fail are reported with it
	// (ExecError.Remaining). For plans whose later steps do not depend on each other's success (a switchover: a
	// hung new primary must not keep the old one from being repointed under it).
	FinishPastPointOfNoReturn bool `json:"finish_past_point_of_no_return,omitempty"`
	// OneShot plans run once: their steps hand state to each other and their checks were made against one
	// snapshot of the topology. Execute refuses to run them again (ErrPlanExecuted); plan again instead.
	OneShot bool `json:"one_shot"`
	// Account is the database account the plan runs as, for the audit log.
	Account string `json:"account,omitempty"`
	// VerifyRollback, when set, reads the servers back after a complete rollback: Execute says "rolled back"
	// only when it returns nil, and reports what it found otherwise.
	VerifyRollback func(ctx context.Context) error `json:"-"`
	// Report, when set, says after a successful Execute what the plan leaves on purpose, for the operator (for a
	// switchover: the accounts kept locked on the demoted primary, and how to lift them).
	Report func() []string `json:"-"`

	executed atomic.Bool
}

// ErrPlanExecuted is returned by Execute for a second run of a one-shot plan.
var ErrPlanExecuted = errors.New("this plan was already executed and runs only once: discover and plan again")

// ErrMaybePastPointOfNoReturn, wrapped in the error of a PointOfNoReturn step, says that the step may have passed
// its point of no return although it failed: the statement that passes it was sent and got no answer (a hung
// server may still run it). Execute then treats the plan as past its point of no return: it undoes nothing (an
// undo could make a second instance writable) and reports the step itself among those left to finish.
var ErrMaybePastPointOfNoReturn = errors.New("the point of no return may have been passed")

// ErrNothingChanged is what an Undo returns when its step had changed nothing, so there was nothing to undo.
// Execute does not count it as a failed undo, and reports a failure before any change as "nothing changed".
var ErrNothingChanged = errors.New("nothing to undo: the step changed nothing")

// WriteText prints the plan for a human (the dry run).
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan: %s\n", p.Summary)
	if len(p.Preflight) > 0 {
		b.WriteString("\nPreflight checks:\n")
		_ = writeChecks(&b, p.Preflight)
	}
	for _, wn := range p.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", wn)
	}
	b.WriteString("\nSteps:\n")
	for k, s := range p.Steps {
		fmt.Fprintf(&b, "%3d. %s", k+1, s.Name)
		if s.Instance != "" {
			fmt.Fprintf(&b, " on %s", s.Instance)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "     do:    %s\n", s.Description)
		if s.Precondition != "" {
			fmt.Fprintf(&b, "     check: %s\n", s.Precondition)
		}
		if s.UndoText != "" {
			fmt.Fprintf(&b, "     undo:  %s\n", s.UndoText)
		}
		if s.PointOfNoReturn {
			b.WriteString("     (point of no return: after this step, failures are reported, not undone)\n")
		}
		switch {
		case s.Cleanup && s.FailureOnly:
			b.WriteString("     (cleanup: runs only when an earlier step fails, before or after the point of no return)\n")
		case s.Cleanup:
			b.WriteString("     (cleanup: always runs, also when an earlier step fails, before or after the point of no return)\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// AuditRecord is one line of the audit log. Each step, undo and cleanup has a "start" record, written before its
// check and action run (so that after a crash of dbstate the log shows which step was running), and a record of
// its outcome.
type AuditRecord struct {
	Time time.Time `json:"time"`
	Run  string    `json:"run"`  // one id per Execute, shared by all its records
	Host string    `json:"host"` // the host dbstate ran on
	User string    `json:"user"` // the OS user (or ExecOptions.User)
	// Account is the database account the plan runs as.
	Account    string  `json:"db_account,omitempty"`
	Plan       string  `json:"plan"`
	Step       string  `json:"step"`
	Instance   string  `json:"instance,omitempty"`
	Phase      string  `json:"phase"`  // check, do, undo, cleanup (a cleanup step run after a failure), plan
	Result     string  `json:"result"` // start, intent (see Fence), ok, failed, nothing-changed (an undo); for the plan: start, ok, rolled-back, rollback-incomplete, not-rolled-back
	Error      string  `json:"error,omitempty"`
	Detail     string  `json:"detail,omitempty"` // what the step did (Step.Detail)
	DurationMS float64 `json:"duration_ms"`
	// Fence, on a record with result "intent", is what the step is about to change on Instance: written before
	// the change, so that after a crash of dbstate the log says what may be left (see Recover).
	Fence *FenceAction `json:"fence,omitempty"`
}

// FenceAction is a change that must not outlive a run, announced in the audit log before it is made.
type FenceAction struct {
	// OfRun, in a recover run, is the run whose leftovers this lifts.
	OfRun  string    `json:"of_run,omitempty"`
	Lock   []Account `json:"lock,omitempty"`   // accounts about to be locked (ACCOUNT LOCK, sql_log_bin=0)
	Unlock []Account `json:"unlock,omitempty"` // accounts about to be unlocked
	// Kept are accounts a cleanup leaves locked on purpose (on the demoted primary, after a promotion): they stay
	// leftovers of the run, for recover to lift when the operator asks.
	Kept []Account `json:"kept,omitempty"`
	// ReadOnly is the read_only about to be set (SET GLOBAL read_only=1 by set-read-only, 0 by a recover run);
	// nil when the action leaves it alone.
	ReadOnly *bool `json:"read_only,omitempty"`
	// DisableEvents are events about to be stopped on the step's instance (ALTER EVENT ... DISABLE ON SLAVE,
	// sql_log_bin=0); EnableEvents events about to be enabled (on the new primary, binlogged, or by a recover run).
	DisableEvents []Event `json:"disable_events,omitempty"`
	EnableEvents  []Event `json:"enable_events,omitempty"`
	// For, in a recover run whose step runs on another instance (the new primary, through replication), is the
	// instance whose leftovers it lifts.
	For string `json:"for,omitempty"`
	// Via, with Lock on a replica (the candidate or another replica of the old primary), is the old primary,
	// whose binary log reaches the step's instance by replication: should dbstate die with its own login locked
	// there, recover unlocks through it (binlogged) while the candidate was not promoted.
	Via string `json:"via,omitempty"`
	// Completes, in a recover run, is the step of the run OfRun that this finishes or undoes: complete-promote,
	// reset-candidate, repoint-old-primary and verify finish a switchover past its point of no return; move-back
	// points a moved replica (For) back at the old primary.
	Completes string `json:"completes,omitempty"`
	// MovedFrom, on a switchover's move-replica, is the old primary the replica is about to leave (for the
	// candidate): where recover points it back when the candidate was never promoted.
	MovedFrom string `json:"moved_from,omitempty"`
}

type intentKey struct{}

// announce writes, when ctx comes from Execute, an audit record (result "intent") of what the running step is
// about to change, with detail in words. It returns only after the record was written.
func announce(ctx context.Context, fa FenceAction, detail string) {
	if f, ok := ctx.Value(intentKey{}).(func(FenceAction, string)); ok {
		f(fa, detail)
	}
}

// ExecOptions tune Execute.
type ExecOptions struct {
	// Audit receives JSON lines (AuditRecord): one when each step, undo or cleanup starts and one when it ends, and
	// the plan's start and result. Each line is one Write. nil means no audit log.
	Audit io.Writer
	// User is recorded in the audit log; empty means the OS user.
	User string
	// RunID names this execution in the audit log; empty means a random one (Execute returns it in
	// ExecError.Run and the log's every record).
	RunID string
	// Host is recorded in the audit log; empty means os.Hostname.
	Host string
	// Progress, when set, receives progress reports of long waits (see Progress), every ProgressEvery.
	Progress func(Progress)
	// ProgressEvery is how often a wait reports; zero means 1 s.
	ProgressEvery time.Duration
	Logger        *slog.Logger
	// BeforeStep, when set, runs before each step's check; an error fails that step. Tests use it to inject
	// faults; automation can use it to ask for confirmation. It is not asked before cleanup steps that run after
	// a failure.
	BeforeStep func(ctx context.Context, s *Step) error
	// UndoTimeout bounds the whole undo, and each cleanup step. Zero means 2 minutes. Undo and cleanup run even
	// when ctx is cancelled.
	UndoTimeout time.Duration
}

// ExecError is returned by Execute when a step fails.
type ExecError struct {
	Run        string // the run id of the audit log
	Plan       string
	Step       string
	Instance   string
	Err        error
	RolledBack bool    // every completed step was undone
	UndoErrs   []error // undos that failed (RolledBack is then false)
	// Undone are the steps whose undo reverted a change, in the order they ran.
	Undone []string
	// NothingChanged: the failure came before any step had changed a server (no undo had anything to revert,
	// and every step that ran either only reads or has an undo). RolledBack is then true as well.
	NothingChanged bool
	// PastPointOfNoReturn: the failure came after the point of no return, or in the step that passes it after
	// it may have been passed (ErrMaybePastPointOfNoReturn); nothing was undone.
	PastPointOfNoReturn bool
	// Remaining are, past the point of no return, the steps that did not complete (the failed one and those after
	// it, except cleanup steps that ran and, with Plan.FinishPastPointOfNoReturn, steps that ran and succeeded),
	// for finishing by hand.
	Remaining []string
	// Finished are, with Plan.FinishPastPointOfNoReturn, the steps after the failed one (not cleanup steps) that
	// ran and succeeded.
	Finished []string
	// CleanedUp are the cleanup steps after the failed one that ran and succeeded; CleanupErrs those that failed
	// (RolledBack is then false).
	CleanedUp   []string
	CleanupErrs []error
	// VerifyErr is what Plan.VerifyRollback found wrong after the undos (RolledBack is then false).
	VerifyErr error
}

func (e *ExecError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: step %s", e.Plan, e.Step)
	if e.Instance != "" {
		fmt.Fprintf(&b, " on %s", e.Instance)
	}
	fmt.Fprintf(&b, " failed: %v; ", e.Err)
	switch {
	case e.PastPointOfNoReturn:
		fmt.Fprintf(&b, "NOT rolled back: the plan was past its point of no return; finish by hand: %s", strings.Join(e.Remaining, ", "))
	case e.VerifyErr != nil:
		fmt.Fprintf(&b, "rollback NOT VERIFIED: every undo ran, but reading the servers back found: %v", e.VerifyErr)
	case e.NothingChanged && len(e.CleanupErrs) == 0:
		b.WriteString("nothing changed: the failure came before any step changed a server")
	case e.RolledBack:
		fmt.Fprintf(&b, "rolled back: every completed step was undone (%s), the original topology is restored", strings.Join(e.Undone, ", "))
	case len(e.UndoErrs) > 0:
		fmt.Fprintf(&b, "rollback INCOMPLETE (%d undo errors): %v", len(e.UndoErrs), errors.Join(e.UndoErrs...))
	default:
		b.WriteString("rollback INCOMPLETE: every completed step was undone, but a cleanup step failed")
	}
	if len(e.Finished) > 0 {
		fmt.Fprintf(&b, "; done after the failure: %s", strings.Join(e.Finished, ", "))
	}
	if len(e.CleanedUp) > 0 {
		fmt.Fprintf(&b, "; cleanup done: %s", strings.Join(e.CleanedUp, ", "))
	}
	if len(e.CleanupErrs) > 0 {
		fmt.Fprintf(&b, "; cleanup FAILED (%d errors): %v", len(e.CleanupErrs), errors.Join(e.CleanupErrs...))
	}
	return b.String()
}

func (e *ExecError) Unwrap() error { return e.Err }

type auditor struct {
	mu   sync.Mutex
	w    io.Writer
	base AuditRecord // run, host, user, account, plan
	log  *slog.Logger
}

func (a *auditor) record(s *Step, phase, result string, err error, d time.Duration) {
	r := a.base
	r.Time, r.Phase, r.Result, r.DurationMS = time.Now().UTC(), phase, result, float64(d.Microseconds())/1000
	if s != nil {
		r.Step, r.Instance = s.Name, s.Instance
		if s.Detail != nil && result != "start" && phase != "undo" {
			r.Detail = s.Detail()
		}
	}
	if err != nil {
		r.Error = err.Error()
	}
	// The audit log is the record; the logger only echoes it, at debug level, without empty fields.
	if a.log.Enabled(context.Background(), slog.LevelDebug) {
		attrs := []any{"run", r.Run, "plan", r.Plan, "phase", phase, "result", result}
		for _, kv := range [][2]string{{"step", r.Step}, {"instance", r.Instance}, {"error", r.Error}, {"detail", r.Detail}} {
			if kv[1] != "" {
				attrs = append(attrs, kv[0], kv[1])
			}
		}
		if d > 0 {
			attrs = append(attrs, "duration_ms", r.DurationMS)
		}
		a.log.Debug("dbstate step", attrs...)
	}
	a.write(r)
}

// write appends r to the audit log as one line, in one Write.
func (a *auditor) write(r AuditRecord) {
	if a.w == nil {
		return
	}
	b, _ := json.Marshal(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	_, _ = a.w.Write(append(b, '\n'))
}

// intent records what s is about to change (see announce).
func (a *auditor) intent(s *Step, fa FenceAction, detail string) {
	r := a.base
	r.Time, r.Phase, r.Result = time.Now().UTC(), "do", "intent"
	r.Step, r.Instance, r.Detail, r.Fence = s.Name, s.Instance, detail, &fa
	a.log.Debug("dbstate step", "run", r.Run, "plan", r.Plan, "step", r.Step, "instance", r.Instance, "result", "intent", "detail", detail)
	a.write(r)
}

// withDefaults fills in the documented defaults of the options that every execution (a Plan's, a VarsPlan's)
// shares: the logger, the OS user, the undo timeout, a random run id and the host name.
func (o *ExecOptions) withDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.User == "" {
		o.User = OSUser()
	}
	if o.UndoTimeout <= 0 {
		o.UndoTimeout = 2 * time.Minute
	}
	if o.RunID == "" {
		o.RunID = NewRunID()
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
}

// newAuditor is the audit log of one execution of p, with opt's defaults already filled in (withDefaults).
func (p *Plan) newAuditor(opt ExecOptions) *auditor {
	return &auditor{w: opt.Audit, log: opt.Logger, base: AuditRecord{Run: opt.RunID, Host: opt.Host, User: opt.User,
		Account: p.Account, Plan: p.Kind + ": " + p.Summary}}
}

// OSUser is the name of the user running this process, for the audit log.
func OSUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "unknown"
}

// Execute runs the steps in order. When a step (its hook, check or action) fails before the point of no return,
// it runs the undo of that step and of every completed step in reverse order and returns an *ExecError that
// says whether the rollback was complete. After the point of no return (or when the step that passes it failed
// with ErrMaybePastPointOfNoReturn) it stops and reports. Either way, the
// cleanup steps after the failed one still run (see Step.Cleanup).
func (p *Plan) Execute(ctx context.Context, opt ExecOptions) error {
	if p.OneShot && !p.executed.CompareAndSwap(false, true) {
		return fmt.Errorf("%s: %w", p.Kind, ErrPlanExecuted)
	}
	opt.withDefaults()
	a := p.newAuditor(opt)
	if opt.Progress != nil {
		ctx = withProgress(ctx, opt.Progress, opt.ProgressEvery)
	}
	a.record(nil, "plan", "start", nil, 0)
	pastPNR := false
	for k, s := range p.Steps {
		if s.Cleanup && s.FailureOnly {
			continue
		}
		err := p.runStep(ctx, s, opt, a)
		if err == nil {
			if s.PointOfNoReturn {
				pastPNR = true
			}
			continue
		}
		if s.PointOfNoReturn && errors.Is(err, ErrMaybePastPointOfNoReturn) {
			pastPNR = true
		}
		ee := &ExecError{Run: opt.RunID, Plan: p.Kind, Step: s.Name, Instance: s.Instance, Err: err, PastPointOfNoReturn: pastPNR}
		if !pastPNR {
			uctx, cancel := detach(ctx, opt.UndoTimeout)
			for j := k; j >= 0; j-- {
				u := p.Steps[j]
				if u.Undo == nil {
					continue
				}
				ustart := time.Now()
				a.record(u, "undo", "start", nil, 0)
				switch uerr := u.Undo(uctx); {
				case errors.Is(uerr, ErrNothingChanged):
					a.record(u, "undo", "nothing-changed", nil, time.Since(ustart))
				case uerr != nil:
					a.record(u, "undo", "failed", uerr, time.Since(ustart))
					ee.UndoErrs = append(ee.UndoErrs, fmt.Errorf("undo %s on %s: %w", u.Name, u.Instance, uerr))
				default:
					a.record(u, "undo", "ok", nil, time.Since(ustart))
					ee.Undone = append(ee.Undone, u.Name)
				}
			}
			cancel()
		}
		remaining := []*Step{s}
		for _, c := range p.Steps[k+1:] {
			if !c.Cleanup && pastPNR && p.FinishPastPointOfNoReturn {
				if err := p.runStep(ctx, c, opt, a); err != nil {
					remaining = append(remaining, c)
				} else {
					ee.Finished = append(ee.Finished, c.Name)
				}
				continue
			}
			if !c.Cleanup {
				remaining = append(remaining, c)
				continue
			}
			cstart := time.Now()
			a.record(c, "cleanup", "start", nil, 0)
			cctx := context.WithValue(ctx, intentKey{}, func(fa FenceAction, detail string) { a.intent(c, fa, detail) })
			if cerr := runCleanup(cctx, c, opt.UndoTimeout); cerr != nil {
				a.record(c, "cleanup", "failed", cerr, time.Since(cstart))
				ee.CleanupErrs = append(ee.CleanupErrs, fmt.Errorf("cleanup %s on %s: %w", c.Name, c.Instance, cerr))
				remaining = append(remaining, c)
			} else {
				a.record(c, "cleanup", "ok", nil, time.Since(cstart))
				ee.CleanedUp = append(ee.CleanedUp, c.Name)
			}
		}
		result := "not-rolled-back"
		if pastPNR {
			for _, r := range remaining {
				ee.Remaining = append(ee.Remaining, r.Name+" ("+r.Description+")")
			}
		} else {
			ee.RolledBack = len(ee.UndoErrs) == 0 && len(ee.CleanupErrs) == 0
			if ee.RolledBack && p.VerifyRollback != nil {
				vctx, cancel := detach(ctx, opt.UndoTimeout)
				vstart := time.Now()
				a.record(nil, "verify", "start", nil, 0)
				if verr := p.VerifyRollback(vctx); verr != nil {
					ee.VerifyErr, ee.RolledBack = verr, false
					a.record(nil, "verify", "failed", verr, time.Since(vstart))
				} else {
					a.record(nil, "verify", "ok", nil, time.Since(vstart))
				}
				cancel()
			}
			ee.NothingChanged = len(ee.UndoErrs) == 0 && len(ee.Undone) == 0 && untracked(p.Steps[:k+1]) == 0
			result = "rolled-back"
			if !ee.RolledBack {
				result = "rollback-incomplete"
			}
		}
		a.record(nil, "plan", result, ee, 0)
		return ee
	}
	a.record(nil, "plan", "ok", nil, 0)
	return nil
}

// runStep runs one step in its place: the BeforeStep hook, its check and action (a cleanup step with a context
// that ignores cancellation, bounded by the undo timeout), with its start and outcome records.
func (p *Plan) runStep(ctx context.Context, s *Step, opt ExecOptions, a *auditor) error {
	start := time.Now()
	phase := "do"
	err := func() error {
		sctx := ctx
		if s.Cleanup {
			var cancel context.CancelFunc
			sctx, cancel = detach(ctx, opt.UndoTimeout)
			defer cancel()
		}
		if opt.BeforeStep != nil {
			if err := opt.BeforeStep(sctx, s); err != nil {
				return fmt.Errorf("before step: %w", err)
			}
		}
		if err := sctx.Err(); err != nil {
			return err
		}
		// Written before anything runs: after a crash, the log shows which step was running.
		a.record(s, "do", "start", nil, 0)
		sctx = context.WithValue(sctx, intentKey{}, func(fa FenceAction, detail string) { a.intent(s, fa, detail) })
		if s.Check != nil {
			if err := s.Check(sctx); err != nil {
				phase = "check"
				return fmt.Errorf("precondition: %w", err)
			}
		}
		return s.Do(sctx)
	}()
	if err != nil {
		a.record(s, phase, "failed", err, time.Since(start))
	} else {
		a.record(s, "do", "ok", nil, time.Since(start))
	}
	return err
}

// NewRunID returns a new run id for ExecOptions.RunID: 8 random bytes in hex.
func NewRunID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// untracked counts the steps that may change a server without an undo to say whether they did.
func untracked(steps []*Step) int {
	n := 0
	for _, s := range steps {
		if s.Undo == nil && !s.ReadsOnly && !s.Cleanup {
			n++
		}
	}
	return n
}

// detach returns a context that ignores ctx's cancellation and ends after d, for undo and cleanup.
func detach(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// runCleanup runs a cleanup step after a failure: its check and action, without the BeforeStep hook, with a
// context that ignores cancellation.
func runCleanup(ctx context.Context, s *Step, timeout time.Duration) error {
	cctx, cancel := detach(ctx, timeout)
	defer cancel()
	if s.Check != nil {
		if err := s.Check(cctx); err != nil {
			return fmt.Errorf("precondition: %w", err)
		}
	}
	return s.Do(cctx)
}
