package dbstate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// sysVarsQuery reads the metadata and global value of some variables; the placeholders are upper-case names,
// interpolated by the driver as quoted literals.
const sysVarsQuery = "SELECT VARIABLE_NAME, GLOBAL_VALUE, VARIABLE_SCOPE, VARIABLE_TYPE, NUMERIC_MIN_VALUE, " +
	"NUMERIC_MAX_VALUE, NUMERIC_BLOCK_SIZE, ENUM_VALUE_LIST, READ_ONLY FROM information_schema.SYSTEM_VARIABLES " +
	"WHERE VARIABLE_NAME IN ("

// ReadVariables reads the information_schema.SYSTEM_VARIABLES rows of the named variables from one instance,
// keyed by lower-case name. A variable the server does not know is absent from the result.
func ReadVariables(ctx context.Context, q Querier, names []string) (map[string]SysVar, error) {
	out := map[string]SysVar{}
	if len(names) == 0 {
		return out, nil
	}
	args := make([]any, len(names))
	for k, n := range names {
		if !validVarName(n) || strings.Contains(n, "-") {
			return nil, fmt.Errorf("read variables: %w: variable name %q", ErrInvalidValue, n)
		}
		args[k] = strings.ToUpper(n)
	}
	rows, err := queryRows(ctx, q, sysVarsQuery+strings.TrimSuffix(strings.Repeat("?,", len(names)), ",")+")", args...)
	if err != nil {
		return nil, fmt.Errorf("read variables: %w", err)
	}
	for _, r := range rows {
		sv, err := ParseSysVar(r)
		if err != nil {
			return nil, fmt.Errorf("read variables: %w", err)
		}
		out[sv.Name] = sv
	}
	return out, nil
}

// VarsOptions tune PlanVariables and the push.
type VarsOptions struct {
	// Parallel is how many instances are read or changed at once. Zero means 8.
	Parallel int
	// Timeout bounds each instance's part of each phase (snapshot, apply, read-back, restore). Zero means 10 s.
	// The restore of one instance has three parts, each bounded by Timeout (read what differs, set it back,
	// verify), so an instance that hangs after it changed costs a push at most four Timeouts.
	Timeout time.Duration
}

// Validate rejects negative values.
func (o VarsOptions) Validate() error {
	if o.Parallel < 0 {
		return fmt.Errorf("vars: parallel %d: want at least 1 (0 for the default, 8)", o.Parallel)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("vars: timeout %v: want a positive duration (0 for the default, 10s)", o.Timeout)
	}
	return nil
}

func (o *VarsOptions) defaults() {
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
}

// InstanceVars is one instance's part of a VarsPlan: every desired variable, changed or not.
type InstanceVars struct {
	Instance string      `json:"instance"`
	Changes  []VarChange `json:"variables"`
}

// Changed returns the variables that differ.
func (iv InstanceVars) Changed() []VarChange {
	var out []VarChange
	for _, c := range iv.Changes {
		if c.Changed {
			out = append(out, c)
		}
	}
	return out
}

// VarsPlan is a validated push of runtime variables to many instances. Plan holds one step per instance that
// changes (its SET GLOBAL statements, and the statements that undo them); run it with VarsPlan.Execute, which
// runs the steps in phases across instances.
type VarsPlan struct {
	Plan      *Plan          `json:"plan"`
	Instances []InstanceVars `json:"instances"`

	c       *Client
	opt     VarsOptions
	targets []*varsTarget
}

// Changed reports whether any variable differs anywhere.
func (p *VarsPlan) Changed() bool { return len(p.targets) > 0 }

// PlanVariables reads every instance's SYSTEM_VARIABLES rows for the variables the desired document gives it
// (in parallel), validates and normalises each desired value, and diffs it with the current one. An unreachable
// instance fails planning with an error that wraps ErrUnreachable; any rejected variable, on any instance, with
// a *VarsRejectedError that names each (variable, instance, reason). Either way nothing is sent. Warnings say
// where the server would round a value.
func PlanVariables(ctx context.Context, c *Client, instances []string, d *DesiredVars, opt VarsOptions) (*VarsPlan, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	opt.defaults()
	if len(instances) == 0 {
		return nil, fmt.Errorf("vars: no instances")
	}
	if d == nil {
		return nil, fmt.Errorf("vars: no desired variables")
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	// One instance, one spelling (localhost:P is 127.0.0.1:P): else it would be pushed twice, in parallel.
	insts := make([]string, 0, len(instances))
	for _, in := range instances {
		a, err := ParseInstance(in)
		if err != nil && !isSocketPath(in) {
			return nil, fmt.Errorf("vars: %w", err)
		}
		if err != nil {
			a = in
		}
		insts = append(insts, a)
	}
	sort.Strings(insts)
	insts = compactStrings(insts)
	type res struct {
		changes []VarChange
		issues  []VarIssue
		down    error
	}
	results := make([]res, len(insts))
	parallel(len(insts), opt.Parallel, func(k int) {
		addr := insts[k]
		want := d.For(addr)
		db, err := c.DB(addr)
		var server map[string]SysVar
		if err == nil {
			rctx, cancel := context.WithTimeout(ctx, opt.Timeout)
			server, err = ReadVariables(rctx, db, slices.Sorted(maps.Keys(want)))
			cancel()
		}
		if err != nil {
			results[k].down = err
			return
		}
		results[k].changes, results[k].issues = DiffVars(addr, want, server)
	})
	var down []string
	for k, r := range results {
		if r.down != nil {
			down = append(down, insts[k]+" ("+r.down.Error()+")")
		}
	}
	if len(down) > 0 {
		return nil, fmt.Errorf("vars: %w: %s: a push needs every instance", ErrUnreachable, strings.Join(down, ", "))
	}
	p := &VarsPlan{c: c, opt: opt}
	var issues []VarIssue
	known := map[string]bool{}
	nchanges := 0
	for k, r := range results {
		known[insts[k]] = true
		issues = append(issues, r.issues...)
		iv := InstanceVars{Instance: insts[k], Changes: r.changes}
		if iv.Changes == nil {
			iv.Changes = []VarChange{}
		}
		p.Instances = append(p.Instances, iv)
		if ch := iv.Changed(); len(ch) > 0 {
			p.targets = append(p.targets, &varsTarget{addr: insts[k], changes: ch})
			nchanges += len(ch)
		}
	}
	if len(issues) > 0 {
		return nil, &VarsRejectedError{Issues: issues}
	}
	plan := &Plan{Kind: "vars",
		Summary: fmt.Sprintf("set %d variable values on %d of %d instances", nchanges, len(p.targets), len(insts)),
		Preflight: []PreflightCheck{{Name: "system variables",
			Detail: fmt.Sprintf("every desired variable exists, is dynamic and global, and every value is allowed, on each of the %d instances", len(insts))}},
	}
	for _, iv := range p.Instances {
		for _, ch := range iv.Changes {
			if ch.Warning != "" {
				plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s: %s: %s", iv.Instance, ch.Variable, ch.Warning))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(d.Groups)) {
		for _, a := range d.Groups[name].Instances {
			if !known[a] {
				plan.Warnings = append(plan.Warnings, fmt.Sprintf("group %s names %s, which is not among the instances planned", name, a))
			}
		}
	}
	for _, t := range p.targets {
		var do, undo []string
		for _, ch := range t.changes {
			do = append(do, ch.Statement)
			undo = append(undo, ch.Restore)
		}
		t.step = &Step{Name: "set variables", Instance: t.addr, Description: strings.Join(do, "; "),
			Precondition: "the current values are still those the plan shows (the snapshot)",
			UndoText:     strings.Join(undo, "; ") + "; then read back"}
		t.step.Check = func(ctx context.Context) error { return t.snapshot(ctx, c, opt.Timeout) }
		t.step.Do = func(ctx context.Context) error {
			if err := t.apply(ctx, c, opt.Timeout); err != nil {
				return err
			}
			return t.readBack(ctx, c, opt.Timeout)
		}
		t.step.Undo = func(ctx context.Context) error { return t.restore(ctx, c, opt.Timeout) }
		plan.Steps = append(plan.Steps, t.step)
	}
	if plan.Steps == nil {
		plan.Steps = []*Step{}
	}
	p.Plan = plan
	return p, nil
}

func compactStrings(s []string) []string {
	out := s[:0]
	for k, v := range s {
		if k == 0 || v != s[k-1] {
			out = append(out, v)
		}
	}
	return out
}

// parallel runs f(0..n-1) with at most limit at once and waits for all.
func parallel(n, limit int, f func(k int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(limit, 1))
	for k := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(k)
		}()
	}
	wg.Wait()
}

// varsTarget is one instance that changes, and what the push did to it so far.
type varsTarget struct {
	addr    string
	changes []VarChange
	step    *Step
	// attempted are the changes whose SET GLOBAL was sent (whether or not it answered): the restore covers them.
	attempted []VarChange
	// restored is set once the restore was verified.
	restored bool
	// current are the values last read, for the report; nil when the instance could not be read.
	current map[string]string
}

func (t *varsTarget) names() []string {
	out := make([]string, len(t.changes))
	for k, ch := range t.changes {
		out[k] = ch.Variable
	}
	return out
}

func (t *varsTarget) read(ctx context.Context, c *Client, timeout time.Duration) (map[string]SysVar, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	db, err := c.DB(t.addr)
	if err != nil {
		return nil, err
	}
	vs, err := ReadVariables(ctx, db, t.names())
	if err != nil {
		t.current = nil
		return nil, fmt.Errorf("%s: %w", t.addr, err)
	}
	t.current = map[string]string{}
	for n, sv := range vs {
		t.current[n] = sv.Value
	}
	return vs, nil
}

// sameValue compares a value the server reported with a canonical one.
func sameValue(sv SysVar, want string) bool {
	got, err := ObservedVar(sv, sv.Value)
	return err == nil && got == want
}

// mustObserved is the canonical form of a value that DiffVars already normalised without error.
func mustObserved(sv SysVar, raw string) string {
	c, err := ObservedVar(sv, raw)
	if err != nil {
		return raw
	}
	return c
}

// snapshotValue is the value a change started from: canonical, and as the server showed it.
func snapshotValue(ch VarChange) (string, string) { return mustObserved(ch.sv, ch.Current), ch.Current }

// mismatches compares the values read with the expected ones (want: canonical, and as shown), one
// "variable reads X, want Y" per difference; a variable that was not read differs.
func mismatches(vs map[string]SysVar, changes []VarChange, want func(VarChange) (string, string)) []string {
	var out []string
	for _, ch := range changes {
		canon, shown := want(ch)
		sv, ok := vs[ch.Variable]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s was not read, want %q", ch.Variable, shown))
		case !sameValue(sv, canon):
			out = append(out, fmt.Sprintf("%s reads %q, want %q", ch.Variable, sv.Value, shown))
		}
	}
	return out
}

// snapshot reads the current values and checks that they are those the plan was made from.
func (t *varsTarget) snapshot(ctx context.Context, c *Client, timeout time.Duration) error {
	vs, err := t.read(ctx, c, timeout)
	if err != nil {
		return err
	}
	if stale := mismatches(vs, t.changes, snapshotValue); len(stale) > 0 {
		return fmt.Errorf("%s: %w: %s", t.addr, ErrVarsStale, strings.Join(stale, "; "))
	}
	return nil
}

// apply sends one SET GLOBAL per variable on one session, recording each as attempted before it is sent. A
// statement the server answered with an error did not change anything (SET GLOBAL of one variable is atomic);
// one whose answer was lost may have, and stays attempted.
func (t *varsTarget) apply(ctx context.Context, c *Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.statementSession(ctx, t.addr, false, func(q Querier) error {
		for _, ch := range t.changes {
			t.attempted = append(t.attempted, ch)
			if _, err := q.ExecContext(ctx, ch.Statement); err != nil {
				var me *mysql.MySQLError
				if errors.As(err, &me) {
					t.attempted = t.attempted[:len(t.attempted)-1]
				}
				return fmt.Errorf("%s: %s: %w", t.addr, ch.Statement, err)
			}
		}
		return nil
	})
}

// readBack checks that every variable now holds its new value.
func (t *varsTarget) readBack(ctx context.Context, c *Client, timeout time.Duration) error {
	vs, err := t.read(ctx, c, timeout)
	if err != nil {
		return err
	}
	if bad := mismatches(vs, t.changes, func(ch VarChange) (string, string) { return ch.New, ch.New }); len(bad) > 0 {
		return fmt.Errorf("%s: read-back mismatch: %s", t.addr, strings.Join(bad, "; "))
	}
	return nil
}

// restore sets every attempted variable back to its snapshot value (all of them, whatever fails) and verifies by
// reading them back.
func (t *varsTarget) restore(ctx context.Context, c *Client, timeout time.Duration) error {
	if len(t.attempted) == 0 {
		t.restored = true
		return nil
	}
	var errs []error
	// Only what differs from the snapshot is set back; when the instance cannot be read, everything attempted is.
	now, _ := t.read(ctx, c, timeout)
	sctx, cancel := context.WithTimeout(ctx, timeout)
	err := c.statementSession(sctx, t.addr, false, func(q Querier) error {
		for _, ch := range t.attempted {
			if len(mismatches(now, []VarChange{ch}, snapshotValue)) == 0 {
				continue
			}
			if _, err := q.ExecContext(sctx, ch.Restore); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", ch.Restore, err))
			}
		}
		return nil
	})
	cancel()
	if err != nil {
		errs = append(errs, err)
	}
	vs, err := t.read(ctx, c, timeout)
	if err != nil {
		errs = append(errs, fmt.Errorf("verify: %w", err))
		return errors.Join(errs...)
	}
	if bad := mismatches(vs, t.attempted, snapshotValue); len(bad) > 0 {
		errs = append(errs, fmt.Errorf("verify: not the snapshot: %s", strings.Join(bad, "; ")))
	}
	if len(errs) == 0 {
		t.restored = true
	}
	return errors.Join(errs...)
}

// VarsExecOptions tune VarsPlan.Execute.
type VarsExecOptions struct {
	// Audit receives JSON lines (AuditRecord): the push's start and result, and a start and an outcome line for
	// each instance in each phase (Phase is snapshot, apply, read-back or restore; restore includes its
	// verification). nil means no audit log.
	Audit io.Writer
	// User is recorded in the audit log; empty means the OS user.
	User string
	// RunID names this push in the audit log; empty means a random one.
	RunID string
	// Host is recorded in the audit log; empty means os.Hostname.
	Host   string
	Logger *slog.Logger
	// BeforePhase, when set, runs before each phase (snapshot, apply, read-back, restore); an error fails the push
	// at that point (before restore it is logged and the restore runs anyway). Tests use it to inject faults.
	BeforePhase func(ctx context.Context, phase string) error
	// UndoTimeout bounds the whole restore, which runs even when ctx is cancelled. Zero means 2 minutes.
	UndoTimeout time.Duration
}

// The outcomes of a push.
const (
	OutcomeNothingToDo        = "nothing to do"
	OutcomeApplied            = "applied everywhere"
	OutcomeNotApplied         = "not applied" // the snapshot failed: nothing was sent
	OutcomeRolledBack         = "rolled back everywhere"
	OutcomeRollbackIncomplete = "rollback incomplete"
)

// InstanceFailure is why a push failed on one instance, in one phase.
type InstanceFailure struct {
	Instance string `json:"instance"`
	Phase    string `json:"phase"`
	Error    string `json:"error"`
}

// IncompleteInstance is an instance whose rollback did not complete or could not be verified.
type IncompleteInstance struct {
	Instance string `json:"instance"`
	Reason   string `json:"reason"`
	// Values are the current values of the variables the push sent, as read after the restore; "unknown" when
	// the instance could not be read.
	Values map[string]string `json:"values"`
	// Statements restore the snapshot, for a DBA to run by hand.
	Statements []string `json:"statements"`
}

// VarsResult says what a push did, plainly.
type VarsResult struct {
	Outcome    string               `json:"outcome"`
	Instances  int                  `json:"instances_changed"`
	Variables  int                  `json:"values_changed"`
	Failures   []InstanceFailure    `json:"failures,omitempty"`
	Incomplete []IncompleteInstance `json:"rollback_incomplete,omitempty"`
	TookMS     float64              `json:"took_ms"`
}

// Execute pushes the plan as one transaction:
//  1. snapshot: read every changing instance and check its values are still those planned (else nothing is sent);
//  2. apply: SET GLOBAL on every instance, at most Parallel at once;
//  3. read-back: read every value back and compare it, normalised, with the planned one;
//  4. on any failure (unreachable, error, mismatch, killed midway): restore the snapshot on every instance where
//     a statement was sent, and verify the restore by reading.
//
// It returns the result and nil when applied everywhere; otherwise an error that wraps ErrVarsRolledBack,
// ErrVarsRollbackIncomplete, or (nothing sent) ErrVarsStale / the snapshot's error. The restore runs even if ctx
// is cancelled, bounded by UndoTimeout.
func (p *VarsPlan) Execute(ctx context.Context, opt VarsExecOptions) (*VarsResult, error) {
	start := time.Now()
	eo := ExecOptions{Audit: opt.Audit, User: opt.User, RunID: opt.RunID, Host: opt.Host, Logger: opt.Logger, UndoTimeout: opt.UndoTimeout}
	eo.withDefaults()
	opt.Logger, opt.UndoTimeout = eo.Logger, eo.UndoTimeout
	res := &VarsResult{Instances: len(p.targets)}
	for _, t := range p.targets {
		res.Variables += len(t.changes)
		t.attempted, t.restored, t.current = nil, false, nil
	}
	done := func(err error) (*VarsResult, error) {
		res.TookMS = float64(time.Since(start).Microseconds()) / 1000
		return res, err
	}
	if len(p.targets) == 0 {
		res.Outcome = OutcomeNothingToDo
		return done(nil)
	}
	a := p.Plan.newAuditor(eo)
	a.record(nil, "plan", "start", nil, 0)
	// hook runs BeforePhase; its error fails the phase before anything of it runs.
	hook := func(ctx context.Context, name string) []phaseError {
		if opt.BeforePhase == nil {
			return nil
		}
		if err := opt.BeforePhase(ctx, name); err != nil {
			a.record(&Step{Name: name}, name, "failed", err, 0)
			return []phaseError{{phase: name, err: fmt.Errorf("before %s: %w", name, err)}}
		}
		return nil
	}
	// phase runs f on every target, at most Parallel at once, with a start and an outcome audit record each.
	phase := func(ctx context.Context, name string, ts []*varsTarget, f func(ctx context.Context, t *varsTarget) error) []phaseError {
		var mu sync.Mutex
		var errs []phaseError
		parallel(len(ts), p.opt.Parallel, func(k int) {
			t := ts[k]
			s := &Step{Name: name, Instance: t.addr}
			a.record(s, name, "start", nil, 0)
			tstart := time.Now()
			err := f(ctx, t)
			if err == nil {
				a.record(s, name, "ok", nil, time.Since(tstart))
				return
			}
			a.record(s, name, "failed", err, time.Since(tstart))
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, phaseError{instance: t.addr, phase: name, err: err})
		})
		sort.Slice(errs, func(i, j int) bool { return errs[i].instance < errs[j].instance })
		return errs
	}
	run := func(ctx context.Context, name string, f func(ctx context.Context, t *varsTarget) error) []phaseError {
		if errs := hook(ctx, name); errs != nil {
			return errs
		}
		return phase(ctx, name, p.targets, f)
	}
	c, to := p.c, p.opt.Timeout
	if errs := run(ctx, "snapshot", func(ctx context.Context, t *varsTarget) error { return t.snapshot(ctx, c, to) }); errs != nil {
		res.Outcome, res.Failures = OutcomeNotApplied, failuresOf(errs)
		a.record(nil, "plan", "not-applied", joinPhaseErrors(errs), 0)
		for _, e := range errs {
			if errors.Is(e.err, ErrVarsStale) {
				return done(fmt.Errorf("vars: nothing applied: %w", joinPhaseErrors(errs)))
			}
		}
		return done(fmt.Errorf("vars: nothing applied: the snapshot failed: %w", joinPhaseErrors(errs)))
	}
	errs := run(ctx, "apply", func(ctx context.Context, t *varsTarget) error { return t.apply(ctx, c, to) })
	if errs == nil {
		errs = run(ctx, "read-back", func(ctx context.Context, t *varsTarget) error { return t.readBack(ctx, c, to) })
	}
	if errs == nil {
		res.Outcome = OutcomeApplied
		a.record(nil, "plan", "ok", nil, 0)
		return done(nil)
	}
	res.Failures = failuresOf(errs)
	cause := joinPhaseErrors(errs)
	// Restore every instance where a statement was sent, with a context that ignores cancellation.
	uctx, cancel := detach(ctx, opt.UndoTimeout)
	defer cancel()
	var touched []*varsTarget
	for _, t := range p.targets {
		if len(t.attempted) > 0 {
			touched = append(touched, t)
		}
	}
	if herrs := hook(uctx, "restore"); herrs != nil {
		opt.Logger.Warn("vars: restoring anyway", "err", herrs[0].err)
	}
	restoreErrs := phase(uctx, "restore", touched, func(ctx context.Context, t *varsTarget) error { return t.restore(ctx, c, to) })
	for _, t := range touched {
		if t.restored {
			continue
		}
		ii := IncompleteInstance{Instance: t.addr, Values: map[string]string{}}
		for _, e := range restoreErrs {
			if e.instance == t.addr {
				ii.Reason = e.err.Error()
			}
		}
		for _, ch := range t.attempted {
			v, ok := t.current[ch.Variable]
			if !ok {
				v = "unknown"
			}
			ii.Values[ch.Variable] = v
			ii.Statements = append(ii.Statements, ch.Restore+";")
		}
		res.Incomplete = append(res.Incomplete, ii)
	}
	if len(res.Incomplete) > 0 {
		res.Outcome = OutcomeRollbackIncomplete
		a.record(nil, "plan", "rollback-incomplete", cause, 0)
		names := make([]string, len(res.Incomplete))
		for k, ii := range res.Incomplete {
			names[k] = ii.Instance
		}
		return done(fmt.Errorf("vars: %w on %s after: %v", ErrVarsRollbackIncomplete, strings.Join(names, ", "), cause))
	}
	res.Outcome = OutcomeRolledBack
	a.record(nil, "plan", "rolled-back", cause, 0)
	return done(fmt.Errorf("vars: %w (restored and verified on %d instances) after: %v", ErrVarsRolledBack, len(touched), cause))
}

// phaseError is one instance's failure in one phase (no instance: the phase's BeforePhase hook).
type phaseError struct {
	instance, phase string
	err             error
}

func failuresOf(errs []phaseError) []InstanceFailure {
	out := make([]InstanceFailure, len(errs))
	for k, e := range errs {
		out[k] = InstanceFailure{Instance: e.instance, Phase: e.phase, Error: e.err.Error()}
	}
	return out
}

// joinPhaseErrors keeps every error for errors.Is (ErrVarsStale) and prints them as "phase: error; ...".
func joinPhaseErrors(errs []phaseError) error {
	wrapped := make([]error, len(errs))
	for k, e := range errs {
		wrapped[k] = fmt.Errorf("%s: %w", e.phase, e.err)
	}
	return &joinedErrors{errs: wrapped}
}

type joinedErrors struct{ errs []error }

func (j *joinedErrors) Error() string {
	parts := make([]string, len(j.errs))
	for k, e := range j.errs {
		parts[k] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (j *joinedErrors) Unwrap() []error { return j.errs }

// WriteText prints the plan for a human: per instance, each variable's current and new value.
func (p *VarsPlan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan: %s\n", p.Plan.Summary)
	for _, c := range p.Plan.Preflight {
		fmt.Fprintf(&b, "  ok  %s: %s\n", c.Name, c.Detail)
	}
	for _, wn := range p.Plan.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", wn)
	}
	for _, iv := range p.Instances {
		n := len(iv.Changed())
		fmt.Fprintf(&b, "\n%s: %d to change, %d already as desired\n", iv.Instance, n, len(iv.Changes)-n)
		for _, ch := range iv.Changes {
			if ch.Changed {
				fmt.Fprintf(&b, "  ~ %-32s %s -> %s\n", ch.Variable, displayValue(ch.Current), displayValue(ch.New))
			} else {
				fmt.Fprintf(&b, "    %-32s %s\n", ch.Variable, displayValue(ch.Current))
			}
		}
	}
	if p.Changed() {
		b.WriteString("\nApply: snapshot every instance above that changes, SET GLOBAL on each, read every value back;\n" +
			"on any failure, restore the snapshot on every instance that changed and verify it by reading.\n")
	} else {
		b.WriteString("\nNothing to change.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// displayValue quotes a value for a terminal line when it is empty or holds anything but plain text.
func displayValue(s string) string {
	if s == "" || strings.ContainsAny(s, " \t'\"\\") || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// WriteText prints the result plainly: applied everywhere, rolled back everywhere, or (loudly) rollback
// incomplete with each instance's current values and the statements a DBA can run.
func (r *VarsResult) WriteText(w io.Writer) error {
	var b strings.Builder
	switch r.Outcome {
	case OutcomeNothingToDo:
		b.WriteString("Nothing to do: every instance already has the desired values.\n")
	case OutcomeApplied:
		fmt.Fprintf(&b, "Applied everywhere: %d values on %d instances, read back and verified (%.1f ms).\n", r.Variables, r.Instances, r.TookMS)
	case OutcomeNotApplied:
		b.WriteString("Not applied: the snapshot failed, nothing was sent to any instance.\n")
	case OutcomeRolledBack:
		b.WriteString("Rolled back everywhere: the push failed, and every instance that changed was restored to its snapshot and verified by reading.\n")
	case OutcomeRollbackIncomplete:
		b.WriteString("!!! ROLLBACK INCOMPLETE: the push failed and these instances may still hold new values !!!\n")
	}
	if len(r.Failures) > 0 {
		b.WriteString("Failures:\n")
		for _, f := range r.Failures {
			inst := f.Instance
			if inst == "" {
				inst = "(all)"
			}
			fmt.Fprintf(&b, "  %s %s: %s\n", inst, f.Phase, f.Error)
		}
	}
	for _, ii := range r.Incomplete {
		fmt.Fprintf(&b, "\n!!! %s: rollback incomplete: %s\n", ii.Instance, ii.Reason)
		b.WriteString("  current values (\"unknown\": the instance could not be read; if it restarted, it runs with its configuration files' values):\n")
		for _, n := range slices.Sorted(maps.Keys(ii.Values)) {
			fmt.Fprintf(&b, "    %-32s %s\n", n, displayValue(ii.Values[n]))
		}
		b.WriteString("  to restore the snapshot by hand, run on it:\n")
		for _, s := range ii.Statements {
			fmt.Fprintf(&b, "    %s\n", s)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// OptionFragment renders the applied values of one instance's plan as a my.cnf [mariadbd] fragment, so that the
// static configuration can carry them across restarts (MariaDB has no SET PERSIST). Values are the canonical
// ones (bytes, ON/OFF, seconds).
func (p *VarsPlan) OptionFragment() string {
	var b strings.Builder
	b.WriteString("# Written by dbstate vars apply after the values were applied everywhere and read back.\n")
	fmt.Fprintf(&b, "# %s\n", p.Plan.Summary)
	vals := map[string]map[string]string{} // variable -> value -> instances
	for _, iv := range p.Instances {
		for _, ch := range iv.Changes {
			if vals[ch.Variable] == nil {
				vals[ch.Variable] = map[string]string{}
			}
			vals[ch.Variable][ch.New] += " " + iv.Instance
		}
	}
	b.WriteString("[mariadbd]\n")
	for _, n := range slices.Sorted(maps.Keys(vals)) {
		vs := slices.Sorted(maps.Keys(vals[n]))
		if len(vs) > 1 {
			fmt.Fprintf(&b, "# %s differs by instance:", n)
			for _, v := range vs {
				fmt.Fprintf(&b, " %s on%s;", optionValue(v), vals[n][v])
			}
			b.WriteString(" set it per host\n")
			continue
		}
		fmt.Fprintf(&b, "%s = %s\n", n, optionValue(vs[0]))
	}
	return b.String()
}

// optionValue quotes an option file value when it needs it (the rules ParseOptionFile reads back).
func optionValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t#;\"'\\") {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(v) + `"`
}
