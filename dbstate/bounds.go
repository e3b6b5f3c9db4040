package dbstate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/evenkeel/evenkeel/internal/ctxwait"
)

// What bounds a switchover, besides the statement timeout of every statement (ClientOptions.StatementTimeout):
//
//   - the window: from the moment set-read-only starts until promote has made the candidate writable, every step
//     runs within SwitchoverOptions.MaxWindow of that start (a context deadline); past it the step fails and the
//     switchover rolls back. A hung primary or candidate therefore costs at most MaxWindow of writes;
//   - long writes: a write statement, an open transaction that wrote, or a LOCK TABLES session makes
//     SET GLOBAL read_only=1 wait, and every other write queues behind it. Before read_only=1 the switchover looks
//     for them; it refuses, naming them, or kills them (SwitchoverOptions.KillLongWrites).

// ErrWindowExceeded is returned (wrapped) when a step in the write-unavailability window did not complete within
// SwitchoverOptions.MaxWindow of the window's start.
var ErrWindowExceeded = errors.New("the write-unavailability window reached its bound")

// ErrLongWrites is returned (wrapped) when a long write, an open transaction that wrote, or a LOCK TABLES session on
// the primary would make read_only=1 wait (see SwitchoverOptions.KillLongWrites).
var ErrLongWrites = errors.New("long writes or table locks on the primary")

// unanswered reports whether a statement failed for want of an answer (its statement timeout, or the deadline
// of its context, passed): it may have been sent, and may still take effect on the server.
func unanswered(err error) bool {
	return errors.Is(err, ErrStatementTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// window measures and bounds the write-unavailability window of one switchover.
type window struct {
	bound time.Duration

	mu         sync.Mutex
	start, end time.Time
}

// opened returns the window's start, starting it now if it has not started.
func (w *window) opened() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.start.IsZero() {
		w.start = time.Now()
	}
	return w.start
}

func (w *window) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.start.IsZero() && w.end.IsZero() {
		w.end = time.Now()
	}
}

// took is how long the window lasted (until now while it is open); false when it never opened.
func (w *window) took() (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.start.IsZero():
		return 0, false
	case w.end.IsZero():
		return time.Since(w.start), true
	}
	return w.end.Sub(w.start), true
}

// within makes st run inside the window: the window starts when the first step in it starts; closes ends it when
// st succeeds. Its action runs with a deadline at the window's start plus its bound (and grace); an error after that deadline
// says so (ErrWindowExceeded). Check and Undo are not bounded by the window (the undo has its own bound).
func (w *window) within(st *Step, closes bool) *Step {
	do := st.Do
	st.Do = func(ctx context.Context) error {
		start := w.opened()
		wctx, cancel := context.WithDeadlineCause(ctx, start.Add(w.bound+w.grace()), ErrWindowExceeded)
		defer cancel()
		err := do(wctx)
		if err != nil && errors.Is(context.Cause(wctx), ErrWindowExceeded) && ctx.Err() == nil {
			took, _ := w.took()
			return fmt.Errorf("%w (%v, --max-window) after %v: %w", ErrWindowExceeded, w.bound, took.Round(time.Millisecond), err)
		}
		if err == nil && closes {
			w.close()
		}
		return err
	}
	return st
}

// grace is what the window's deadline allows beyond its bound, so that the server's own abort of read_only=1
// (max_statement_time, the bound) arrives first and names its cause: a tenth of the bound, from 50 ms to 1 s.
func (w *window) grace() time.Duration { return min(max(w.bound/10, 50*time.Millisecond), time.Second) }

// report is the line Plan.Report gives about the window: how long the primary took no writes, and a warning when
// that exceeded the bound.
func (w *window) report() []string {
	took, ok := w.took()
	if !ok {
		return nil
	}
	if took > w.bound {
		return []string{fmt.Sprintf("WARNING: the write-unavailability window lasted %v, beyond its bound of %v (--max-window)",
			took.Round(time.Millisecond), w.bound)}
	}
	return []string{fmt.Sprintf("write-unavailability window: %v (bound %v)", took.Round(time.Millisecond), w.bound)}
}

// LongWrite is one session on the primary that would make SET GLOBAL read_only=1 wait.
type LongWrite struct {
	ID   int64  `json:"id"`
	User string `json:"user"`
	Host string `json:"host"`
	// What: "statement" (a write statement running for Age), "transaction" (an open transaction that wrote,
	// started Age ago) or "lock tables" (a session holding LOCK TABLES; Age is the session's idle time).
	What string        `json:"what"`
	Age  time.Duration `json:"age"`
	// Info is the statement (cut to 100 bytes, cleaned for a terminal) or the locked table.
	Info string `json:"info,omitempty"`
}

func (l LongWrite) String() string {
	s := fmt.Sprintf("session %d (%s@%s): %s for %v", l.ID, l.User, l.Host, l.What, l.Age.Round(time.Millisecond))
	if l.Info != "" {
		s += ": " + l.Info
	}
	return clean(s)
}

// LongWrites is what LongWrites found on one instance.
type LongWrites struct {
	Sessions []LongWrite `json:"sessions"`
	// LockInfo tells whether LOCK TABLES sessions could be seen: that needs the metadata_lock_info plugin
	// (INSTALL SONAME 'metadata_lock_info'). Without it, a LOCK TABLES session is found by the bounded wait of
	// read_only=1 only.
	LockInfo bool `json:"lock_info"`
}

func (lw *LongWrites) String() string {
	parts := make([]string, len(lw.Sessions))
	for k, s := range lw.Sessions {
		parts[k] = s.String()
	}
	return strings.Join(parts, "; ")
}

// maxLongWrites bounds the sessions LongWrites reports.
const maxLongWrites = 100

// IsReadStatement is pure: whether a process-list statement only reads (SELECT, SHOW, ... without FOR UPDATE,
// LOCK IN SHARE MODE or INTO), so that it does not hold up read_only=1. Leading comments and blanks are skipped.
// Anything it cannot tell is a write.
func IsReadStatement(info string) bool {
	s := strings.TrimSpace(info)
	for strings.HasPrefix(s, "/*") {
		end := strings.Index(s, "*/")
		if end < 0 {
			return false
		}
		s = strings.TrimSpace(s[end+2:])
	}
	s = strings.TrimLeft(s, "( \t\r\n")
	word := s
	if k := strings.IndexFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }); k >= 0 {
		word = s[:k]
	}
	switch strings.ToUpper(word) {
	case "SHOW", "DESC", "DESCRIBE", "EXPLAIN", "HELP":
		return true
	case "SELECT", "WITH", "VALUES", "TABLE":
		u := strings.ToUpper(s)
		for _, w := range []string{"FOR UPDATE", "LOCK IN SHARE MODE", " INTO ", "\tINTO ", "\nINTO "} {
			if strings.Contains(u, w) {
				return false
			}
		}
		return true
	}
	return false
}

// readLongWrites reads, on q, the sessions that would hold up read_only=1 for longer than older: write statements
// (the process list), open InnoDB transactions that wrote, and LOCK TABLES sessions (METADATA_LOCK_INFO, when the
// plugin is installed). It leaves out the reading session, server threads and the sessions in own.
func readLongWrites(ctx context.Context, q Querier, older time.Duration, own map[int64]bool) (*LongWrites, error) {
	out := &LongWrites{}
	sessions, self, _, err := readSessions(ctx, q)
	if err != nil {
		return nil, err
	}
	client := map[int64]Session{}
	for _, s := range sessions {
		if isClientSession(s, self) && !own[s.ID] {
			client[s.ID] = s
		}
	}
	ms := strconv.FormatInt(older.Milliseconds(), 10)
	add := func(id int64, what string, age time.Duration, info string) {
		s, ok := client[id]
		if !ok || len(out.Sessions) >= maxLongWrites {
			return
		}
		if len(info) > 100 {
			info = info[:100] + "..."
		}
		out.Sessions = append(out.Sessions, LongWrite{ID: id, User: s.User, Host: s.Host, What: what, Age: age, Info: info})
	}
	rows, err := queryRows(ctx, q, "SELECT ID, TIME_MS, LEFT(INFO, 200) AS INFO FROM information_schema.PROCESSLIST "+
		"WHERE COMMAND = 'Query' AND INFO IS NOT NULL AND TIME_MS >= "+ms+" ORDER BY TIME_MS DESC LIMIT "+strconv.Itoa(4*maxLongWrites))
	if err != nil {
		return nil, fmt.Errorf("process list: %w", err)
	}
	seen := map[int64]bool{}
	for _, r := range rows {
		id, _ := strconv.ParseInt(r["ID"], 10, 64)
		if IsReadStatement(r["INFO"]) {
			continue
		}
		seen[id] = true
		add(id, "statement", msDuration(r["TIME_MS"]), r["INFO"])
	}
	rows, err = queryRows(ctx, q, "SELECT trx_mysql_thread_id AS ID, TIMESTAMPDIFF(MICROSECOND, trx_started, NOW(6)) DIV 1000 AS AGE_MS, "+
		"trx_rows_modified AS ROWS_MODIFIED FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0 AND "+
		"trx_started <= NOW(6) - INTERVAL "+ms+"000 MICROSECOND LIMIT "+strconv.Itoa(maxLongWrites))
	if err != nil {
		return nil, fmt.Errorf("innodb transactions: %w", err)
	}
	for _, r := range rows {
		id, _ := strconv.ParseInt(r["ID"], 10, 64)
		if !seen[id] {
			seen[id] = true
			add(id, "transaction", msDuration(r["AGE_MS"]), r["ROWS_MODIFIED"]+" rows modified, not committed")
		}
	}
	n, err := queryString(ctx, q, "SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'")
	if err != nil {
		return nil, fmt.Errorf("plugins: %w", err)
	}
	if out.LockInfo = n != "0"; !out.LockInfo {
		return out, nil
	}
	// LOCK TABLES ... WRITE takes MDL_SHARED_NO_READ_WRITE, ... READ takes MDL_SHARED_READ_ONLY; statements take
	// other modes. Any age: a LOCK TABLES session is idle while it holds them.
	rows, err = queryRows(ctx, q, "SELECT m.THREAD_ID AS ID, CONCAT(m.TABLE_SCHEMA, '.', m.TABLE_NAME, ' ', m.LOCK_MODE) AS INFO, "+
		"IFNULL(p.TIME_MS, 0) AS TIME_MS FROM information_schema.METADATA_LOCK_INFO m LEFT JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID "+
		"WHERE m.LOCK_MODE IN ('MDL_SHARED_NO_READ_WRITE', 'MDL_SHARED_READ_ONLY', 'MDL_SHARED_NO_WRITE') LIMIT "+strconv.Itoa(maxLongWrites))
	if err != nil {
		return nil, fmt.Errorf("metadata locks: %w", err)
	}
	for _, r := range rows {
		id, _ := strconv.ParseInt(r["ID"], 10, 64)
		if !seen[id] {
			seen[id] = true
			add(id, "lock tables", msDuration(r["TIME_MS"]), r["INFO"])
		}
	}
	return out, nil
}

func msDuration(s string) time.Duration {
	f, _ := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Millisecond))
}

// longWrites implements Servers.LongWrites.
func (c *Client) longWrites(ctx context.Context, addr string, older time.Duration) (*LongWrites, error) {
	var lw *LongWrites
	err := c.withSession(ctx, addr, func(q Querier) error {
		server, err := queryString(ctx, q, "SELECT "+serverIdentity)
		if err != nil {
			return err
		}
		lw, err = readLongWrites(ctx, q, older, c.own.on(server))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: long writes: %w", addr, err)
	}
	return lw, nil
}

// killSessionIDs implements Servers.KillSessions: KILL CONNECTION each id; a session that ended meanwhile is not an
// error.
func (c *Client) killSessionIDs(ctx context.Context, addr string, ids []int64) error {
	return c.withSession(ctx, addr, func(q Querier) error {
		for _, id := range ids {
			if _, err := q.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(id, 10)); err != nil {
				var me *mysql.MySQLError
				if errors.As(err, &me) && me.Number == 1094 { // unknown thread: it ended by itself
					continue
				}
				return fmt.Errorf("%s: kill %d: %w", addr, id, err)
			}
		}
		return nil
	})
}

// checkLongWrites is the preflight check: it fails (ErrLongWrites) for what LongWrites finds on X, unless kill
// (the plan then kills them right before read_only=1).
func checkLongWrites(ctx context.Context, l *checklist, s Servers, X string, older time.Duration, kill bool) (warn string) {
	const name = "no long writes"
	lw, err := settledLongWrites(ctx, s, X, older)
	if err != nil {
		l.fail(name, ErrUnreachable, err.Error())
		return ""
	}
	if !lw.LockInfo {
		warn = fmt.Sprintf("LOCK TABLES sessions on %s cannot be seen without the metadata_lock_info plugin (INSTALL SONAME "+
			"'metadata_lock_info'): one would hold read_only=1 for up to --max-window, then the switchover rolls back", X)
	}
	switch {
	case len(lw.Sessions) == 0:
		l.pass(name, "no write running or uncommitted for %v or more on %s, no LOCK TABLES seen", older, X)
	case kill:
		l.pass(name, "will be killed right before read_only=1 (--kill-long-writes): %s", lw)
	default:
		l.fail(name, ErrLongWrites, fmt.Sprintf("%s on %s would make read_only=1 wait and every write queue behind it: %s "+
			"(wait for them, or --kill-long-writes)", plural(len(lw.Sessions), "session"), X, lw))
	}
	return warn
}

// longWritesRecheck is how long settledLongWrites waits before its second look.
const longWritesRecheck = 250 * time.Millisecond

// settledLongWrites is LongWrites on X, counting only what is still there at a second look longWritesRecheck
// later: the same session, the same kind, and for a statement or a transaction one at least as old (so the same
// statement or transaction, not the next one of a pooled connection). A one-row commit that stalls just past
// the bound on a loaded server is then not a long write (it once took 1.009 s against the 1 s default and
// refused a switchover); a write that holds on is. The second look is taken only when the first found any.
func settledLongWrites(ctx context.Context, s Servers, X string, older time.Duration) (*LongWrites, error) {
	first, err := s.LongWrites(ctx, X, older)
	if err != nil || len(first.Sessions) == 0 {
		return first, err
	}
	if err := ctxwait.Sleep(ctx, longWritesRecheck); err != nil {
		return nil, err
	}
	again, err := s.LongWrites(ctx, X, older)
	if err != nil {
		return nil, err
	}
	seen := make(map[int64]LongWrite, len(first.Sessions))
	for _, w := range first.Sessions {
		seen[w.ID] = w
	}
	kept := again.Sessions[:0:0]
	for _, w := range again.Sessions {
		if f, ok := seen[w.ID]; ok && f.What == w.What && (w.What == "lock tables" || w.Age >= f.Age) {
			kept = append(kept, w)
		}
	}
	return &LongWrites{Sessions: kept, LockInfo: again.LockInfo}, nil
}

// longWritesStep looks for long writes on X again right before read_only=1: it fails (nothing it changed) when it
// finds any, or, with kill, kills them (KILL CONNECTION: their transactions roll back; nothing to undo).
func longWritesStep(s Servers, X string, older time.Duration, kill bool) *Step {
	var killed []string
	var mu sync.Mutex
	what := "fail (rolling back) if any is found"
	if kill {
		what = "KILL CONNECTION each (--kill-long-writes; their transactions roll back)"
	}
	st := &Step{
		Name: "long-writes", Instance: X, ReadsOnly: !kill,
		Description: fmt.Sprintf("look on %s for write statements running %v or more, open transactions that wrote %v or more ago, and "+
			"LOCK TABLES sessions (which would make read_only=1 wait and every write queue behind it); %s", X, older, older, what),
		Detail: func() string {
			mu.Lock()
			defer mu.Unlock()
			return "killed: " + orNone(strings.Join(killed, "; "))
		},
		Do: func(ctx context.Context) error {
			lw, err := settledLongWrites(ctx, s, X, older)
			if err != nil {
				return err
			}
			if len(lw.Sessions) == 0 {
				return nil
			}
			if !kill {
				return fmt.Errorf("%w: %s: %s", ErrLongWrites, X, lw)
			}
			ids := make([]int64, len(lw.Sessions))
			for k, l := range lw.Sessions {
				ids[k] = l.ID
			}
			if err := s.KillSessions(ctx, X, ids); err != nil {
				return err
			}
			mu.Lock()
			for _, l := range lw.Sessions {
				killed = append(killed, l.String())
			}
			mu.Unlock()
			return nil
		},
	}
	return st
}

// undelayStep removes the MASTER_DELAY of Y, a delayed candidate the operator named (SwitchoverOptions.
// DelayedCandidate), so that the catch-up applies what it held back; the undo puts delay back.
func undelayStep(s Servers, Y, master string, delay int) *Step {
	restart := func(ctx context.Context, d int) error {
		if err := s.Exec(ctx, Y, "STOP SLAVE", "CHANGE MASTER TO MASTER_DELAY="+strconv.Itoa(d), "START SLAVE"); err != nil {
			return err
		}
		return waitReplicating(ctx, s, Y, master, 10*time.Second)
	}
	return &Step{
		Name: "undelay-candidate", Instance: Y,
		Description: fmt.Sprintf("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=0; START SLAVE on %s (it applied with MASTER_DELAY=%d; "+
			"named as a delayed candidate); wait (up to 10s) until both threads run", Y, delay),
		UndoText: fmt.Sprintf("STOP SLAVE; CHANGE MASTER TO MASTER_DELAY=%d; START SLAVE on %s", delay, Y),
		Do:       func(ctx context.Context) error { return restart(ctx, 0) },
		Undo:     func(ctx context.Context) error { return restart(ctx, delay) },
	}
}
