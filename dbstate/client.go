package dbstate

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Querier is what the thin server functions need. *sql.DB, *sql.Conn and *sql.Tx satisfy it.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

var (
	_ Querier = (*sql.DB)(nil)
	_ Querier = (*sql.Conn)(nil)
	_ Querier = (*sql.Tx)(nil)
)

// Credentials are how dbstate logs in to every instance. The password never appears in String, JSON, logs or
// errors.
type Credentials struct {
	User     string
	Password string `json:"-"`
	// TLS, when not nil, is used for every connection.
	TLS *tls.Config `json:"-"`
}

// String shows the user and whether a password is set, never the password.
func (c Credentials) String() string {
	pw := "no password"
	if c.Password != "" {
		pw = "password set"
	}
	return fmt.Sprintf("user %q (%s, tls=%v)", c.User, pw, c.TLS != nil)
}

// GoString keeps the password out of %#v.
func (c Credentials) GoString() string {
	tlsConf := "(*tls.Config)(nil)"
	if c.TLS != nil {
		tlsConf = "&tls.Config{...}"
	}
	return fmt.Sprintf("dbstate.Credentials{User:%q, Password:%s, TLS:%s}", c.User, redactedLiteral(c.Password), tlsConf)
}

// LogValue keeps passwords out of slog output.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// redactedLiteral is "" for an empty secret and "<redacted>", quoted, otherwise.
func redactedLiteral(secret string) string {
	if secret == "" {
		return `""`
	}
	return `"<redacted>"`
}

// maxPasswordLine bounds what ReadPasswordFile reads: a path such as /dev/zero or a log file by mistake must not
// fill the memory.
const maxPasswordLine = 4096

// ReadPasswordFile reads a password from the first line of a file (a trailing CR, from CRLF, is dropped). It
// reads at most 4096 bytes and refuses a longer first line. Pipes (/dev/fd/N) work; a directory does not.
func ReadPasswordFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordLine+1))
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	line, _, found := strings.Cut(string(b), "\n")
	if !found && len(b) > maxPasswordLine {
		return "", fmt.Errorf("password file %s: first line longer than %d bytes", path, maxPasswordLine)
	}
	return strings.TrimRight(line, "\r"), nil
}

// TLSConfig builds a TLS configuration from CA, certificate and key files (each optional). With verify false the
// server certificate is not checked (the equivalent of the client's --ssl without --ssl-verify-server-cert).
func TLSConfig(caFile, certFile, keyFile string, verify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: !verify} //nolint:gosec // the user's choice
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no certificates", caFile)
		}
		cfg.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Client opens and caches one connection pool per instance address. Addresses are "host:port" or a unix socket
// path ("/run/mysqld/mysqld.sock" or "unix:/path").
//
// Every statement a Client sends is bounded (see ClientOptions.StatementTimeout), so that a hung server (stopped,
// swapping, behind a dead network path) costs a bounded wait and an error, never a hang.
type Client struct {
	creds       Credentials
	timeout     time.Duration
	stmtTimeout time.Duration
	log         *slog.Logger

	mu  sync.Mutex
	dbs map[string]*sql.DB
	// conns are the pools' connectors, by address: they hold the login reserves (see holdLogins).
	conns map[string]*trackingConnector
	// held is dbstate's own account where this client locked it, by address, until it unlocks it there.
	held map[string]Account
	own  ownConns
}

// Defaults of ClientOptions.
const (
	DefaultConnectTimeout   = 5 * time.Second
	DefaultStatementTimeout = 10 * time.Second
)

// ClientOptions tune a Client. Zero values mean the defaults.
type ClientOptions struct {
	// ConnectTimeout bounds connecting: dial, TLS, handshake, login and the first query. Zero means 5 s.
	ConnectTimeout time.Duration
	// StatementTimeout bounds every statement: a context deadline on the client side (the connection is closed
	// when it passes, which also ends a wait on a server that does not answer at all), the session's
	// max_statement_time on the server side (the server aborts the statement itself), and the driver's write
	// timeout. Statements that wait by design (MASTER_GTID_WAIT, SET GLOBAL read_only=1 behind a lock) get their
	// own wait on top. Zero means 10 s.
	StatementTimeout time.Duration
	// Logger may be nil (discard).
	Logger *slog.Logger
}

// Validate rejects negative durations.
func (o ClientOptions) Validate() error {
	if o.ConnectTimeout < 0 || o.StatementTimeout < 0 {
		return fmt.Errorf("%w: negative client timeout", ErrInvalidValue)
	}
	return nil
}

// NewClient returns a Client. timeout bounds connecting (0 means 5 s); logger may be nil. Statements are bounded by
// DefaultStatementTimeout; NewClientWith chooses.
func NewClient(creds Credentials, timeout time.Duration, logger *slog.Logger) *Client {
	c, _ := NewClientWith(creds, ClientOptions{ConnectTimeout: max(timeout, 0), Logger: logger})
	return c
}

// NewClientWith returns a Client with options o (see ClientOptions).
func NewClientWith(creds Credentials, o ClientOptions) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.StatementTimeout == 0 {
		o.StatementTimeout = DefaultStatementTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return newClient(creds, o.ConnectTimeout, o.StatementTimeout, o.Logger), nil
}

// newClient is the one place a Client is made, with every map it fills.
func newClient(creds Credentials, connect, stmt time.Duration, log *slog.Logger) *Client {
	return &Client{creds: creds, timeout: connect, stmtTimeout: stmt, log: log, dbs: map[string]*sql.DB{},
		conns: map[string]*trackingConnector{}, held: map[string]Account{}}
}

// WithCredentials returns a new Client with c's options that logs in with creds instead (with c's TLS when
// creds has none), e.g. as the replication account. Close it apart from c.
func (c *Client) WithCredentials(creds Credentials) *Client {
	if creds.TLS == nil {
		creds.TLS = c.creds.TLS
	}
	return newClient(creds, c.timeout, c.stmtTimeout, c.log)
}

// StatementTimeout is the bound of every statement the client sends (see ClientOptions).
func (c *Client) StatementTimeout() time.Duration { return c.stmtTimeout }

// User is the account the client logs in as.
func (c *Client) User() string { return c.creds.User }

// Credentials returns the client's credentials (for reuse as replication credentials).
func (c *Client) Credentials() Credentials { return c.creds }

// isSocketPath reports whether an address names a unix socket ("/path" or "unix:/path") rather than host:port.
func isSocketPath(addr string) bool {
	return strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "unix:")
}

func (c *Client) config(addr string) *mysql.Config {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = c.creds.User, c.creds.Password
	if isSocketPath(addr) {
		cfg.Net, cfg.Addr = "unix", strings.TrimPrefix(addr, "unix:")
	} else {
		cfg.Net, cfg.Addr = "tcp", addr
	}
	// Replication statements must go as text, never as server-side prepared statements.
	cfg.InterpolateParams = true
	cfg.Timeout = c.timeout
	// The server aborts a statement that runs longer than the client waits for it (a statement that waits by
	// design sets its own bound with SET STATEMENT max_statement_time=... FOR).
	cfg.Params = map[string]string{"max_statement_time": secondsLiteral(c.stmtTimeout)}
	// A write blocks only while the server reads nothing (hung): a backstop under the statement's deadline. Reads
	// are not bounded here: a wait by design reads nothing for as long as it waits; the deadline bounds them.
	cfg.WriteTimeout = c.stmtTimeout
	if c.creds.TLS != nil {
		t := c.creds.TLS.Clone()
		if t.ServerName == "" && cfg.Net == "tcp" {
			if h, _, err := net.SplitHostPort(addr); err == nil {
				t.ServerName = h
			}
		}
		cfg.TLS = t
	}
	return cfg
}

// DB returns the pool for addr, opening it on first use. It does not connect yet.
func (c *Client) DB(addr string) (*sql.DB, error) {
	db, _, err := c.pool(addr)
	return db, err
}

// pool is DB with the pool's connector, both read under one lock: a Close in between cannot leave one without
// the other.
func (c *Client) pool(addr string) (*sql.DB, *trackingConnector, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if db, ok := c.dbs[addr]; ok {
		return db, c.conns[addr], nil
	}
	conn, err := mysql.NewConnector(c.config(addr))
	if err != nil {
		return nil, nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	tc := &trackingConnector{inner: conn, own: &c.own, timeout: c.timeout, stmtTimeout: c.stmtTimeout}
	db := sql.OpenDB(tc)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	c.dbs[addr], c.conns[addr] = db, tc
	return db, tc, nil
}

// holdLogins opens n connections to addr and keeps them, logged in, in the reserve of its pool: once dbstate's
// own account is locked there (MariaDB checks the lock at login only), the pool takes every new connection it
// needs from the reserve instead of logging in, however many it drops meanwhile (sessions with settings of their
// own, such as sql_log_bin=0, are dropped after use; so are the connections of statements that timed out) or
// closes when idle. The last one is kept for the unlock (see forUnlock). It returns how many it opened; fewer
// than n is an error only when none opened.
func (c *Client) holdLogins(ctx context.Context, addr string, n int) (int, error) {
	_, tc, err := c.pool(addr)
	if err != nil {
		return 0, err
	}
	return tc.hold(ctx, n)
}

// releaseLogins closes what is left of addr's login reserve: the account logs in again. It returns how many of
// the reserve the pool had taken.
func (c *Client) releaseLogins(addr string) (used, held int) {
	c.mu.Lock()
	tc := c.conns[addr]
	c.mu.Unlock()
	if tc == nil {
		return 0, 0
	}
	return tc.release()
}

// Close closes every pool.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for a, db := range c.dbs {
		errs = append(errs, db.Close()) // closes the connector's reserve too
		delete(c.dbs, a)
		delete(c.conns, a)
		delete(c.held, a)
	}
	return errors.Join(errs...)
}

// withSession runs f on a dedicated connection that is discarded afterwards, so that session settings
// (sql_log_bin=0) never leak into the pool.
func (c *Client) withSession(ctx context.Context, addr string, f func(q Querier) error) error {
	db, err := c.DB(addr)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	defer func() {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // drop it instead of pooling it
		conn.Close()
	}()
	return f(conn)
}

// queryRows runs a query and returns its rows by column name (NULLs absent).
func queryRows(ctx context.Context, q Querier, query string, args ...any) ([]Row, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Row
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for k := range vals {
			ptrs[k] = &vals[k]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := Row{}
		for k, c := range cols {
			if vals[k].Valid {
				r[c] = vals[k].String
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func queryString(ctx context.Context, q Querier, query string, args ...any) (string, error) {
	rows, err := queryRows(ctx, q, query, args...)
	if err != nil {
		return "", err
	}
	if len(rows) != 1 || len(rows[0]) > 1 {
		return "", fmt.Errorf("%s: want one value, got %d rows", query, len(rows))
	}
	for _, v := range rows[0] {
		return v, nil
	}
	return "", nil // NULL
}

// ReadVars reads the variables of one instance.
func ReadVars(ctx context.Context, q Querier) (*Vars, error) {
	rows, err := queryRows(ctx, q, varsQuery)
	if err != nil {
		return nil, fmt.Errorf("read variables: %w", err)
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("read variables: %d rows", len(rows))
	}
	return ParseVars(rows[0])
}

// ReadReplicaStatus runs SHOW SLAVE STATUS; it returns nil, nil when the instance is not a replica.
func ReadReplicaStatus(ctx context.Context, q Querier) (*ReplicaStatus, error) {
	rows, err := queryRows(ctx, q, "SHOW SLAVE STATUS")
	if err != nil {
		return nil, fmt.Errorf("show slave status: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return ParseReplicaStatus(rows[0])
}

// ReadReplicaHosts runs SHOW SLAVE HOSTS.
func ReadReplicaHosts(ctx context.Context, q Querier) ([]ReplicaHost, error) {
	rows, err := queryRows(ctx, q, "SHOW SLAVE HOSTS")
	if err != nil {
		return nil, fmt.Errorf("show slave hosts: %w", err)
	}
	return ParseReplicaHosts(rows)
}

// serverIdentity names a server the same way on every connection to it, whatever address reached it.
const serverIdentity = "CONCAT(@@server_id, '/', @@hostname, '/', @@port)"

// ownConns are the connection ids of a Client's open connections, per server identity, so that fencing can tell
// dbstate's own sessions (idle in its pools) from other sessions of the same account.
type ownConns struct {
	mu  sync.Mutex
	ids map[string]map[int64]bool
}

func (o *ownConns) add(server string, id int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ids == nil {
		o.ids = map[string]map[int64]bool{}
	}
	if o.ids[server] == nil {
		o.ids[server] = map[int64]bool{}
	}
	o.ids[server][id] = true
}

func (o *ownConns) remove(server string, id int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.ids[server], id)
}

// on returns the ids of the open connections to server.
func (o *ownConns) on(server string) map[int64]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[int64]bool{}
	for id := range o.ids[server] {
		out[id] = true
	}
	return out
}

// driverConn is what database/sql uses of a go-sql-driver/mysql connection. A wrapper must pass all of it on:
// without ExecerContext and QueryerContext, database/sql would fall back to server-side prepared statements.
type driverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// trackingConnector records the connection id of every connection it opens in own, until the connection closes.
// timeout bounds the whole connect: dial, TLS, handshake, login and the identity query (the driver's own
// Timeout bounds the dial only; a listener that never sends a handshake would hang until the caller's ctx ends).
type trackingConnector struct {
	inner       driver.Connector
	own         *ownConns
	timeout     time.Duration
	stmtTimeout time.Duration

	mu      sync.Mutex
	reserve []*trackedConn // logged in ahead, while the account is locked (holdLogins)
	held    int            // how many the reserve held at first
	closed  bool           // its pool was closed: a reserve logged in now would never be closed
}

var _ io.Closer = (*trackingConnector)(nil)

func (t *trackingConnector) Driver() driver.Driver { return t.inner.Driver() }

type unlockKey struct{}

// forUnlock marks ctx as that of the statement that unlocks dbstate's own account: only it may take the last
// connection of a login reserve, so that the unlock always has one.
func forUnlock(ctx context.Context) context.Context { return context.WithValue(ctx, unlockKey{}, true) }

// Connect takes a connection from the reserve while one is held (the last only for the unlock, see forUnlock),
// and logs in otherwise.
func (t *trackingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	t.mu.Lock()
	if n := len(t.reserve); n > 1 || n == 1 && ctx.Value(unlockKey{}) != nil {
		c := t.reserve[n-1]
		t.reserve = t.reserve[:n-1]
		t.mu.Unlock()
		return c, nil
	}
	t.mu.Unlock()
	return t.dial(ctx)
}

// hold logs in n more connections into the reserve (see Client.holdLogins).
func (t *trackingConnector) hold(ctx context.Context, n int) (int, error) {
	t.mu.Lock()
	have := len(t.reserve)
	t.mu.Unlock()
	if have >= n {
		return have, nil // logged in ahead already (fence-own-account, before it unlocks the candidate)
	}
	n -= have
	// In parallel: on the old primary this runs inside the write-unavailability window.
	conns, errs := make([]*trackedConn, n), make([]error, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[k], errs[k] = t.dial(ctx)
		}()
	}
	wg.Wait()
	var opened []*trackedConn
	for k, c := range conns {
		if errs[k] == nil {
			opened = append(opened, c)
		}
	}
	if len(opened) == 0 {
		return 0, fmt.Errorf("login reserve: %w", errors.Join(errs...))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		for _, c := range opened {
			c.Close()
		}
		return 0, errors.New("login reserve: the client was closed")
	}
	t.reserve = append(t.reserve, opened...)
	t.held = len(t.reserve)
	return len(opened), nil
}

// release closes the reserve left (see Client.releaseLogins).
func (t *trackingConnector) release() (used, held int) {
	t.mu.Lock()
	left, held := t.reserve, t.held
	t.reserve, t.held = nil, 0
	t.mu.Unlock()
	for _, c := range left {
		c.Close()
	}
	return held - len(left), held
}

// Close closes the reserve, and any that hold logs in later; sql.DB.Close calls it.
func (t *trackingConnector) Close() error {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.release()
	return nil
}

// dial logs in a new connection and records its id.
func (t *trackingConnector) dial(parent context.Context) (*trackedConn, error) {
	ctx, cancel := context.WithTimeout(parent, t.timeout)
	defer cancel()
	c, err := t.inner.Connect(ctx)
	if err != nil {
		if ctx.Err() != nil && parent.Err() == nil {
			return nil, fmt.Errorf("connect, TLS and handshake took longer than the connect timeout %v: %w", t.timeout, err)
		}
		return nil, err
	}
	dc, ok := c.(driverConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("dbstate: driver connection %T lacks methods database/sql needs", c)
	}
	id, server, err := connIdentity(ctx, dc)
	if err != nil {
		dc.Close()
		return nil, fmt.Errorf("connection id: %w", err)
	}
	t.own.add(server, id)
	return &trackedConn{driverConn: dc, own: t.own, server: server, id: id, stmtTimeout: t.stmtTimeout}, nil
}

func connIdentity(ctx context.Context, c driver.QueryerContext) (int64, string, error) {
	rows, err := c.QueryContext(ctx, "SELECT CONNECTION_ID(), "+serverIdentity, nil)
	if err != nil {
		return 0, "", err
	}
	defer rows.Close()
	dest := make([]driver.Value, 2)
	if err := rows.Next(dest); err != nil {
		return 0, "", err
	}
	id, err := strconv.ParseInt(valueString(dest[0]), 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("%w connection id %q", ErrParse, valueString(dest[0]))
	}
	return id, valueString(dest[1]), nil
}

func valueString(v driver.Value) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}

type trackedConn struct {
	driverConn
	own         *ownConns
	server      string
	id          int64
	stmtTimeout time.Duration
}

func (c *trackedConn) Close() error {
	c.own.remove(c.server, c.id)
	return c.driverConn.Close()
}

// ErrStatementTimeout is returned (wrapped) when a statement got no answer within its bound: the client
// closed the connection. The server may be hung, overloaded or unreachable; the statement may or may not have
// taken effect there, and a hung server that resumes may still run it (it is in the server's socket buffer):
// whatever depends on it must treat it as maybe done.
var ErrStatementTimeout = errors.New("no answer within the statement timeout")

type allowanceKey struct{}

// allowStatement lets the statements sent with ctx run d longer than the statement timeout: for statements that
// wait by design, bounded by a timeout of their own (MASTER_GTID_WAIT, SET STATEMENT max_statement_time).
func allowStatement(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, allowanceKey{}, max(d, 0))
}

// bound is the deadline of one statement: the statement timeout plus what ctx allows, within ctx's own deadline.
func (c *trackedConn) bound(ctx context.Context) (context.Context, context.CancelFunc, time.Duration) {
	d := c.stmtTimeout
	if a, ok := ctx.Value(allowanceKey{}).(time.Duration); ok {
		d += a
	}
	bctx, cancel := context.WithTimeout(ctx, d)
	return bctx, cancel, d
}

// timedOut names the statement timeout in err when the statement's own deadline, not the caller's, ended it.
func timedOut(parent, bctx context.Context, d time.Duration, err error) error {
	if err != nil && bctx.Err() != nil && parent.Err() == nil {
		return fmt.Errorf("%w (%v; the statement may still take effect there): %w", ErrStatementTimeout, d, err)
	}
	return err
}

func (c *trackedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	bctx, cancel, d := c.bound(ctx)
	defer cancel()
	r, err := c.driverConn.ExecContext(bctx, query, args)
	return r, timedOut(ctx, bctx, d, err)
}

func (c *trackedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	bctx, cancel, d := c.bound(ctx)
	rows, err := c.driverConn.QueryContext(bctx, query, args)
	if err != nil {
		cancel()
		return nil, timedOut(ctx, bctx, d, err)
	}
	dr, ok := rows.(driverRows)
	if !ok {
		rows.Close()
		cancel()
		return nil, fmt.Errorf("dbstate: driver rows %T lack methods database/sql uses", rows)
	}
	// The deadline covers reading the rows too: it ends when they are closed.
	return &boundedRows{driverRows: dr, cancel: cancel}, nil
}

func (c *trackedConn) Ping(ctx context.Context) error {
	bctx, cancel, d := c.bound(ctx)
	defer cancel()
	return timedOut(ctx, bctx, d, c.driverConn.Ping(bctx))
}

// driverRows is what database/sql uses of the driver's rows (as driverConn for connections).
type driverRows interface {
	driver.Rows
	driver.RowsNextResultSet
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

type boundedRows struct {
	driverRows
	cancel context.CancelFunc
}

func (r *boundedRows) Close() error {
	defer r.cancel()
	return r.driverRows.Close()
}

// secondsLiteral is d in seconds for max_statement_time, at least 1 ms (0 would mean no limit).
func secondsLiteral(d time.Duration) string {
	return strconv.FormatFloat(max(d.Seconds(), 0.001), 'f', 3, 64)
}
