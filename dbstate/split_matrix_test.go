package dbstate_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
	"github.com/go-sql-driver/mysql"
)

// The split matrix: switchovers under writers that read_only does not stop, each a hostile application, at 5, 50
// and 500 writes/s, with the candidate caught up and 1 s behind. A cell passes when every switchover of it ends
// with exactly one writable primary that has every write any instance acknowledged (no split: every other
// instance's gtid_binlog_pos is contained in the new primary's, and every replica replicates from it with no
// error), or is refused or rolled back, says so, and leaves the original topology intact with nothing lost.
//
// The writers of one testbed (a primary and two replicas) take turns; the testbed is switched back and forth,
// cell after cell, and rebuilt only when a cell left it broken. Between switchovers, dbstate recover lifts from
// the audit log what the fence kept on the demoted primary; whatever is still locked after that fails the cell.

// splitKind is one kind of writer of the matrix.
type splitKind struct {
	name string
	// user and password log in over TCP; root logs in as root@localhost over each instance's unix socket
	// instead. event means no client at all: a scheduled event on the primary writes.
	user, password string
	root, event    bool
	// rates it runs at, and whether the candidate-behind cells run too.
	rates  []int
	behind []bool
}

var splitRates = []int{5, 50, 500}

// splitKinds are the writers of the matrix. Every account is created on the primary (replicated) with ALL
// PRIVILEGES ON *.*, which includes READ ONLY ADMIN: read_only does not stop them. "app" (INSERT only, which
// read_only does stop) is the baseline that runs through the same harness.
// ownKind names the writer kind that logs in as dbstate itself.
const ownKind = "own account"

var splitKinds = []splitKind{
	{name: "app baseline", user: "app", password: appPassword, rates: []int{500}, behind: []bool{false, true}},
	{name: ownKind, user: dbtest.AdminUser, password: dbtest.AdminPassword},
	{name: "other ALL", user: "splitall", password: appPassword},
	{name: "root socket", root: true},
	{name: "anonymous ALL", user: "nobody_in_particular", password: appPassword},
	{name: "'system user'", user: "system user", password: appPassword},
	{name: "event", event: true},
}

func (k splitKind) cellRates() []int {
	if k.rates != nil {
		return k.rates
	}
	return splitRates
}

func (k splitKind) cellBehind() []bool {
	if k.behind != nil {
		return k.behind
	}
	return []bool{false, true}
}

// splitCell names one cell of the matrix.
type splitCell struct {
	kind   string
	rate   int
	behind bool
}

func (c splitCell) String() string {
	lag := "caught up"
	if c.behind {
		lag = "1s behind"
	}
	return fmt.Sprintf("%s/%d per s/%s", c.kind, c.rate, lag)
}

// splitRun is what one switchover of a cell gave.
type splitRun struct {
	outcome  string // switched, refused, rolled back, failed
	window   time.Duration
	total    time.Duration
	split    bool
	lost     int
	problems []string // empty: the run passed
	note     string   // why it was refused or rolled back
}

// splitStats are the runs of one cell.
type splitStats struct {
	cell  splitCell
	runs  []splitRun
	rates []float64 // measured writes/s while the cell ran
}

// notes are the errors of the runs that were refused or rolled back, and passed.
func (s *splitStats) notes() []string {
	var out []string
	for k, r := range s.runs {
		if r.note != "" && len(r.problems) == 0 {
			out = append(out, fmt.Sprintf("run %d (%s): %s", k+1, r.outcome, r.note))
		}
	}
	return out
}

func (s *splitStats) failed() []string {
	var out []string
	for k, r := range s.runs {
		for _, p := range r.problems {
			out = append(out, fmt.Sprintf("run %d (%s): %s", k+1, r.outcome, p))
		}
	}
	return out
}

// splitBed is the shared testbed: a primary and two replicas, the accounts of every writer kind, the table the
// writers fill, and the event scheduler on.
type splitBed struct {
	tb    testing.TB
	tp    *dbtest.Topology
	insts []*dbtest.Instance
	c     *dbstate.Client
	// primary is the writable instance now; the other two replicate from it.
	primary *dbtest.Instance
	// turn alternates the candidate between the two replicas.
	turn int
	// locked are the accounts locked before any switchover (mariadb.sys@localhost is, from mariadb-install-db).
	locked map[string]bool
	// rebuilds counts the testbeds that cells left broken.
	rebuilds int
}

func newSplitBed(tb testing.TB) *splitBed {
	tb.Helper()
	b := &splitBed{tb: tb, c: newClient(tb)}
	b.build()
	tb.Cleanup(func() { b.tp.Stop() })
	return b
}

func (b *splitBed) build() {
	b.tb.Helper()
	tp, err := dbtest.StartTopology("p p>r1 p>r2", dbtest.Options{})
	if err != nil {
		b.tb.Fatal(err)
	}
	b.tp, b.insts, b.primary, b.turn = tp, tp.Instances, tp.Get("p"), 0
	p := b.primary
	stmts := []string{
		"CREATE TABLE test.m (seq BIGINT UNSIGNED PRIMARY KEY, via INT NOT NULL, at_us BIGINT NOT NULL)",
		"CREATE USER 'app'@'127.0.0.1' IDENTIFIED BY '" + appPassword + "'",
		"GRANT SELECT, INSERT ON test.* TO 'app'@'127.0.0.1'",
	}
	for _, u := range []string{"splitall", "", "system user"} {
		stmts = append(stmts,
			"CREATE USER '"+u+"'@'127.0.0.1' IDENTIFIED BY '"+appPassword+"'",
			"GRANT ALL PRIVILEGES ON *.* TO '"+u+"'@'127.0.0.1'")
	}
	p.Exec(b.tb, stmts...)
	for _, in := range b.insts {
		in.Exec(b.tb, "SET GLOBAL event_scheduler=ON")
		if in != p {
			in.WaitCaughtUp(b.tb, p)
		}
	}
	locked, err := b.lockedAccounts(context.Background(), p)
	if err != nil {
		b.tb.Fatal(err)
	}
	b.locked = map[string]bool{}
	for _, a := range locked {
		b.locked[a.String()] = true
	}
}

// lockedAccounts lists the accounts locked on in.
func (b *splitBed) lockedAccounts(ctx context.Context, in *dbtest.Instance) ([]dbstate.Account, error) {
	var out []dbstate.Account
	err := b.each(ctx, in, "SELECT User, Host FROM mysql.global_priv WHERE JSON_VALUE(Priv, '$.account_locked') IN ('true', '1')",
		func(rows *sql.Rows) error {
			var a dbstate.Account
			if err := rows.Scan(&a.User, &a.Host); err != nil {
				return err
			}
			out = append(out, a)
			return nil
		})
	return out, err
}

// rebuild replaces a testbed that a cell left broken.
func (b *splitBed) rebuild() {
	b.tb.Helper()
	b.rebuilds++
	b.tp.Stop()
	b.build()
}

func (b *splitBed) byName(name string) *dbtest.Instance { return b.tp.Get(name) }

// next returns the candidate of the next switchover and the other replica.
func (b *splitBed) next() (y, other *dbtest.Instance) {
	var replicas []*dbtest.Instance
	for _, in := range b.insts {
		if in != b.primary {
			replicas = append(replicas, in)
		}
	}
	b.turn++
	return replicas[b.turn%2], replicas[(b.turn+1)%2]
}

// exec runs statements on in as dbstate's account (which the harness logs in as: root may be locked by the
// fence on a demoted primary, and dbstate's own connections logged in ahead survive its own lock).
func (b *splitBed) exec(ctx context.Context, in *dbtest.Instance, stmts ...string) error {
	db, err := b.c.DB(in.Addr())
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, q := range stmts {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s on %s: %w", q, in.Name, err)
		}
	}
	return nil
}

// each runs q on in as dbstate's account and calls row for every row, to scan it.
func (b *splitBed) each(ctx context.Context, in *dbtest.Instance, q string, row func(*sql.Rows) error, args ...any) error {
	db, err := b.c.DB(in.Addr())
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s on %s: %w", q, in.Name, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// seqs reads the sequence numbers in test.m on in, with the server_id each landed on and its time.
func (b *splitBed) seqs(ctx context.Context, in *dbtest.Instance) (map[uint64]splitRow, error) {
	out := map[uint64]splitRow{}
	err := b.each(ctx, in, "SELECT seq, via, at_us FROM test.m", func(rows *sql.Rows) error {
		var seq uint64
		var row splitRow
		if err := rows.Scan(&seq, &row.via, &row.atUS); err != nil {
			return err
		}
		out[seq] = row
		return nil
	})
	return out, err
}

type splitRow struct {
	via  int
	atUS int64
}

// splitWriter is a hostile application: every write opens a new connection, tries the old primary first and,
// when refused there, the candidate and the other instance, in that order; so a write lands wherever the fence
// leaves a gap. Each acknowledged write has a unique sequence number and records where it landed.
type splitWriter struct {
	dbs   map[string]*sql.DB // by instance name
	order atomic.Pointer[[]string]
	seq   atomic.Uint64

	mu   sync.Mutex
	acks []ack

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func startSplitWriter(tb testing.TB, k splitKind, rate int, insts []*dbtest.Instance, order []string) *splitWriter {
	tb.Helper()
	w := &splitWriter{dbs: map[string]*sql.DB{}, stop: make(chan struct{})}
	w.seq.Store(uint64(writerBase.Add(1_000_000_000)))
	w.setOrder(order)
	for _, in := range insts {
		cfg := mysql.NewConfig()
		if k.root {
			cfg.User, cfg.Net, cfg.Addr = "root", "unix", in.Socket
		} else {
			cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = k.user, k.password, "tcp", in.Addr()
		}
		cfg.InterpolateParams = true
		cfg.Timeout = 500 * time.Millisecond
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxIdleConns(0) // a new connection for every write
		w.dbs[in.Name] = db
	}
	// One pacer hands out evenly spaced turns to a pool of workers, so that writes stay evenly spaced (a window
	// is measured to within 1/rate) while some of them wait on slow connections.
	turns := make(chan struct{})
	w.wg.Add(1)
	go w.pace(time.Second/time.Duration(rate), turns)
	for range max(2, rate/50) {
		w.wg.Add(1)
		go w.work(turns)
	}
	tb.Cleanup(w.Stop)
	return w
}

func (w *splitWriter) setOrder(order []string) { w.order.Store(&order) }

// pace sends a turn every interval; it does not burst after a stall (every worker busy).
func (w *splitWriter) pace(interval time.Duration, turns chan<- struct{}) {
	defer w.wg.Done()
	next := time.Now()
	for {
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-w.stop:
				return
			case <-time.After(d):
			}
		} else if d < -100*time.Millisecond {
			next = time.Now()
		}
		select {
		case <-w.stop:
			return
		case turns <- struct{}{}:
		}
	}
}

func (w *splitWriter) work(turns <-chan struct{}) {
	defer w.wg.Done()
	for {
		select {
		case <-w.stop:
			return
		case <-turns:
		}
		w.write()
	}
}

// write writes the next sequence number to the first instance of the order that takes it.
func (w *splitWriter) write() {
	seq := w.seq.Add(1)
	start := time.Now()
	landed := ""
	for _, name := range *w.order.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := w.dbs[name].ExecContext(ctx, "INSERT INTO test.m (seq, via, at_us) VALUES (?, @@server_id, UNIX_TIMESTAMP(NOW(6))*1000000)", seq)
		cancel()
		var me *mysql.MySQLError
		if err == nil || errors.As(err, &me) && me.Number == 1062 { // 1062: an earlier attempt of this seq is there
			landed = name
			break
		}
		if me == nil && !errors.Is(err, mysql.ErrInvalidConn) && !errors.Is(err, driver.ErrBadConn) {
			// Not refused (read_only, a locked account) and not killed: a timeout on a busy machine. The
			// application gives this write up rather than try a replica that nothing fences outside a
			// switchover.
			break
		}
	}
	if landed != "" {
		w.mu.Lock()
		w.acks = append(w.acks, ack{seq: int64(seq), via: landed, at: time.Now(), took: time.Since(start)})
		w.mu.Unlock()
	}
}

func (w *splitWriter) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.wg.Wait()
		for _, db := range w.dbs {
			db.Close()
		}
	})
}

func (w *splitWriter) Acks() []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acks)
}

// splitEvent is the event writer: EVERY 1 SECOND, definer root@localhost, each run inserting rate rows spread
// over 0.9 s (each its own transaction), so that the event writes at about rate per second however slowly its
// scheduler ticks. It is created on the primary (replicas get it SLAVESIDE_DISABLED).
func splitEventSQL(rate int) string {
	return fmt.Sprintf("CREATE DEFINER='root'@'localhost' EVENT test.split_writer ON SCHEDULE EVERY 1 SECOND DO BEGIN "+
		"DECLARE i INT DEFAULT 0; WHILE i < %d DO "+
		"INSERT INTO test.m (seq, via, at_us) VALUES (UUID_SHORT(), @@server_id, UNIX_TIMESTAMP(NOW(6))*1000000); "+
		"DO SLEEP(%.4f); SET i = i + 1; END WHILE; END", rate, 0.9/float64(rate))
}

// splitPlan says how many switchovers each cell runs and how long the writers go on after each.
type splitPlan struct {
	runs int
	post time.Duration
	// againOnOwnRefusal runs the cells of one rate once more when a run of dbstate's own login ended in the
	// residual the README documents for it: promote's last look refused the promotion ("a writer is not
	// fenced", so no silent split) after that login's application wrote to the candidate in the round trip
	// between fence-own-account's unlock there and its lock on the old primary; the rollback then says NOT
	// VERIFIED. make test runs each cell once, as a check, and a second such ending in a row fails it;
	// BenchmarkSplitMatrix counts every ending, so its table gives the rate.
	againOnOwnRefusal bool
}

// ownRefusal reports whether s is a cell of dbstate's own login whose every failed run ended in the refused
// promotion described at splitPlan.againOnOwnRefusal.
func (s *splitStats) ownRefusal() bool {
	if s.cell.kind != ownKind {
		return false
	}
	failed := false
	for _, r := range s.runs {
		if len(r.problems) == 0 {
			continue
		}
		failed = true
		if !slices.ContainsFunc(r.problems, func(p string) bool { return strings.Contains(p, "a writer is not fenced") }) {
			return false
		}
	}
	return failed
}

// runSplitMatrix runs every cell of the matrix, back to back on one testbed, and returns the stats of each and
// how many times a broken testbed was replaced.
func runSplitMatrix(tb testing.TB, sp splitPlan, kinds []splitKind) ([]*splitStats, int) {
	tb.Helper()
	b := newSplitBed(tb)
	var out []*splitStats
	for _, k := range kinds {
		for _, rate := range k.cellRates() {
			cells := b.runRate(k, rate, sp)
			if sp.againOnOwnRefusal && slices.ContainsFunc(cells, (*splitStats).ownRefusal) {
				for _, c := range cells {
					for _, f := range c.failed() {
						tb.Logf("%s: the documented own-login refusal; the cells of this rate run once more: %s", c.cell, f)
					}
				}
				cells = b.runRate(k, rate, sp)
			}
			out = append(out, cells...)
		}
	}
	return out, b.rebuilds
}

// runRate runs the cells of one writer kind at one rate: one writer (or event) for all of them.
func (b *splitBed) runRate(k splitKind, rate int, sp splitPlan) []*splitStats {
	tb := b.tb
	tb.Helper()
	ctx := context.Background()
	var w *splitWriter
	start := func() {
		// Each writer starts on an empty table (replicated): the checks read it whole.
		if err := b.exec(ctx, b.primary, "DROP EVENT IF EXISTS test.split_writer", "TRUNCATE TABLE test.m"); err != nil {
			tb.Fatal(err)
		}
		if k.event {
			if err := b.exec(ctx, b.primary, splitEventSQL(rate)); err != nil {
				tb.Fatal(err)
			}
			return
		}
		w = startSplitWriter(tb, k, rate, b.insts, []string{b.primary.Name})
	}
	stop := func() {
		if k.event {
			// Wherever the event runs now, dropping it on the primary drops it everywhere.
			if err := b.exec(ctx, b.primary, "DROP EVENT IF EXISTS test.split_writer"); err != nil {
				tb.Logf("drop event: %v", err)
			}
			return
		}
		w.Stop()
	}
	start()
	var out []*splitStats
	for _, behind := range k.cellBehind() {
		st := &splitStats{cell: splitCell{kind: k.name, rate: rate, behind: behind}}
		for range sp.runs {
			r, rate := b.runOnce(k, st.cell, w, sp.post)
			st.runs = append(st.runs, r)
			if rate > 0 {
				st.rates = append(st.rates, rate)
			}
			if why := b.unhealthy(); why != "" {
				// A split or a broken rollback leaves replication stopped: later runs need a sound testbed.
				tb.Logf("%s: testbed rebuilt: %s", st.cell, why)
				stop()
				b.rebuild()
				start()
			}
		}
		out = append(out, st)
	}
	stop()
	return out
}

// runOnce switches over once, from the primary to the next replica, under the running writer, and checks.
func (b *splitBed) runOnce(k splitKind, cell splitCell, w *splitWriter, post time.Duration) (splitRun, float64) {
	tb := b.tb
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	x := b.primary
	y, other := b.next()
	if w != nil {
		w.setOrder([]string{x.Name, y.Name, other.Name})
	}
	var r splitRun
	problem := func(format string, args ...any) { r.problems = append(r.problems, fmt.Sprintf(format, args...)) }

	// Writes must be landing on x before the switchover.
	rateFrom := time.Now()
	before := b.landed(ctx, k, w, x, rateFrom)
	minAcks := max(3, cell.rate/10)
	deadline := time.Now().Add(10 * time.Second)
	for b.landed(ctx, k, w, x, rateFrom)-before < minAcks {
		if time.Now().After(deadline) {
			problem("fewer than %d writes landed on %s in 10s before the switchover", minAcks, x.Name)
			r.outcome = "no writes"
			return r, 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	rate := float64(b.landed(ctx, k, w, x, rateFrom)-before) / time.Since(rateFrom).Seconds()
	if cell.behind {
		if err := b.exec(ctx, y, "STOP SLAVE SQL_THREAD"); err != nil {
			tb.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := b.exec(ctx, y, "START SLAVE SQL_THREAD"); err != nil {
			tb.Fatal(err)
		}
	}
	start := time.Now()
	// The library's defaults: nothing exempt from the fence (the shared helper exempts root and dbstate's own
	// account for the tests that are not about fencing).
	_, audit, err := switchover(tb, b.c, x, y, dbstate.SwitchoverOptions{NeverLock: []dbstate.Account{}}, nil)
	end := time.Now()
	r.total = end.Sub(start)
	// The writers go on: a fence that lets go too early shows now. The event runs once a second: give it
	// the time to start on the new primary.
	if k.event {
		post = max(post, 2*time.Second)
	}
	time.Sleep(post)

	// Who is primary now, and was that what the switchover said? Refused or rolled back, x must be the
	// primary of the original topology again.
	want := y
	var re *dbstate.RefusalError
	var ee *dbstate.ExecError
	switch {
	case err == nil:
		r.outcome = "switched"
	case errors.As(err, &re):
		r.outcome, want = "refused", x
	case errors.As(err, &ee) && ee.RolledBack:
		r.outcome, want = "rolled back", x
	case errors.As(err, &ee) && ee.PastPointOfNoReturn:
		r.outcome = "failed past the point of no return"
		problem("neither switched, refused nor rolled back: %v", err)
	default:
		r.outcome, want = "failed", x
		problem("neither switched, refused nor rolled back: %v", err)
	}
	if err != nil {
		r.note = err.Error()
	}
	writable := b.writable(ctx)
	if len(writable) != 1 || writable[0] != want.Name {
		problem("%s (err %v), but writable: %v (want only %s)", r.outcome, err, writable, want.Name)
	}
	r.split, r.lost = b.checkData(ctx, k, w, want, problem)

	// The window: the longest time without an acknowledged write, from the last one before the switchover
	// to the end of the writing after it.
	r.window = b.window(ctx, k, w, want, start, end.Add(post))

	if k.event && r.outcome == "switched" {
		b.checkEventMoved(ctx, x, y, end, problem)
	}
	if len(writable) == 1 {
		b.primary = b.byName(writable[0])
	}
	// The application moves to the primary, and only to it, before the operator lifts what the fence kept on the
	// demoted one: a writer that bypasses read_only and still tries the demoted primary (first, or after a
	// refusal) would split it again once it is unlocked. Outside a switchover nothing fences the replicas.
	if w != nil {
		w.setOrder([]string{b.primary.Name})
	}
	b.lift(ctx, audit, problem)
	return r, rate
}

// landed counts the writes that landed on in since since: the writer's acks, or the event's rows.
func (b *splitBed) landed(ctx context.Context, k splitKind, w *splitWriter, in *dbtest.Instance, since time.Time) int {
	if !k.event {
		n := 0
		for _, a := range w.Acks() {
			if a.via == in.Name && a.at.After(since) {
				n++
			}
		}
		return n
	}
	n := 0
	b.each(ctx, in, "SELECT COUNT(*) FROM test.m WHERE via=@@server_id AND at_us >= ?", func(rows *sql.Rows) error {
		return rows.Scan(&n)
	}, since.UnixMicro())
	return n
}

// writable lists the instances with read_only=0.
func (b *splitBed) writable(ctx context.Context) []string {
	var out []string
	for _, in := range b.insts {
		v, err := b.c.Vars(ctx, in.Addr())
		if err == nil && !v.ReadOnly {
			out = append(out, in.Name)
		}
	}
	return out
}

// checkData checks that nothing split and nothing acknowledged is missing from p, the primary now: every other
// instance replicates from p with no error and has logged nothing that p lacks, and p has every acknowledged
// write (for the event: every row that any instance has).
func (b *splitBed) checkData(ctx context.Context, k splitKind, w *splitWriter, p *dbtest.Instance, problem func(string, ...any)) (split bool, lost int) {
	pv, err := b.c.Vars(ctx, p.Addr())
	if err != nil {
		problem("read %s: %v", p.Name, err)
		return true, 0
	}
	for _, in := range b.insts {
		if in == p {
			continue
		}
		if err := b.c.WaitApplied(ctx, in.Addr(), pv.GTIDBinlogPos, 5*time.Second); err != nil {
			problem("%s did not catch up with %s: %v", in.Name, p.Name, err)
		}
	}
	var acked map[uint64]string // seq -> where it landed
	if !k.event {
		acks := w.Acks()
		acked = make(map[uint64]string, len(acks))
		for _, a := range acks {
			acked[uint64(a.seq)] = a.via
		}
	}
	// Read the others first, then p: a position of theirs that is not split is in p's by then.
	others := map[string]map[uint64]splitRow{}
	for _, in := range b.insts {
		if in == p {
			continue
		}
		st, err := b.c.ReplicaStatus(ctx, in.Addr())
		switch {
		case err != nil:
			problem("%s: %v", in.Name, err)
			split = true
		case st == nil:
			problem("%s does not replicate", in.Name)
			split = true
		case st.MasterPort != p.Port || !st.Healthy() || st.LastSQLErrno != 0 || st.LastIOErrno != 0:
			problem("%s replication: master port %d (want %s's %d) io=%s sql=%s errno sql=%d io=%d %s%s", in.Name, st.MasterPort,
				p.Name, p.Port, st.IORunning, st.SQLRunning, st.LastSQLErrno, st.LastIOErrno, st.LastSQLError, st.LastIOError)
			split = true
		}
		v, err := b.c.Vars(ctx, in.Addr())
		if err != nil {
			problem("%s: %v", in.Name, err)
			continue
		}
		if k.event {
			if others[in.Name], err = b.seqs(ctx, in); err != nil {
				problem("%s rows: %v", in.Name, err)
			}
		}
		pv, err := b.c.Vars(ctx, p.Addr())
		if err != nil {
			problem("read %s: %v", p.Name, err)
			continue
		}
		if !pv.GTIDBinlogPos.Contains(v.GTIDBinlogPos) {
			problem("split: %s has logged %s, %s (the primary) only %s", in.Name, v.GTIDBinlogPos, p.Name, pv.GTIDBinlogPos)
			split = true
		}
	}
	have, err := b.seqs(ctx, p)
	if err != nil {
		problem("%s rows: %v", p.Name, err)
		return split, 0
	}
	missingBy := map[string]int{}
	if k.event {
		for name, rows := range others {
			for seq := range rows {
				if _, ok := have[seq]; !ok {
					missingBy[name]++
				}
			}
		}
	} else {
		for seq, via := range acked {
			if _, ok := have[seq]; !ok {
				missingBy[via]++
			}
		}
	}
	for _, name := range slices.Sorted(mapKeys(missingBy)) {
		lost += missingBy[name]
		problem("lost: %d writes that %s acknowledged (committed) are missing from %s, the primary now", missingBy[name], name, p.Name)
	}
	return split, lost
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// window is the longest time without a write landing, from the last one before from to the last one before to.
func (b *splitBed) window(ctx context.Context, k splitKind, w *splitWriter, p *dbtest.Instance, from, to time.Time) time.Duration {
	var times []time.Time
	if k.event {
		err := b.each(ctx, p, "SELECT at_us FROM test.m WHERE at_us BETWEEN ? AND ? ORDER BY at_us", func(rows *sql.Rows) error {
			var us int64
			err := rows.Scan(&us)
			times = append(times, time.UnixMicro(us))
			return err
		}, from.Add(-2*time.Second).UnixMicro(), to.UnixMicro())
		if err != nil {
			return 0
		}
	} else {
		for _, a := range w.Acks() {
			times = append(times, a.at)
		}
		sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	}
	var longest time.Duration
	var prev time.Time
	for _, at := range times {
		if at.After(to) {
			break
		}
		if !at.Before(from) && !prev.IsZero() {
			longest = max(longest, at.Sub(prev))
		}
		prev = at
	}
	if !prev.IsZero() && prev.Before(to) {
		longest = max(longest, to.Sub(prev)) // still nothing at the end
	}
	return longest
}

// checkEventMoved checks that the event runs on the new primary y after the switchover, and no longer on x.
// When it does not run on y, it enables it there (so that the next cells still have a writer) and says so.
func (b *splitBed) checkEventMoved(ctx context.Context, x, y *dbtest.Instance, end time.Time, problem func(string, ...any)) {
	if n := b.landed(ctx, splitKind{event: true}, nil, y, end); n == 0 {
		status := "(none)"
		b.each(ctx, y, "SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA='test' AND EVENT_NAME='split_writer'",
			func(rows *sql.Rows) error { return rows.Scan(&status) })
		problem("the event does not run on the new primary %s (status %s)", y.Name, status)
		if err := b.exec(ctx, y, "SET GLOBAL event_scheduler=ON", "ALTER DEFINER='root'@'localhost' EVENT test.split_writer ENABLE"); err != nil {
			problem("enable the event on %s: %v", y.Name, err)
		}
	}
}

// lift runs dbstate recover on the switchover's audit log, as an operator lifts what the fence kept on the
// demoted primary, then checks that no account is left locked and no event enabled on an instance that is not
// the primary. What it finds it reports and lifts itself, so that the next run starts clean.
func (b *splitBed) lift(ctx context.Context, audit string, problem func(string, ...any)) {
	if audit != "" {
		l, err := dbstate.ReadLeftovers(strings.NewReader(audit), "")
		switch {
		case err != nil:
			problem("read leftovers: %v", err)
		case l.Empty():
		default:
			plan, err := dbstate.PlanRecover(ctx, b.c, nil, l)
			if err == nil {
				err = plan.Execute(ctx, dbstate.ExecOptions{User: "test"})
			}
			if err != nil {
				problem("recover %s: %v", l, err)
			}
		}
	}
	for _, in := range b.insts {
		locked, err := b.lockedAccounts(ctx, in)
		if err != nil {
			problem("read locks on %s: %v", in.Name, err)
			continue
		}
		for _, a := range locked {
			if b.locked[a.String()] {
				continue
			}
			problem("still locked on %s after recover: %s", in.Name, a)
			u, _ := dbstate.QuoteString(a.User)
			h, _ := dbstate.QuoteString(a.Host)
			if err := b.exec(ctx, in, "SET SESSION sql_log_bin=0", "ALTER USER "+u+"@"+h+" ACCOUNT UNLOCK", "SET SESSION sql_log_bin=1"); err != nil {
				problem("unlock %s on %s: %v", a, in.Name, err)
			}
		}
	}
}

// unhealthy says why the testbed is not sound for the next run ("" when it is): it needs one writable instance,
// the two others replicating from it without error, and no problem that discovery finds (errant GTIDs...).
func (b *splitBed) unhealthy() string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := b.writable(ctx)
	if len(w) != 1 {
		return fmt.Sprintf("writable: %v", w)
	}
	b.primary = b.byName(w[0])
	topo, err := dbstate.Discover(ctx, b.c, []string{b.primary.Addr()}, dbstate.DiscoverOptions{})
	if err != nil {
		return err.Error()
	}
	if len(topo.Problems) != 0 {
		return fmt.Sprintf("problems: %v", topo.Problems)
	}
	for _, in := range b.insts {
		i := topo.Instances[in.Addr()]
		switch {
		case i == nil:
			return in.Name + " not found from " + b.primary.Name
		case i.Error != "":
			return in.Name + ": " + i.Error
		case in != b.primary && (i.Replication == nil || !i.Replication.Healthy() || i.Replication.MasterPort != b.primary.Port):
			return in.Name + " does not replicate from " + b.primary.Name + " or not healthy"
		}
	}
	return ""
}

// splitTable prints the stats of every cell: per cell the window and total time, median and max, the splits
// and the acknowledged writes lost, and the outcomes.
func splitTable(stats []*splitStats) string {
	var t strings.Builder
	fmt.Fprintf(&t, "\n%-16s %5s %-9s %4s %10s %10s %10s %10s %6s %6s %5s %s\n", "writer", "rate", "candidate", "runs",
		"win_med_ms", "win_max_ms", "tot_med_ms", "tot_max_ms", "splits", "lost", "fail", "outcomes (measured writes/s)")
	for _, s := range stats {
		var wins, tots []time.Duration
		splits, lost, fail := 0, 0, 0
		outcomes := map[string]int{}
		for _, r := range s.runs {
			if r.outcome == "switched" {
				wins, tots = append(wins, r.window), append(tots, r.total)
			}
			if r.split {
				splits++
			}
			lost += r.lost
			if len(r.problems) > 0 {
				fail++
			}
			outcomes[r.outcome]++
		}
		lag := "caught-up"
		if s.cell.behind {
			lag = "1s-behind"
		}
		stat := func(ds []time.Duration, f func([]time.Duration) time.Duration) string {
			if len(ds) == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f", ms(f(ds)))
		}
		var oc []string
		for _, o := range slices.Sorted(mapKeys(outcomes)) {
			oc = append(oc, fmt.Sprintf("%s %d", o, outcomes[o]))
		}
		measured := "-"
		if len(s.rates) > 0 {
			sort.Float64s(s.rates)
			measured = fmt.Sprintf("%.0f", s.rates[len(s.rates)/2])
		}
		fmt.Fprintf(&t, "%-16s %5d %-9s %4d %10s %10s %10s %10s %6d %6d %5d %s (%s)\n", s.cell.kind, s.cell.rate, lag, len(s.runs),
			stat(wins, median), stat(wins, maxOf), stat(tots, median), stat(tots, maxOf), splits, lost, fail, strings.Join(oc, ", "), measured)
	}
	return t.String()
}

// TestSwitchoverSplitMatrix runs every cell of the split matrix once (see the top of this file); make bench runs
// each 30 times (BenchmarkSplitMatrix).
func TestSwitchoverSplitMatrix(t *testing.T) {
	t.Parallel()
	stats, rebuilds := runSplitMatrix(t, splitPlan{runs: 1, post: time.Second, againOnOwnRefusal: true}, splitKinds)
	t.Logf("%stestbed rebuilt %d times after a cell broke it", splitTable(stats), rebuilds)
	for _, s := range stats {
		t.Run(s.cell.String(), func(t *testing.T) {
			for _, n := range s.notes() {
				t.Log(n)
			}
			for _, f := range s.failed() {
				t.Error(f)
			}
		})
	}
}

// TestOwnRefusal: only a cell of dbstate's own login whose every failed run was refused by promote's last look
// may run again (splitPlan.againOnOwnRefusal); a split, a loss without that refusal, or another writer kind
// may not.
func TestOwnRefusal(t *testing.T) {
	refused := splitRun{outcome: "failed", problems: []string{"switchover: step promote failed: ...: a writer is not fenced; rollback NOT VERIFIED", "lost: 6 writes"}}
	split := splitRun{outcome: "switched", problems: []string{"split: both primaries took writes"}}
	ok := splitRun{outcome: "switched"}
	for _, tt := range []struct {
		name string
		s    splitStats
		want bool
	}{
		{"own login, refused", splitStats{cell: splitCell{kind: ownKind}, runs: []splitRun{refused}}, true},
		{"own login, refused once, passed once", splitStats{cell: splitCell{kind: ownKind}, runs: []splitRun{ok, refused}}, true},
		{"own login, passed", splitStats{cell: splitCell{kind: ownKind}, runs: []splitRun{ok}}, false},
		{"own login, a split", splitStats{cell: splitCell{kind: ownKind}, runs: []splitRun{refused, split}}, false},
		{"another kind, refused", splitStats{cell: splitCell{kind: "other ALL"}, runs: []splitRun{refused}}, false},
	} {
		if got := tt.s.ownRefusal(); got != tt.want {
			t.Errorf("%s: ownRefusal = %v, want %v", tt.name, got, tt.want)
		}
	}
}
