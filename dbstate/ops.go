package dbstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidValue is returned (wrapped) when a value cannot be put safely into a statement (a replication statement,
// a name or string in an account statement).
var ErrInvalidValue = errors.New("invalid value for a statement")

// QuoteString returns s as a single-quoted SQL string literal: quotes and backslashes doubled or escaped. It
// is meant for sessions without NO_BACKSLASH_ESCAPES (dbstate clears that mode on its statement sessions).
// Strings with NUL bytes or that are not valid UTF-8 are refused: the server would cut or reject them, and a
// literal that the server reads differently from what was meant could change the meaning of a statement.
func QuoteString(s string) (string, error) {
	if err := checkLiteral(s); err != nil {
		return "", err
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'", nil
}

// QuoteIdent returns s as a backquoted SQL identifier (a user, host, role, database, table or column name), with
// backquotes doubled. Inside backquotes the server takes every other byte literally whatever the sql_mode
// (backslashes included; ANSI_QUOTES concerns double quotes only), so the name reaches the server exactly.
// Empty names, NUL bytes and invalid UTF-8 are refused.
func QuoteIdent(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty name", ErrInvalidValue)
	}
	if err := checkLiteral(s); err != nil {
		return "", err
	}
	return "`" + strings.ReplaceAll(s, "`", "``") + "`", nil
}

func checkLiteral(s string) error {
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("%w: NUL byte", ErrInvalidValue)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidValue)
	}
	return nil
}

// validHost accepts host names, IPv4 and IPv6 addresses.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, r := range h {
		if !(r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-_:", r))) {
			return false
		}
	}
	return true
}

// ChangeMaster is a CHANGE MASTER TO statement. Empty User and Password keep the server's current values. It
// prints (%v, %s, %+v, %#v, slog, JSON) without the password.
type ChangeMaster struct {
	Host          string
	Port          int
	User          string
	Password      string `json:"-"`
	DemoteToSlave bool   // MASTER_DEMOTE_TO_SLAVE=1 (MariaDB 10.10 and later)
	// CurrentPos is MASTER_USE_GTID=current_pos instead of slave_pos: what a login without READ ONLY ADMIN can
	// send to a read-only demoted primary, where MariaDB 10.11 refuses it MASTER_DEMOTE_TO_SLAVE and SET GLOBAL
	// gtid_slave_pos (error 1290, measured).
	CurrentPos   bool
	ConnectRetry int // seconds; 0 keeps the current value
	// Delay is MASTER_DELAY in seconds, for a delayed replica that must stay delayed; 0 keeps the current value.
	Delay int
}

// SQL builds the validated literal statement: MASTER_USE_GTID=slave_pos (current_pos with CurrentPos).
func (c ChangeMaster) SQL() (string, error) { return c.build(false) }

// String is the redacted statement (see Redacted).
func (c ChangeMaster) String() string { return c.Redacted() }

// GoString keeps the password out of %#v.
func (c ChangeMaster) GoString() string {
	return fmt.Sprintf("dbstate.ChangeMaster{Host:%q, Port:%d, User:%q, Password:%s, DemoteToSlave:%v, CurrentPos:%v, ConnectRetry:%d, Delay:%d}",
		c.Host, c.Port, c.User, redactedLiteral(c.Password), c.DemoteToSlave, c.CurrentPos, c.ConnectRetry, c.Delay)
}

// LogValue keeps the password out of slog output.
func (c ChangeMaster) LogValue() slog.Value { return slog.StringValue(c.Redacted()) }

// Redacted is the statement as it may be printed: the password replaced by <redacted>.
func (c ChangeMaster) Redacted() string {
	s, err := c.build(true)
	if err != nil {
		return "invalid CHANGE MASTER: " + err.Error()
	}
	return s
}

func (c ChangeMaster) build(redact bool) (string, error) {
	if !validHost(c.Host) {
		return "", fmt.Errorf("%w: host %q", ErrInvalidValue, c.Host)
	}
	if c.Port <= 0 || c.Port > 65535 {
		return "", fmt.Errorf("%w: port %d", ErrInvalidValue, c.Port)
	}
	host, _ := QuoteString(c.Host)
	parts := []string{"MASTER_HOST=" + host, "MASTER_PORT=" + strconv.Itoa(c.Port)}
	if c.User != "" {
		if len(c.User) > 128 || strings.IndexFunc(c.User, unicode.IsControl) >= 0 {
			return "", fmt.Errorf("%w: user name", ErrInvalidValue)
		}
		u, _ := QuoteString(c.User)
		parts = append(parts, "MASTER_USER="+u)
	}
	if c.Password != "" {
		p, err := QuoteString(c.Password)
		if err != nil {
			return "", fmt.Errorf("%w: password", ErrInvalidValue) // never show it
		}
		if redact {
			p = "<redacted>"
		}
		parts = append(parts, "MASTER_PASSWORD="+p)
	}
	if c.ConnectRetry > 0 {
		parts = append(parts, "MASTER_CONNECT_RETRY="+strconv.Itoa(c.ConnectRetry))
	}
	if c.Delay < 0 || c.Delay > 1<<31-1 {
		return "", fmt.Errorf("%w: delay %d", ErrInvalidValue, c.Delay)
	}
	if c.Delay > 0 {
		parts = append(parts, "MASTER_DELAY="+strconv.Itoa(c.Delay))
	}
	if c.CurrentPos {
		parts = append(parts, "MASTER_USE_GTID=current_pos")
	} else {
		parts = append(parts, "MASTER_USE_GTID=slave_pos")
	}
	if c.DemoteToSlave {
		parts = append(parts, "MASTER_DEMOTE_TO_SLAVE=1")
	}
	return "CHANGE MASTER TO " + strings.Join(parts, ", "), nil
}

// statementSession runs statements on a dedicated connection (discarded afterwards) with NO_BACKSLASH_ESCAPES
// cleared and, when local is true, sql_log_bin=0 so nothing reaches the binary log.
func (c *Client) statementSession(ctx context.Context, addr string, local bool, f func(q Querier) error) error {
	return c.withSession(ctx, addr, func(q Querier) error {
		setup := []string{"SET SESSION sql_mode=REPLACE(@@sql_mode, 'NO_BACKSLASH_ESCAPES', '')"}
		if local {
			setup = append(setup, "SET SESSION sql_log_bin=0")
		}
		for _, s := range setup {
			if _, err := q.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
		}
		return f(q)
	})
}

// exec runs plain statements (no secrets in them) on addr.
func (c *Client) exec(ctx context.Context, addr string, stmts ...string) error {
	return c.statementSession(ctx, addr, false, func(q Querier) error {
		for _, s := range stmts {
			if _, err := q.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%s: %s: %w", addr, s, err)
			}
		}
		return nil
	})
}

// changeMaster runs STOP SLAVE, CHANGE MASTER and, if start, START SLAVE on addr. Errors name the redacted
// statement, never the password.
func (c *Client) changeMaster(ctx context.Context, addr string, cm ChangeMaster, start bool) error {
	stmt, err := cm.SQL()
	if err != nil {
		return err
	}
	return c.statementSession(ctx, addr, false, func(q Querier) error {
		if _, err := q.ExecContext(ctx, "STOP SLAVE"); err != nil {
			return fmt.Errorf("%s: STOP SLAVE: %w", addr, err)
		}
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %s: %w", addr, cm.Redacted(), scrub(err, cm.Password))
		}
		if start {
			if _, err := q.ExecContext(ctx, "START SLAVE"); err != nil {
				return fmt.Errorf("%s: START SLAVE: %w", addr, err)
			}
		}
		return nil
	})
}

// scrub removes a secret from an error message, in case a server echoes the statement back.
func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "<redacted>"))
}

// ErrWaitTimeout is returned when a wait for a GTID position times out.
var ErrWaitTimeout = errors.New("timed out waiting for GTID position")

// WaitForPosition runs MASTER_GTID_WAIT(pos, timeout) on q: nil once the replica applied pos, ErrWaitTimeout
// (wrapped) when it did not in time. MASTER_GTID_WAIT looks at gtid_slave_pos only: on a server that replicates
// from no one it waits for nothing that its own writes can bring.
func WaitForPosition(ctx context.Context, q Querier, pos Position, timeout time.Duration) error {
	if len(pos) == 0 {
		return nil
	}
	secs := timeout.Seconds()
	if secs <= 0 {
		secs = 0.001
	}
	// The wait is bounded by its own timeout: the server's max_statement_time and the client's deadline allow it
	// (and a margin) on top of the statement timeout.
	ctx = allowStatement(ctx, timeout)
	v, err := queryString(ctx, q, "SET STATEMENT max_statement_time="+secondsLiteral(timeout+5*time.Second)+
		" FOR SELECT MASTER_GTID_WAIT(?, ?)", pos.String(), secs)
	if err != nil {
		return fmt.Errorf("MASTER_GTID_WAIT: %w", err)
	}
	switch v {
	case "0":
		return nil
	case "-1":
		return fmt.Errorf("%w %s after %v", ErrWaitTimeout, pos, timeout)
	}
	return fmt.Errorf("MASTER_GTID_WAIT returned %q", v)
}

func (c *Client) vars(ctx context.Context, addr string) (*Vars, error) {
	db, err := c.DB(addr)
	if err != nil {
		return nil, err
	}
	v, err := ReadVars(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return v, nil
}

func (c *Client) replicaStatus(ctx context.Context, addr string) (*ReplicaStatus, error) {
	db, err := c.DB(addr)
	if err != nil {
		return nil, err
	}
	s, err := ReadReplicaStatus(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	return s, nil
}

func (c *Client) waitFor(ctx context.Context, addr string, pos Position, timeout time.Duration) error {
	db, err := c.DB(addr)
	if err != nil {
		return err
	}
	if err := WaitForPosition(ctx, db, pos, timeout); err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	return nil
}
