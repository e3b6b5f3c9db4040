package dbstate

import (
	"context"
	"fmt"
	"time"

	"github.com/evenkeel/evenkeel/internal/ctxwait"
)

// InstanceReader reads one instance by address; Discover needs nothing else. *Client implements it.
type InstanceReader interface {
	// ReadInstance reads the instance at addr (host:port or socket path); errors go into Instance.Error.
	ReadInstance(ctx context.Context, addr string) *Instance
}

// Servers is what planning and the steps of a plan need of the servers, by instance address: a few reads and
// statements. *Client implements it against live servers; the tests of single steps use a small fake. Every
// method names the address in its errors.
type Servers interface {
	InstanceReader
	// Vars reads the server variables dbstate uses (read_only, GTID positions, ...).
	Vars(ctx context.Context, addr string) (*Vars, error)
	// ReplicaStatus is SHOW SLAVE STATUS; nil, nil when addr replicates from no one.
	ReplicaStatus(ctx context.Context, addr string) (*ReplicaStatus, error)
	// Exec runs plain statements (no secrets in them) in one session, in order, up to the first error.
	Exec(ctx context.Context, addr string, stmts ...string) error
	// ChangeMaster runs STOP SLAVE, cm and, if start, START SLAVE.
	ChangeMaster(ctx context.Context, addr string, cm ChangeMaster, start bool) error
	// WaitApplied waits (MASTER_GTID_WAIT) until addr applied pos: ErrWaitTimeout (wrapped) after timeout.
	WaitApplied(ctx context.Context, addr string, pos Position, timeout time.Duration) error
	// Writers finds the connected accounts on addr that write through read_only (see FenceInfo).
	Writers(ctx context.Context, addr string, neverLock []Account) (*FenceInfo, error)
	// SetAccountsLocked locks or unlocks accounts on addr only (sql_log_bin=0); done receives each account once
	// its statement succeeded.
	SetAccountsLocked(ctx context.Context, addr string, accounts []Account, lock bool, done func(Account)) error
	// KillClientSessions kills every client session on addr but the caller's own, replicas' binlog dumps and
	// server threads, and waits (up to wait) until they are gone. It returns how many it killed.
	KillClientSessions(ctx context.Context, addr string, wait time.Duration) (int, error)
	// LongWrites finds the sessions on addr that would make read_only=1 wait: write statements running for older
	// or more, open transactions that wrote older or more ago, and LOCK TABLES sessions (see LongWrites).
	LongWrites(ctx context.Context, addr string, older time.Duration) (*LongWrites, error)
	// KillSessions kills the sessions ids on addr (KILL CONNECTION); one that already ended is no error.
	KillSessions(ctx context.Context, addr string, ids []int64) error
	// KillUserSessions kills the client sessions of users on addr (not dbstate's own connections) and waits (up
	// to wait) until they are gone. It returns how many it killed.
	KillUserSessions(ctx context.Context, addr string, users []string, wait time.Duration) (int, error)
	// LockOwnAccount locks dbstate's own account on addr only (sql_log_bin=0) and kills the other sessions of
	// its user there; connections it logs in first serve the rest of the run there, until SetAccountsLocked
	// unlocks the account (the last of them is kept for that). It returns how many sessions it killed.
	LockOwnAccount(ctx context.Context, addr string, own Account) (int, error)
	// Events reads the scheduled events that are ENABLED on addr.
	Events(ctx context.Context, addr string) ([]Event, error)
	// SetEventsEnabled enables (ALTER EVENT ... ENABLE) or stops (DISABLE ON SLAVE) events on addr, keeping each
	// definer, without binary logging when local; done receives each event once its statement succeeded.
	SetEventsEnabled(ctx context.Context, addr string, events []Event, enable, local bool, done func(Event)) error
	// Privileges reads what dbstate's account holds on addr (see Privileges).
	Privileges(ctx context.Context, addr string) (*Privileges, error)
	// LoginPrivileges logs in to addr with other credentials (the replication account's) and reads what that
	// account holds there: a wrong password fails here.
	LoginPrivileges(ctx context.Context, addr string, creds Credentials) (*Privileges, error)
	// Credentials are the login used for every instance (the default replication credentials).
	Credentials() Credentials
}

var (
	_ Servers        = (*Client)(nil)
	_ InstanceReader = (*Client)(nil)
)

// Vars implements Servers.
func (c *Client) Vars(ctx context.Context, addr string) (*Vars, error) { return c.vars(ctx, addr) }

// ReplicaStatus implements Servers.
func (c *Client) ReplicaStatus(ctx context.Context, addr string) (*ReplicaStatus, error) {
	return c.replicaStatus(ctx, addr)
}

// Exec implements Servers.
func (c *Client) Exec(ctx context.Context, addr string, stmts ...string) error {
	return c.exec(ctx, addr, stmts...)
}

// ChangeMaster implements Servers.
func (c *Client) ChangeMaster(ctx context.Context, addr string, cm ChangeMaster, start bool) error {
	return c.changeMaster(ctx, addr, cm, start)
}

// WaitApplied implements Servers.
func (c *Client) WaitApplied(ctx context.Context, addr string, pos Position, timeout time.Duration) error {
	return c.waitFor(ctx, addr, pos, timeout)
}

// Writers implements Servers.
func (c *Client) Writers(ctx context.Context, addr string, neverLock []Account) (*FenceInfo, error) {
	return c.detectFence(ctx, addr, neverLock)
}

// SetAccountsLocked implements Servers.
func (c *Client) SetAccountsLocked(ctx context.Context, addr string, accounts []Account, lock bool, done func(Account)) error {
	return c.setAccountsLocked(ctx, addr, accounts, lock, done)
}

// KillClientSessions implements Servers.
func (c *Client) KillClientSessions(ctx context.Context, addr string, wait time.Duration) (int, error) {
	return c.killClientSessions(ctx, addr, wait)
}

// KillUserSessions implements Servers.
func (c *Client) KillUserSessions(ctx context.Context, addr string, users []string, wait time.Duration) (int, error) {
	if len(users) == 0 {
		return 0, nil
	}
	return c.killSessions(ctx, addr, users, true, wait)
}

// LockOwnAccount implements Servers.
func (c *Client) LockOwnAccount(ctx context.Context, addr string, own Account) (int, error) {
	return c.lockOwnAccount(ctx, addr, own)
}

// Events implements Servers.
func (c *Client) Events(ctx context.Context, addr string) ([]Event, error) {
	return c.enabledEvents(ctx, addr)
}

// SetEventsEnabled implements Servers.
func (c *Client) SetEventsEnabled(ctx context.Context, addr string, events []Event, enable, local bool, done func(Event)) error {
	return c.setEventsEnabled(ctx, addr, events, enable, local, done)
}

// waitLogged polls addr (every 10 ms, up to timeout) until its gtid_binlog_pos contains pos, compared per domain
// in Go. Unlike MASTER_GTID_WAIT, which waits on gtid_slave_pos only, it also works on a root primary, whose
// gtid_slave_pos never moves with its own writes. gtid_binlog_pos is what addr can serve to a replica.
func waitLogged(ctx context.Context, s Servers, addr string, pos Position, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := s.Vars(ctx, addr)
		if err != nil {
			return err
		}
		if v.GTIDBinlogPos.Contains(pos) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w %s after %v (it logged %s)", addr, ErrWaitTimeout, pos, timeout, v.GTIDBinlogPos)
		}
		if err := ctxwait.Sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// waitReplicating waits until addr's replication threads both run with master master, or fails after timeout
// with the last status.
func waitReplicating(ctx context.Context, s Servers, addr, master string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.ReplicaStatus(ctx, addr)
		if err == nil && st != nil && st.Healthy() && st.MasterAddr() == master {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			if st == nil {
				return fmt.Errorf("%s: not a replica", addr)
			}
			return fmt.Errorf("%s: replication from %s not running after %v: io=%s sql=%s %s %s", addr, st.MasterAddr(),
				timeout, st.IORunning, st.SQLRunning, st.LastIOError, st.LastSQLError)
		}
		if err := ctxwait.Sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// LongWrites implements Servers.
func (c *Client) LongWrites(ctx context.Context, addr string, older time.Duration) (*LongWrites, error) {
	return c.longWrites(ctx, addr, older)
}

// KillSessions implements Servers.
func (c *Client) KillSessions(ctx context.Context, addr string, ids []int64) error {
	return c.killSessionIDs(ctx, addr, ids)
}
