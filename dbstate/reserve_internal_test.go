package dbstate

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeConnector stands in for the MySQL connector under trackingConnector: each connection answers the identity
// query with a new id and counts its closes, so that the login reserve's bookkeeping is checked without a server.
type fakeConnector struct {
	next   atomic.Int64
	mu     sync.Mutex
	closes map[int64]int
	// gate, when set, holds every login until it is closed; dialing gets a value for each login that waits.
	gate    chan struct{}
	dialing chan struct{}
}

func (f *fakeConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if f.gate != nil {
		f.dialing <- struct{}{}
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &fakeDriverConn{f: f, id: f.next.Add(1)}, nil
}

func (f *fakeConnector) Driver() driver.Driver { return nil }

func (f *fakeConnector) closeCounts() map[int64]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[int64]int{}
	for id, n := range f.closes {
		out[id] = n
	}
	return out
}

// closedOnce fails t unless exactly n connections were opened and each was closed exactly once.
func (f *fakeConnector) closedOnce(t *testing.T, n int) {
	t.Helper()
	counts := f.closeCounts()
	if len(counts) != n || int(f.next.Load()) != n {
		t.Fatalf("closed %v of %d opened, want all %d", counts, f.next.Load(), n)
	}
	for id, k := range counts {
		if k != 1 {
			t.Errorf("connection %d closed %d times", id, k)
		}
	}
}

type fakeDriverConn struct {
	f  *fakeConnector
	id int64
}

var _ driverConn = (*fakeDriverConn)(nil)

func (c *fakeDriverConn) Close() error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if c.f.closes == nil {
		c.f.closes = map[int64]int{}
	}
	c.f.closes[c.id]++
	return nil
}

func (c *fakeDriverConn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("fake: no prepare")
}
func (c *fakeDriverConn) Begin() (driver.Tx, error) { return nil, errors.New("fake: no tx") }
func (c *fakeDriverConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	return nil, errors.New("fake: no tx")
}
func (c *fakeDriverConn) PrepareContext(context.Context, string) (driver.Stmt, error) {
	return nil, errors.New("fake: no prepare")
}
func (c *fakeDriverConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(0), nil
}
func (c *fakeDriverConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return &fakeIdentityRows{id: c.id}, nil
}
func (c *fakeDriverConn) Ping(context.Context) error               { return nil }
func (c *fakeDriverConn) ResetSession(context.Context) error       { return nil }
func (c *fakeDriverConn) IsValid() bool                            { return true }
func (c *fakeDriverConn) CheckNamedValue(*driver.NamedValue) error { return nil }

// fakeIdentityRows is the one row of SELECT CONNECTION_ID(), <server identity>.
type fakeIdentityRows struct {
	id   int64
	done bool
}

func (r *fakeIdentityRows) Columns() []string { return []string{"id", "server"} }
func (r *fakeIdentityRows) Close() error      { return nil }
func (r *fakeIdentityRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0], dest[1] = r.id, "fake"
	return nil
}

func newFakeTracking() (*trackingConnector, *fakeConnector) {
	f := &fakeConnector{}
	return &trackingConnector{inner: f, own: &ownConns{}, timeout: time.Second, stmtTimeout: time.Second}, f
}

// TestLoginReserveClosedOnce: every connection of a login reserve is closed exactly once, whether the pool took
// it (and closed it) or it was still in the reserve at release; connections handed out to goroutines at once
// all differ; the last one goes to the unlock only; a release after Close closes nothing twice.
func TestLoginReserveClosedOnce(t *testing.T) {
	tc, f := newFakeTracking()
	ctx := context.Background()
	const n = 6
	if got, err := tc.hold(ctx, n); err != nil || got != n {
		t.Fatalf("hold: %d, %v", got, err)
	}
	var mu sync.Mutex
	taken := map[*trackedConn]bool{}
	var wg sync.WaitGroup
	for range n - 2 {
		wg.Go(func() {
			c, err := tc.Connect(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if taken[c.(*trackedConn)] {
				t.Errorf("connection %d handed out twice", c.(*trackedConn).id)
			}
			taken[c.(*trackedConn)] = true
		})
	}
	wg.Wait()
	if len(taken) != n-2 {
		t.Fatalf("%d distinct connections from the reserve, want %d", len(taken), n-2)
	}
	// Two left: one more for anyone, the last for the unlock only (anyone else logs in anew).
	if c, _ := tc.Connect(ctx); !slicesContainsReserve(c, n) {
		t.Fatalf("fifth connection %v: want one of the reserve", c)
	}
	if c, _ := tc.Connect(ctx); slicesContainsReserve(c, n) {
		t.Fatalf("the last of the reserve went to a statement other than the unlock")
	} else {
		c.Close()
	}
	for c := range taken {
		c.Close() // what the pool does with them
	}
	if used, held := tc.release(); used != n-1 || held != n {
		t.Fatalf("release: used %d of %d, want %d of %d", used, held, n-1, n)
	}
	if err := tc.Close(); err != nil {
		t.Fatal(err)
	}
	for id, k := range f.closeCounts() {
		if k != 1 && id != 5 { // the fifth is still open: the test never gave it back
			t.Errorf("connection %d closed %d times", id, k)
		}
	}
	if left := tc.own.on("fake"); len(left) != 1 {
		t.Errorf("own connections still recorded: %v, want only the fifth", left)
	}
}

// slicesContainsReserve reports whether c is one of the first n connections opened (the reserve's).
func slicesContainsReserve(c driver.Conn, n int64) bool {
	tc, ok := c.(*trackedConn)
	return ok && tc.id <= n
}

// TestLoginReserveAfterClose: a reserve logged in while, or after, the client closes its pools is closed at once
// (nobody would ever close it: the pool that would have taken it is gone), and hold says so.
func TestLoginReserveAfterClose(t *testing.T) {
	tc, f := newFakeTracking()
	if err := tc.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := tc.hold(context.Background(), 3); err == nil || n != 0 {
		t.Fatalf("hold after Close: %d, %v; want an error", n, err)
	}
	f.closedOnce(t, 3)
	if left := tc.own.on("fake"); len(left) != 0 {
		t.Errorf("own connections still recorded: %v", left)
	}
}

// TestHoldLoginsRacesClose: a Close while holdLogins logs in its reserve (a caller closing the client while a
// switchover runs) leaves no connection of it open: nobody would close it later, the pool being gone.
func TestHoldLoginsRacesClose(t *testing.T) {
	c := NewClient(Credentials{User: "u"}, time.Second, nil)
	defer c.Close()
	tc, f := newFakeTracking()
	f.gate, f.dialing = make(chan struct{}), make(chan struct{}, 3)
	c.installPool("127.0.0.1:1", tc)
	var (
		wg  sync.WaitGroup
		n   int
		err error
	)
	wg.Go(func() { n, err = c.holdLogins(context.Background(), "127.0.0.1:1", 3) })
	for range 3 {
		<-f.dialing // all three logins under way
	}
	if cerr := c.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	close(f.gate)
	wg.Wait()
	if err == nil || n != 0 {
		t.Errorf("holdLogins across Close: %d, %v; want an error", n, err)
	}
	f.closedOnce(t, 3)
}

// installPool gives c a pool for addr over tc, as Client.DB would over the MySQL connector.
func (c *Client) installPool(addr string, tc *trackingConnector) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dbs[addr], c.conns[addr] = sql.OpenDB(tc), tc
}
