package dbstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Account is a MariaDB account, user@host.
type Account struct {
	User string `json:"user"`
	Host string `json:"host"`
}

func (a Account) String() string { return "'" + a.User + "'@'" + a.Host + "'" }

func (a Account) sql() (string, error) {
	u, err := QuoteString(a.User)
	if err != nil {
		return "", err
	}
	h, err := QuoteString(a.Host)
	if err != nil {
		return "", err
	}
	return u + "@" + h, nil
}

// Session is one row of the process list.
type Session struct {
	ID      int64
	User    string
	Host    string
	Command string
}

// ParseAccount splits CURRENT_USER() output, "user@host", at the last @.
func ParseAccount(s string) (Account, error) {
	k := strings.LastIndexByte(s, '@')
	if k < 0 {
		return Account{}, fmt.Errorf("%w account %q", ErrParse, s)
	}
	return Account{User: s[:k], Host: s[k+1:]}, nil
}

// isClientSession reports whether a process-list row is a client connection that a switchover must end (not a
// server thread, not a replica's binlog dump). Server threads are told by what they do and by their empty host,
// never by their user name alone: an account may be named 'system user', 'event_scheduler' or 'unauthenticated
// user', and a client that logs in with an empty user name (an anonymous account) shows as "".
func isClientSession(s Session, self int64) bool {
	switch {
	case s.ID == self:
		return false
	case strings.HasPrefix(s.Command, "Binlog Dump"), s.Command == "Daemon", strings.HasPrefix(s.Command, "Slave_"):
		return false // replicas' binlog dumps, the event scheduler, InnoDB's and replication's threads
	case s.Host == "":
		return false // a server thread ("system user"): every client session has a host
	case s.User == "unauthenticated user" && s.Command == "Connect":
		return false // still in its handshake: see killIn
	}
	return true
}

// FencedUsers is pure: the user names with client sessions (other than the session self), whose accounts must be
// looked at for privileges that write through read_only. The process list shows a session's user name and client
// host, not the account (user@host pattern) it logged in through: every account of these users is a candidate.
func FencedUsers(sessions []Session, self int64) []string {
	set := map[string]bool{}
	for _, s := range sessions {
		if isClientSession(s, self) {
			set[s.User] = true
		}
	}
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	sort.Strings(out)
	return out
}

// FenceInfo is what fencing found on one instance: who is connected that writes through read_only.
type FenceInfo struct {
	Self     Account   `json:"self"`     // dbstate's own account
	Accounts []Account `json:"accounts"` // accounts of connected users that write through read_only, to lock
	// Shared counts sessions of dbstate's own user, not dbstate's own connections, while its account bypasses
	// read_only.
	Shared   int       `json:"shared"`
	Unlocked []Account `json:"unlocked"` // accounts of connected users that write through read_only but are never locked (NeverLock)
	// Idle are the other accounts that write through read_only, with no session now: they are locked too, since
	// they can log in at any time.
	Idle []Account `json:"idle"`
	// OwnBypasses: dbstate's own account writes through read_only and is not a NeverLock account. Another
	// process that logs in with it writes through read_only like any other, so a switchover locks it on the old
	// primary too, at promotion, and on the candidate and the replicas with the other accounts (connections
	// logged in first survive the lock and do the rest of the run, see LockOwnAccount).
	OwnBypasses bool `json:"own_bypasses"`
	// NeverLocked are the NeverLock accounts that write through read_only, connected or not.
	NeverLocked []Account `json:"never_locked,omitempty"`
	// Locked are the accounts that write through read_only and are locked already (by someone else): a fence
	// leaves them alone, so that its undo does not unlock them.
	Locked []Account `json:"locked,omitempty"`
}

// maxFenceAccounts bounds the accounts fencing looks at on one instance.
const maxFenceAccounts = 10_000

// toLock is every account the fence locks: the connected ones first, then the idle ones.
func (fi *FenceInfo) toLock() []Account { return mergeAccounts(fi.Accounts, fi.Idle) }

// lockNow is what a fence step locks on the instance fi was read from now: the accounts planned (found at
// planning, perhaps on another instance) and those to lock there now, but dbstate's own (locked apart, see
// LockOwnAccount) and those locked there already (whose lock the step's undo must not lift).
func (fi *FenceInfo) lockNow(planned []Account) []Account {
	return slices.DeleteFunc(mergeAccounts(planned, fi.toLock()), func(a Account) bool {
		return a == fi.Self || slices.Contains(fi.Locked, a)
	})
}

// writers names everything that could write through read_only: the accounts to lock, the NeverLock accounts, and
// other sessions of dbstate's own user. "" when there is none.
func (fi *FenceInfo) writers() string {
	var parts []string
	for _, a := range fi.Accounts {
		parts = append(parts, a.String())
	}
	for _, a := range fi.Unlocked {
		parts = append(parts, a.String()+" (never locked)")
	}
	if fi.Shared > 0 {
		parts = append(parts, fmt.Sprintf("%d sessions of dbstate's own user besides dbstate's (its account %s cannot be locked)", fi.Shared, fi.Self))
	}
	return strings.Join(parts, ", ")
}

// readSessions reads the process list, the connection id of the reading session and the server's identity.
func readSessions(ctx context.Context, q Querier) ([]Session, int64, string, error) {
	rows, err := queryRows(ctx, q, "SELECT ID, USER, HOST, COMMAND, CONNECTION_ID() AS SELF, "+serverIdentity+
		" AS SERVER FROM information_schema.PROCESSLIST")
	if err != nil {
		return nil, 0, "", fmt.Errorf("process list: %w", err)
	}
	var out []Session
	var self int64
	var server string
	for _, r := range rows {
		id, err := strconv.ParseInt(r["ID"], 10, 64)
		if err != nil {
			return nil, 0, "", fmt.Errorf("%w process list id %q", ErrParse, r["ID"])
		}
		self, _ = strconv.ParseInt(r["SELF"], 10, 64)
		server = r["SERVER"]
		out = append(out, Session{ID: id, User: r["USER"], Host: r["HOST"], Command: r["COMMAND"]})
	}
	return out, self, server, nil
}

// detectFence finds, on addr, every account of mysql.global_priv that bypasses read_only (READ ONLY ADMIN or ALL
// PRIVILEGES on *.*, directly or through a role), whatever its name ('system user', anonymous ”@host...). Those
// of users with a client session other than dbstate's own connections go to Accounts (the process list cannot
// tell which account a session logged in through: with name resolution, a client at 127.0.0.1 shows as
// "localhost"), the others to Idle. Accounts already locked are left out; dbstate's own account is counted in
// shared, connected NeverLock accounts in unlocked.
func (c *Client) detectFence(ctx context.Context, addr string, neverLock []Account) (*FenceInfo, error) {
	fi := &FenceInfo{}
	// statementSession: account names are quoted for SHOW GRANTS, whatever the server's sql_mode.
	err := c.statementSession(ctx, addr, false, func(q Querier) error {
		cur, err := queryString(ctx, q, "SELECT CURRENT_USER()")
		if err != nil {
			return err
		}
		if fi.Self, err = ParseAccount(cur); err != nil {
			return err
		}
		sessions, self, server, err := readSessions(ctx, q)
		if err != nil {
			return err
		}
		own := c.own.on(server)
		var others []Session // client sessions that are not dbstate's own connections
		for _, s := range sessions {
			if isClientSession(s, self) && !own[s.ID] {
				others = append(others, s)
			}
		}
		connected := map[string]bool{}
		for _, user := range FencedUsers(others, self) {
			connected[user] = true
		}
		// Every account, connected or not: a writer that opens a connection per write is rarely in the process
		// list, and any account that bypasses read_only can log in to the demoted primary later. Host '' rows are
		// roles, not accounts one logs in through.
		rows, err := queryRows(ctx, q, fmt.Sprintf("SELECT User, Host, IFNULL(JSON_VALUE(Priv, '$.account_locked'), 'false') AS locked "+
			"FROM mysql.global_priv WHERE Host <> '' ORDER BY User, Host LIMIT %d", maxFenceAccounts+1))
		if err != nil {
			return fmt.Errorf("read accounts: %w", err)
		}
		if len(rows) > maxFenceAccounts {
			return fmt.Errorf("more than %d accounts to look at", maxFenceAccounts)
		}
		for _, r := range rows {
			a := Account{User: r["User"], Host: r["Host"]}
			bypass, err := accountBypasses(ctx, q, a)
			if err != nil {
				return err
			}
			if !bypass {
				continue
			}
			switch {
			case a == fi.Self:
				fi.OwnBypasses = !slices.Contains(neverLock, a)
				for _, s := range others {
					if s.User == a.User {
						fi.Shared++
					}
				}
			case r["locked"] == "true" || r["locked"] == "1":
				fi.Locked = append(fi.Locked, a)
			case slices.Contains(neverLock, a):
				fi.NeverLocked = append(fi.NeverLocked, a)
				if connected[a.User] {
					fi.Unlocked = append(fi.Unlocked, a)
				}
			case connected[a.User]:
				fi.Accounts = append(fi.Accounts, a)
			default:
				fi.Idle = append(fi.Idle, a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: detect writers that bypass read_only: %w", addr, err)
	}
	return fi, nil
}

// accountBypasses reports whether an account, directly or through a granted role (followed to a depth of 8),
// holds a privilege that writes through read_only. Granted roles count whether or not they are the default role:
// a session can SET ROLE at any time.
func accountBypasses(ctx context.Context, q Querier, a Account) (bool, error) {
	acc, err := a.sql()
	if err != nil {
		return false, err
	}
	return grantsBypass(ctx, q, acc, a.String(), map[string]bool{}, 0)
}

func grantsBypass(ctx context.Context, q Querier, forSQL, name string, seen map[string]bool, depth int) (bool, error) {
	if depth > 8 || seen[forSQL] {
		return false, nil
	}
	seen[forSQL] = true
	rows, err := queryRows(ctx, q, "SHOW GRANTS FOR "+forSQL)
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1141 || me.Number == 1959) { // no such grant/role: dropped meanwhile
			return false, nil
		}
		return false, fmt.Errorf("show grants for %s: %w", name, err)
	}
	var roles []string
	for _, r := range rows {
		for _, line := range r {
			// A line that does not parse fails the check: the fence never assumes an account is harmless.
			g, err := ParseGrantLine(line)
			if err != nil {
				return false, fmt.Errorf("show grants for %s: cannot tell whether it writes through read_only: %w", name, err)
			}
			if g.BypassesReadOnly() {
				return true, nil
			}
			if g.Kind == LineRole {
				roles = append(roles, g.Role)
			}
		}
	}
	for _, role := range roles {
		rq, err := QuoteString(role)
		if err != nil {
			continue
		}
		if ok, err := grantsBypass(ctx, q, rq, role, seen, depth+1); ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

// setAccountsLocked locks or unlocks accounts on addr without binary logging (the change is local to addr).
// done receives each account once its statement succeeded.
func (c *Client) setAccountsLocked(ctx context.Context, addr string, accounts []Account, lock bool, done func(Account)) error {
	if len(accounts) == 0 {
		return nil
	}
	verb := "UNLOCK"
	if lock {
		verb = "LOCK"
	}
	own, unlockOwn := c.heldOwn(addr, accounts)
	if unlockOwn = unlockOwn && !lock; unlockOwn {
		ctx = forUnlock(ctx) // the reserve's last connection is kept for this
		// dbstate's own first: once it is unlocked, a failure on another account leaves dbstate able to log in.
		accounts = append([]Account{own}, slices.DeleteFunc(slices.Clone(accounts), func(b Account) bool { return b == own })...)
	}
	return c.statementSession(ctx, addr, true, func(q Querier) error {
		for _, a := range accounts {
			acc, err := a.sql()
			if err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, "ALTER USER "+acc+" ACCOUNT "+verb); err != nil {
				return fmt.Errorf("%s: ALTER USER %s ACCOUNT %s: %w", addr, a, verb, err)
			}
			if unlockOwn && a == own {
				c.unheld(addr)
			}
			if done != nil {
				done(a)
			}
		}
		return nil
	})
}

// killClientSessions kills every client session on addr except the killer's own, replicas' binlog dumps and
// server threads, and waits (up to wait) until they are gone. It returns how many it killed.
func (c *Client) killClientSessions(ctx context.Context, addr string, wait time.Duration) (int, error) {
	return c.killSessions(ctx, addr, nil, false, wait)
}

// killSessions kills the client sessions on addr that match: of users only (all users when users is nil), and,
// with spareOwn, none of dbstate's own connections (whose login may be locked by then: a new one would fail).
// It waits (up to wait) until they are gone and returns how many it killed.
func (c *Client) killSessions(ctx context.Context, addr string, users []string, spareOwn bool, wait time.Duration) (int, error) {
	var n int
	err := c.withSession(ctx, addr, func(q Querier) (err error) {
		n, err = c.killIn(ctx, q, users, spareOwn, wait)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("%s: %w", addr, err)
	}
	return n, nil
}

// killIn is killSessions on the session q.
func (c *Client) killIn(ctx context.Context, q Querier, users []string, spareOwn bool, wait time.Duration) (int, error) {
	n := 0
	err := func() error {
		sessions, self, server, err := readSessions(ctx, q)
		if err != nil {
			return err
		}
		own := map[int64]bool{}
		if spareOwn {
			own = c.own.on(server)
		}
		killed := map[int64]bool{}
		for _, s := range sessions {
			// A connection still in its handshake shows as "unauthenticated user": it goes too, whoever it is
			// for, since it may finish logging in as one of users (its account checked before the lock) once
			// this list was read, and write through read_only. At 500 writes/s with dbstate's own login, one
			// did, on the old primary right before the promotion (a split in the split matrix).
			handshake := s.User == "unauthenticated user" && s.ID != self
			if !handshake && (!isClientSession(s, self) || own[s.ID] || (users != nil && !slices.Contains(users, s.User))) {
				continue
			}
			if _, err := q.ExecContext(ctx, "KILL CONNECTION "+strconv.FormatInt(s.ID, 10)); err != nil {
				var me *mysql.MySQLError
				if errors.As(err, &me) && me.Number == 1094 { // unknown thread: it ended by itself
					continue
				}
				return fmt.Errorf("kill %d (%s): %w", s.ID, s.User, err)
			}
			killed[s.ID] = true
			n++
		}
		deadline := time.Now().Add(wait)
		for {
			sessions, _, _, err := readSessions(ctx, q)
			if err != nil {
				return err
			}
			left := 0
			for _, s := range sessions {
				if killed[s.ID] {
					left++
				}
			}
			if left == 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%d killed sessions still present after %v", left, wait)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return n, err
}

// ownReserve is how many connections lockOwnAccount logs in ahead on an instance where it locks dbstate's own
// account (Client.holdLogins): enough for the rest of a switchover there while the lock holds (the candidate,
// from fence-candidate to the promotion: the final wait's two sessions, promote's two statements, the unlock;
// a replica: the verify reads and the unlock; the old primary: the last reads, CHANGE MASTER, an undo), with
// room for a dropped one. The last is kept for the unlock.
const ownReserve = 6

// lockOwnAccount locks dbstate's own account a on addr only (sql_log_bin=0) and kills the other sessions of its
// user there, but not dbstate's own connections: it first logs in ownReserve of them into the pool's reserve
// (holdLogins), which survive the lock (MariaDB checks the lock at login only) and serve the rest of the run
// until setAccountsLocked unlocks it there. It returns how many sessions it killed.
func (c *Client) lockOwnAccount(ctx context.Context, addr string, a Account) (int, error) {
	acc, err := a.sql()
	if err != nil {
		return 0, err
	}
	if _, err := c.holdLogins(ctx, addr, ownReserve); err != nil {
		return 0, fmt.Errorf("%s: %w", addr, err) // fewer than ownReserve: the lock still holds
	}
	c.mu.Lock()
	c.held[addr] = a
	c.mu.Unlock()
	// One session for the lock and the kills.
	var n int
	err = c.statementSession(ctx, addr, true, func(q Querier) error {
		if _, err := q.ExecContext(ctx, "ALTER USER "+acc+" ACCOUNT LOCK"); err != nil {
			return fmt.Errorf("ALTER USER %s ACCOUNT LOCK: %w", a, err)
		}
		n, err = c.killIn(ctx, q, []string{a.User}, true, 5*time.Second)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("%s: %w", addr, err)
	}
	return n, nil
}

// heldOwn reports whether accounts include dbstate's own account where this client locked it on addr.
func (c *Client) heldOwn(addr string, accounts []Account) (Account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.held[addr]
	return a, ok && slices.Contains(accounts, a)
}

// unheld closes addr's login reserve once dbstate's own account is unlocked there.
func (c *Client) unheld(addr string) {
	c.mu.Lock()
	delete(c.held, addr)
	c.mu.Unlock()
	used, held := c.releaseLogins(addr)
	c.log.Debug("login reserve released", "instance", addr, "used", used, "held", held)
}
