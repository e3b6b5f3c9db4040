package dbstate

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// GrantsTarget says where a desired state goes: a replicated cluster (Primary and its Replicas) or independent
// instances. Exactly one of Primary and Independent is set.
type GrantsTarget struct {
	Primary  string   `json:"primary,omitempty"`
	Replicas []string `json:"replicas,omitempty"` // every instance under Primary, directly or not
	// Independent instances do not replicate from each other: each gets its own changes (logged in its own binary
	// log as any statement is).
	Independent []string `json:"independent,omitempty"`
	// Notes are problems of the topology that do not stop a plan (errant GTIDs, lag), shown as its warnings.
	Notes []string `json:"notes,omitempty"`
}

func (t GrantsTarget) instances() []string {
	if t.Primary == "" {
		return t.Independent
	}
	return append([]string{t.Primary}, t.Replicas...)
}

// Validate checks that the target names instances, once each.
func (t GrantsTarget) Validate() error {
	if (t.Primary == "") == (len(t.Independent) == 0) {
		return errors.New("grants target: want a primary (with replicas) or independent instances")
	}
	if t.Primary == "" && len(t.Replicas) > 0 {
		return errors.New("grants target: replicas without a primary")
	}
	seen := map[string]bool{}
	for _, a := range t.instances() {
		if a == "" || seen[a] {
			return fmt.Errorf("grants target: instance %q empty or listed twice", a)
		}
		seen[a] = true
	}
	return nil
}

// GrantsTargetFromTopology makes a cluster target from a discovered topology: its one root is the primary, every
// other instance a replica. It refuses a topology where a replicated change might not reach every instance or
// could not be waited for: several roots, unreachable instances, broken or stopped replication, replication
// without GTID, a loop, an intermediate master without log_slave_updates.
func GrantsTargetFromTopology(t *Topology) (GrantsTarget, error) {
	var reasons []error
	var notes []string
	for _, p := range t.Problems {
		switch p.Kind {
		case ProblemUnreachable:
			reasons = append(reasons, because(ErrUnreachable, p.String()))
		case ProblemBroken, ProblemStopped, ProblemNoGTID, ProblemLoop, ProblemNoBinlog, ProblemMultiWritable:
			reasons = append(reasons, because(ErrReplicaUnhealthy, p.String()))
		default:
			notes = append(notes, p.String())
		}
	}
	if len(t.Roots) != 1 {
		reasons = append(reasons, because(ErrNotSameTree, fmt.Sprintf("%d replication roots (%s): use --instances for servers that do not replicate", len(t.Roots), strings.Join(t.Roots, ", "))))
	}
	if len(reasons) > 0 {
		return GrantsTarget{}, &RefusalError{Op: "grants", Reasons: reasons}
	}
	g := GrantsTarget{Primary: t.Roots[0], Notes: notes}
	for _, a := range t.sortedAddrs() {
		if a != g.Primary {
			g.Replicas = append(g.Replicas, a)
		}
	}
	return g, nil
}

// Scopes of a planned change.
const (
	// ScopeReplicated: every instance of the cluster lacks the change; it runs once on the primary and replicates.
	ScopeReplicated = "replicated"
	// ScopeLocal: only some instances need it (drift); it runs on each of them with sql_log_bin=0, so no
	// instance gains a transaction the others lack (no errant GTID).
	ScopeLocal = "local"
	// ScopeInstance: an independent instance.
	ScopeInstance = "instance"
)

// PlannedGrantChange is a change and where it runs.
type PlannedGrantChange struct {
	GrantChange
	Scope     string   `json:"scope"`
	Instances []string `json:"instances"` // where it runs: the primary for ScopeReplicated
}

// GrantsOptions tune PlanGrants.
type GrantsOptions struct {
	// ReadFile reads a password file named in the desired state (its first line is the password). Nil means
	// ReadPasswordFile with paths as written.
	ReadFile func(path string) (string, error)
	// WaitTimeout bounds each wait for the replicas to apply the primary's changes. Zero means 30 s.
	WaitTimeout time.Duration
	// Parallel is how many instances are read at once. Zero means 8.
	Parallel int
	// StatementTimeout bounds each statement (max_statement_time and lock_wait_timeout of dbstate's sessions), so
	// that a backup's FLUSH TABLES WITH READ LOCK fails the apply instead of hanging it (lock_wait_timeout alone
	// does not stop an account statement waiting for it in 10.11). Zero means 30 s.
	StatementTimeout time.Duration
}

// GrantsPlan is the plan that applies a desired state: the Plan (steps, printable) and the changes it makes.
type GrantsPlan struct {
	Plan
	Target  GrantsTarget         `json:"target"`
	Changes []PlannedGrantChange `json:"changes"`
	Kept    []string             `json:"kept,omitempty"` // accounts prune keeps
	// Unchanged counts the instances that already match.
	Unchanged int `json:"instances_unchanged"`

	ex *grantsExec
}

// Empty reports whether the plan changes nothing.
func (p *GrantsPlan) Empty() bool { return len(p.Changes) == 0 }

// ReadGrantsAll reads every instance of a target (in parallel, bounded).
func ReadGrantsAll(ctx context.Context, c *Client, addrs []string, parallel int) (map[string]*GrantState, error) {
	if parallel <= 0 {
		parallel = 8
	}
	out := make(map[string]*GrantState, len(addrs))
	errs := make([]error, len(addrs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for k, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			db, err := c.DB(a)
			if err != nil {
				errs[k] = err
				return
			}
			st, err := ReadGrants(ctx, db)
			if err != nil {
				errs[k] = fmt.Errorf("%s: %w", a, err)
				return
			}
			mu.Lock()
			out[a] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// diffAll normalises desired against each instance's privilege list and diffs it with the instance's state.
func diffAll(desired *DesiredGrants, actual map[string]*GrantState, readFile func(string) (string, error)) (map[string]*GrantDiff, []string, error) {
	norm := map[ServerPrivileges]*GrantState{}
	out := map[string]*GrantDiff{}
	var warnings []string
	addrs := make([]string, 0, len(actual))
	for a := range actual {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		st := actual[a]
		want := norm[st.Privileges]
		if want == nil {
			var err error
			if want, err = desired.Normalize(st.Privileges, readFile); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", a, err)
			}
			norm[st.Privileges] = want
			warnings = appendNew(warnings, want.Warnings...)
		}
		if err := checkPlugins(want, st); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", a, err)
		}
		d, err := DiffGrants(want, st)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", a, err)
		}
		out[a] = d
		for _, w := range d.Warnings {
			warnings = appendNew(warnings, a+": "+w)
		}
		for _, w := range st.Warnings {
			warnings = appendNew(warnings, a+": "+w)
		}
	}
	return out, warnings, nil
}

// ErrAuthPlugin is returned when the desired state uses an authentication plugin a server has not loaded.
var ErrAuthPlugin = errors.New("authentication plugin not loaded")

// checkPlugins refuses a desired state whose accounts use a plugin the server has not loaded (ed25519 must be
// installed with INSTALL SONAME 'auth_ed25519'), before any statement would fail on it.
func checkPlugins(want, actual *GrantState) error {
	if actual.AuthPlugins == nil {
		return nil
	}
	for _, k := range want.sortedKeys() {
		for _, m := range want.Accounts[k].Auth {
			if !actual.AuthPlugins[m.Plugin] {
				hint := ""
				if m.Plugin == PluginED25519 {
					hint = " (INSTALL SONAME 'auth_ed25519' on every instance)"
				}
				return fmt.Errorf("%w: %s uses %s%s", ErrAuthPlugin, k, m.Plugin, hint)
			}
		}
	}
	return nil
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		found := false
		for _, l := range list {
			if l == m {
				found = true
				break
			}
		}
		if !found {
			list = append(list, m)
		}
	}
	return list
}

// classify decides where each change runs (pure). In a cluster, a change that every instance needs runs once on
// the primary; a change that only some need runs on each of them locally. Changes keep their rank order.
func classify(t GrantsTarget, diffs map[string]*GrantDiff) []PlannedGrantChange {
	type entry struct {
		ch    GrantChange
		where []string
	}
	var order []string
	byStmt := map[string]*entry{}
	for _, a := range t.instances() {
		for _, c := range diffs[a].Changes {
			key := c.stmt
			if t.Primary == "" {
				key = a + "\x00" + c.stmt
			}
			e := byStmt[key]
			if e == nil {
				e = &entry{ch: c}
				byStmt[key] = e
				order = append(order, key)
			}
			e.where = append(e.where, a)
		}
	}
	out := make([]PlannedGrantChange, 0, len(order))
	n := len(t.instances())
	for _, key := range order {
		e := byStmt[key]
		pc := PlannedGrantChange{GrantChange: e.ch, Instances: e.where}
		switch {
		case t.Primary == "":
			pc.Scope = ScopeInstance
		case len(e.where) == n:
			pc.Scope, pc.Instances = ScopeReplicated, []string{t.Primary}
		default:
			pc.Scope = ScopeLocal
		}
		out = append(out, pc)
	}
	// Local changes first within a rank: a replicated statement may need what a local one creates on a replica.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].rank != out[j].rank {
			return out[i].rank < out[j].rank
		}
		return out[i].Scope == ScopeLocal && out[j].Scope != ScopeLocal
	})
	return out
}

// PlanGrants reads every instance of the target, diffs it with the desired state and returns the plan. It only
// reads (see ReadGrants for the privileges it needs). Refusals: ErrOwnAccount, ErrDesiredGrants (a password
// file that cannot be read, a privilege this server does not know), ErrUnsupportedGrants.
func PlanGrants(ctx context.Context, c *Client, target GrantsTarget, desired *DesiredGrants, o GrantsOptions) (*GrantsPlan, error) {
	if err := target.Validate(); err != nil {
		return nil, err
	}
	if o.ReadFile == nil {
		o.ReadFile = ReadPasswordFile
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 30 * time.Second
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 30 * time.Second
	}
	actual, err := ReadGrantsAll(ctx, c, target.instances(), o.Parallel)
	if err != nil {
		return nil, err
	}
	diffs, warnings, err := diffAll(desired, actual, o.ReadFile)
	if err != nil {
		return nil, err
	}
	p := &GrantsPlan{Target: target, Changes: classify(target, diffs)}
	p.Kind = "grants"
	p.Warnings = append(append([]string(nil), target.Notes...), warnings...)
	for _, a := range target.instances() {
		if len(diffs[a].Changes) == 0 {
			p.Unchanged++
		}
		p.Kept = appendNew(p.Kept, diffs[a].Kept...)
	}
	p.Summary = p.summary()
	if target.Primary != "" {
		p.Preflight = append(p.Preflight, PreflightCheck{Name: "cluster", Detail: fmt.Sprintf("primary %s, %d replicas, replication healthy", target.Primary, len(target.Replicas))})
	}
	p.ex = &grantsExec{c: c, target: target, desired: desired, opt: o, sessions: map[sessionKey]*sql.Conn{}}
	p.buildSteps()
	return p, nil
}

// summary is the one-line count of the plan.
func (p *GrantsPlan) summary() string {
	count := map[string]int{}
	created := map[string]bool{}
	altered := map[string]bool{}
	var repl, local int
	where := map[string]bool{}
	for _, c := range p.Changes {
		switch c.Kind {
		case ChangeCreate:
			created[c.Who] = true
		case ChangeAlter, ChangeDefaultRole:
			altered[c.Who] = true
		default:
			count[c.Kind]++
		}
		switch c.Scope {
		case ScopeReplicated:
			repl++
		default:
			local += len(c.Instances)
			for _, a := range c.Instances {
				where[a] = true
			}
		}
	}
	if len(p.Changes) == 0 {
		return fmt.Sprintf("no changes: %d instances match the desired state", p.Unchanged)
	}
	s := fmt.Sprintf("%s to create, %d to alter, %s, %s, %d to drop; %s", plural(len(created), "account"),
		len(altered), plural(count[ChangeGrant], "grant"), plural(count[ChangeRevoke], "revoke"), count[ChangeDrop],
		plural(repl+local, "statement"))
	var parts []string
	if repl > 0 {
		parts = append(parts, fmt.Sprintf("%d once on the primary (replicated)", repl))
	}
	if local > 0 {
		ws := make([]string, 0, len(where))
		for a := range where {
			ws = append(ws, a)
		}
		sort.Strings(ws)
		kind := "local with sql_log_bin=0"
		if p.Target.Primary == "" {
			kind = "on independent instances"
		}
		parts = append(parts, fmt.Sprintf("%d %s on %s", local, kind, strings.Join(ws, ", ")))
	}
	return s + ": " + strings.Join(parts, ", ")
}

// WriteText prints the plan per account: what is created, altered, granted, revoked or dropped, as SQL with
// authentication strings redacted, and where it runs; then a summary line.
func (p *GrantsPlan) WriteText(w io.Writer) error {
	var b strings.Builder
	if p.Target.Primary != "" {
		fmt.Fprintf(&b, "Grants plan for the cluster of primary %s", p.Target.Primary)
		if len(p.Target.Replicas) > 0 {
			fmt.Fprintf(&b, " (replicas %s)", strings.Join(p.Target.Replicas, ", "))
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "Grants plan for independent instances %s\n", strings.Join(p.Target.Independent, ", "))
	}
	for _, wn := range p.Warnings {
		fmt.Fprintf(&b, "  warning: %s\n", printable(wn))
	}
	for _, k := range p.Kept {
		fmt.Fprintf(&b, "  kept: %s\n", printable(k))
	}
	var accounts []string
	byAccount := map[string][]PlannedGrantChange{}
	for _, c := range p.Changes {
		if byAccount[c.Who] == nil {
			accounts = append(accounts, c.Who)
		}
		byAccount[c.Who] = append(byAccount[c.Who], c)
	}
	for _, a := range accounts {
		fmt.Fprintf(&b, "\n%s\n", a)
		for _, c := range byAccount[a] {
			fmt.Fprintf(&b, "  %-12s %-40s %s\n", c.Kind, scopeText(c), c.SQL)
		}
	}
	fmt.Fprintf(&b, "\nSummary: %s\n", p.Summary)
	_, err := io.WriteString(w, b.String())
	return err
}

func scopeText(c PlannedGrantChange) string {
	switch c.Scope {
	case ScopeReplicated:
		return "[primary " + c.Instances[0] + ", replicates]"
	case ScopeLocal:
		return "[only " + strings.Join(c.Instances, ", ") + ", sql_log_bin=0]"
	}
	return "[" + strings.Join(c.Instances, ", ") + "]"
}

// sessionKey names one of the sessions a plan keeps open: per instance, logged or local (sql_log_bin=0).
type sessionKey struct {
	addr  string
	local bool
}

// grantsExec holds what the plan's steps share: the client and the open sessions.
type grantsExec struct {
	c       *Client
	target  GrantsTarget
	desired *DesiredGrants
	opt     GrantsOptions

	mu       sync.Mutex
	sessions map[sessionKey]*sql.Conn
	// done records the statement steps that completed, for the report.
	done map[*Step]bool
}

// session returns the open session for key, opening it with NO_BACKSLASH_ESCAPES cleared and, for local
// changes, sql_log_bin=0.
func (e *grantsExec) session(ctx context.Context, key sessionKey) (*sql.Conn, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sessions[key]; s != nil {
		return s, nil
	}
	db, err := e.c.DB(key.addr)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key.addr, err)
	}
	setup := []string{"SET SESSION sql_mode=REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
		fmt.Sprintf("SET SESSION lock_wait_timeout=%d", max(1, int(e.opt.StatementTimeout.Seconds()))),
		fmt.Sprintf("SET SESSION max_statement_time=%.3f", max(0.001, e.opt.StatementTimeout.Seconds()))}
	if key.local {
		setup = append(setup, "SET SESSION sql_log_bin=0")
	}
	for _, s := range setup {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			discard(conn)
			return nil, fmt.Errorf("%s: %s: %w", key.addr, s, err)
		}
	}
	e.sessions[key] = conn
	return conn, nil
}

// drop forgets a session after an error: it is not reused.
func (e *grantsExec) drop(key sessionKey) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s := e.sessions[key]; s != nil {
		discard(s)
		delete(e.sessions, key)
	}
}

func (e *grantsExec) closeAll() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, s := range e.sessions {
		discard(s)
		delete(e.sessions, k)
	}
	return nil
}

// discard closes a connection without returning it to the pool (its session settings must not leak).
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

func (e *grantsExec) run(ctx context.Context, key sessionKey, c GrantChange) error {
	conn, err := e.session(ctx, key)
	if err != nil {
		return &unsentError{err}
	}
	// The session's max_statement_time (StatementTimeout) aborts it on the server; the client waits that long on
	// top of its own statement timeout.
	if _, err := conn.ExecContext(allowStatement(ctx, e.opt.StatementTimeout), c.stmt); err != nil {
		e.drop(key)
		for _, s := range c.secrets {
			err = scrub(err, s)
		}
		return fmt.Errorf("%s: %s: %w", key.addr, c.SQL, err)
	}
	return nil
}

// buildSteps turns the changes into steps: rank by rank, local changes then replicated ones, a wait for the
// replicas after each rank that had replicated changes, a final read-back of every instance, and a cleanup step
// that closes the sessions. The first statement is the point of no return: grants are not undone, a failure
// reports what was applied and what was not, and planning again shows what remains.
func (p *GrantsPlan) buildSteps() {
	e := p.ex
	e.done = map[*Step]bool{}
	if len(p.Changes) == 0 {
		return
	}
	n := 0
	for r := 0; r < numRanks; r++ {
		replicated := false
		for _, c := range p.Changes {
			if c.rank != r {
				continue
			}
			for _, a := range c.Instances {
				n++
				key := sessionKey{addr: a, local: c.Scope == ScopeLocal}
				ch := c.GrantChange
				s := &Step{Name: fmt.Sprintf("%s %d", c.Kind, n), Instance: a, Description: c.SQL}
				switch c.Scope {
				case ScopeLocal:
					s.Description += " (sql_log_bin=0)"
				case ScopeReplicated:
					replicated = true
					s.Description += " (replicates)"
				}
				s.Do = func(ctx context.Context) error {
					if err := e.run(ctx, key, ch); err != nil {
						return err
					}
					e.mu.Lock()
					e.done[s] = true
					e.mu.Unlock()
					return nil
				}
				if len(p.Steps) == 0 {
					s.PointOfNoReturn = true
				}
				p.Steps = append(p.Steps, s)
			}
		}
		if replicated && len(p.Target.Replicas) > 0 {
			p.Steps = append(p.Steps, p.waitStep(r))
		}
	}
	p.Steps = append(p.Steps, &Step{
		Name: "verify", Description: "read users, roles and grants back from every instance and check that they match the desired state",
		Do: func(ctx context.Context) error { return e.verify(ctx) },
	}, &Step{
		Name: "close sessions", Description: "close the sessions the statements ran on", Cleanup: true,
		Do: func(context.Context) error { return e.closeAll() },
	})
}

func (p *GrantsPlan) waitStep(rank int) *Step {
	e := p.ex
	return &Step{
		Name: fmt.Sprintf("wait for replicas (%d)", rank), Instance: strings.Join(p.Target.Replicas, ","),
		Description: "wait (MASTER_GTID_WAIT) until every replica has applied the primary's gtid_binlog_pos",
		Do: func(ctx context.Context) error {
			v, err := e.c.vars(ctx, p.Target.Primary)
			if err != nil {
				return err
			}
			for _, r := range p.Target.Replicas {
				if err := e.c.waitFor(ctx, r, v.GTIDBinlogPos, e.opt.WaitTimeout); err != nil {
					if rs, serr := e.c.replicaStatus(ctx, r); serr == nil && rs != nil && (rs.LastSQLError != "" || rs.LastIOError != "") {
						return fmt.Errorf("%w (replication: sql error %q, io error %q)", err, rs.LastSQLError, rs.LastIOError)
					}
					return err
				}
			}
			return nil
		},
	}
}

// ErrGrantsDrift is returned by the verify step when an instance still differs from the desired state.
var ErrGrantsDrift = errors.New("grants differ from the desired state")

func (e *grantsExec) verify(ctx context.Context) error {
	actual, err := ReadGrantsAll(ctx, e.c, e.target.instances(), e.opt.Parallel)
	if err != nil {
		return err
	}
	diffs, _, err := diffAll(e.desired, actual, e.opt.ReadFile)
	if err != nil {
		return err
	}
	var bad []string
	for _, a := range e.target.instances() {
		if cs := diffs[a].Changes; len(cs) > 0 {
			bad = append(bad, fmt.Sprintf("%s: %d changes remain, first: %s", a, len(cs), cs[0].SQL))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("verify: %w: %s", ErrGrantsDrift, strings.Join(bad, "; "))
	}
	return nil
}

// StepOutcome is what happened to one statement step.
type StepOutcome struct {
	Step      string `json:"step"`
	Instance  string `json:"instance"`
	Statement string `json:"sql"` // redacted
}

// GrantsResult says what Execute applied. After a failure, Applied are the statements that ran, Failed the one
// that failed (with Unknown set when the connection was lost, so it may or may not have been applied) and
// NotApplied the ones that did not run. Planning again shows what remains.
type GrantsResult struct {
	Applied    []StepOutcome `json:"applied"`
	Failed     *StepOutcome  `json:"failed,omitempty"`
	Unknown    bool          `json:"failed_outcome_unknown,omitempty"`
	NotApplied []StepOutcome `json:"not_applied"`
	Verified   bool          `json:"verified"`
	Error      string        `json:"error,omitempty"`
}

// ErrGrantsIncomplete is returned (wrapped, with the *ExecError) when Execute stopped midway.
var ErrGrantsIncomplete = errors.New("grants applied only in part")

// Execute runs the plan (see Plan.Execute) and reports statement by statement what was applied.
func (p *GrantsPlan) Execute(ctx context.Context, opt ExecOptions) (*GrantsResult, error) {
	res := &GrantsResult{Applied: []StepOutcome{}, NotApplied: []StepOutcome{}}
	if len(p.Steps) == 0 {
		res.Verified = true
		return res, nil
	}
	if hook := opt.BeforeStep; hook != nil {
		opt.BeforeStep = func(ctx context.Context, s *Step) error {
			if err := hook(ctx, s); err != nil {
				return &unsentError{err}
			}
			return nil
		}
	}
	err := p.Plan.Execute(ctx, opt)
	var ee *ExecError
	errors.As(err, &ee)
	failedSeen := false
	for _, s := range p.Steps {
		if s.Name == "verify" || s.Cleanup || strings.HasPrefix(s.Name, "wait for replicas") {
			continue
		}
		o := StepOutcome{Step: s.Name, Instance: s.Instance, Statement: s.Description}
		p.ex.mu.Lock()
		done := p.ex.done[s]
		p.ex.mu.Unlock()
		switch {
		case done:
			res.Applied = append(res.Applied, o)
		case ee != nil && ee.Step == s.Name && !failedSeen:
			failedSeen = true
			res.Failed = &o
			res.Unknown = outcomeUnknown(ee.Err)
		default:
			res.NotApplied = append(res.NotApplied, o)
		}
	}
	if err == nil {
		res.Verified = true
		return res, nil
	}
	res.Error = err.Error()
	return res, fmt.Errorf("%w: %d of %d statements applied: %w", ErrGrantsIncomplete, len(res.Applied),
		len(res.Applied)+len(res.NotApplied)+btoi(res.Failed != nil), err)
}

// outcomeUnknown reports whether a failed statement may have run: not when the server refused it with an error,
// nor when the driver says it sent nothing (driver.ErrBadConn), nor when the step failed before its statement.
func outcomeUnknown(err error) bool {
	var me *mysql.MySQLError
	var ue *unsentError
	if errors.As(err, &me) {
		// Interrupted (max_statement_time, KILL QUERY): the server may have been anywhere in the statement.
		return me.Number == 1969 || me.Number == 1317
	}
	return !errors.Is(err, driver.ErrBadConn) && !errors.As(err, &ue)
}

// unsentError marks a failure before the statement was sent (the session could not be opened, a hook refused).
type unsentError struct{ err error }

func (e *unsentError) Error() string { return e.err.Error() }
func (e *unsentError) Unwrap() error { return e.err }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
