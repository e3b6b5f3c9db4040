package dbstate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestIsReadStatement(t *testing.T) {
	for _, tc := range []struct {
		name, stmt string
		read       bool
	}{
		{"select", "SELECT * FROM t", true},
		{"lower case, blanks first", "  \n\tselect sleep(30)", true},
		{"show", "SHOW PROCESSLIST", true},
		{"with", "WITH x AS (SELECT 1) SELECT * FROM x", true},
		{"parenthesised", "(SELECT 1) UNION (SELECT 2)", true},
		{"explain", "EXPLAIN UPDATE t SET a = 1", true},
		{"leading comment", "/* app=web */ SELECT 1", true},
		{"two comments", "/* a */ /*b*/SELECT 1", true},
		{"select for update locks rows", "SELECT * FROM t WHERE id = 1 FOR UPDATE", false},
		{"select lock in share mode", "select * from t lock in share mode", false},
		{"select into a table", "SELECT a INTO @x FROM t", false},
		{"select into outfile", "SELECT * FROM t\nINTO OUTFILE '/tmp/x'", false},
		{"update", "UPDATE t SET v = SLEEP(30)", false},
		{"insert select", "INSERT INTO t SELECT * FROM u", false},
		{"comment then write", "/* SELECT */ DELETE FROM t", false},
		{"unterminated comment", "/* SELECT 1", false},
		{"alter", "ALTER TABLE t ADD COLUMN c INT", false},
		{"call may write", "CALL p()", false},
		{"set statement for a write", "SET STATEMENT max_statement_time=1 FOR UPDATE t SET a=1", false},
		{"empty", "", false},
		{"selected as a prefix of a longer word", "SELECTED", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsReadStatement(tc.stmt); got != tc.read {
				t.Fatalf("IsReadStatement(%q) = %v, want %v", tc.stmt, got, tc.read)
			}
		})
	}
}

func FuzzIsReadStatement(f *testing.F) {
	for _, s := range []string{"SELECT 1", "/* x */ select * from t for update", "UPDATE t SET a=1", "(", "/*", "*/", "WITH a AS (SELECT 1) DELETE FROM t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		read := IsReadStatement(s)
		// A leading comment changes nothing; a statement that locks rows never reads only.
		if IsReadStatement("/* c */ "+s) != read {
			t.Fatalf("a leading comment changes %q", s)
		}
		if read && (IsReadStatement(s+" FOR UPDATE") || IsReadStatement(s+" INTO @x")) {
			t.Fatalf("%q with FOR UPDATE or INTO counts as a read", s)
		}
	})
}

func TestWindowReport(t *testing.T) {
	w := &window{bound: time.Second}
	if w.report() != nil {
		t.Fatal("a window that never opened reports")
	}
	w.start = time.Now().Add(-1500 * time.Millisecond)
	w.end = w.start.Add(1500 * time.Millisecond)
	if r := strings.Join(w.report(), ""); !strings.Contains(r, "WARNING") || !strings.Contains(r, "1.5s, beyond its bound of 1s") {
		t.Fatalf("report: %s", r)
	}
	w.end = w.start.Add(12 * time.Millisecond)
	if r := strings.Join(w.report(), ""); r != "write-unavailability window: 12ms (bound 1s)" {
		t.Fatalf("report: %s", r)
	}
}

// A step in the window that outlives it fails, naming the bound, and ends the window's wait at once.
func TestWindowBoundsItsSteps(t *testing.T) {
	w := &window{bound: 100 * time.Millisecond}
	st := w.within(&Step{Name: "slow", Do: func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	}}, true)
	err := st.Do(context.Background())
	if !errors.Is(err, ErrWindowExceeded) || !strings.Contains(err.Error(), "100ms, --max-window") {
		t.Fatalf("err = %v", err)
	}
	if took, ok := w.took(); !ok || took < 100*time.Millisecond {
		t.Fatalf("took %v %v", took, ok)
	}
	// A caller's cancellation is not the window's bound.
	w = &window{bound: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.within(&Step{Do: func(ctx context.Context) error { return ctx.Err() }}, true).Do(ctx); errors.Is(err, ErrWindowExceeded) {
		t.Fatalf("err = %v", err)
	}
}

func TestLongWritesStepOnFake(t *testing.T) {
	lw := []LongWrite{{ID: 42, User: "app", Host: "10.0.0.1:5000", What: "statement", Age: 3 * time.Second, Info: "UPDATE t SET v = SLEEP(30)\x1b[2J"}}
	t.Run("refused, naming the session, cleaned for a terminal", func(t *testing.T) {
		f := newFake("y:1")
		f.longWrites = lw
		err := runStep(t, longWritesStep(f, "x:1", time.Second, false))
		if !errors.Is(err, ErrLongWrites) || !strings.Contains(err.Error(), "session 42 (app@10.0.0.1:5000): statement for 3s: UPDATE t SET v = SLEEP(30)") ||
			strings.Contains(err.Error(), "\x1b") {
			t.Fatalf("err = %q", err)
		}
		wantStatements(t, f, "")
	})
	t.Run("killed", func(t *testing.T) {
		f := newFake("y:1")
		f.longWrites = lw
		st := longWritesStep(f, "x:1", time.Second, true)
		if err := runStep(t, st); err != nil {
			t.Fatal(err)
		}
		wantStatements(t, f, "x:1: KILL CONNECTION 42")
		if !strings.Contains(st.Detail(), "session 42") {
			t.Fatalf("detail: %s", st.Detail())
		}
	})
	t.Run("planning refuses, or plans the kill", func(t *testing.T) {
		f := newFake("y:1")
		f.longWrites = lw
		o := SwitchoverOptions{Primary: "x:1", Candidate: "y:1", Replication: Credentials{User: "repl"}}
		if _, err := PlanSwitchover(context.Background(), f, f.topology(), o); !errors.Is(err, ErrLongWrites) {
			t.Fatalf("err = %v", err)
		}
		o.KillLongWrites = true
		p, err := PlanSwitchover(context.Background(), f, f.topology(), o)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		p.WriteText(&b)
		if !strings.Contains(b.String(), "will be killed right before read_only=1") || !strings.Contains(b.String(), "long-writes") {
			t.Fatalf("plan:\n%s", b.String())
		}
	})
}

// TestSettledLongWrites: a long write counts only if a second look finds the same session still at it: a commit
// that finished in between, or the next transaction of a pooled connection, does not refuse a switchover; a
// statement that holds on, or a LOCK TABLES session (whose idle time a statement resets), does. No second look
// when the first finds nothing.
func TestSettledLongWrites(t *testing.T) {
	stmt := LongWrite{ID: 7, User: "app", Host: "h:1", What: "statement", Age: 1100 * time.Millisecond}
	older := stmt
	older.Age += 250 * time.Millisecond
	younger := LongWrite{ID: 7, User: "app", Host: "h:1", What: "transaction", Age: 1050 * time.Millisecond}
	nextTrx := younger
	nextTrx.Age = 1010 * time.Millisecond
	lock := LongWrite{ID: 9, User: "app", Host: "h:2", What: "lock tables", Age: 5 * time.Second}
	lockBusy := lock
	lockBusy.Age = 0
	for _, tt := range []struct {
		name      string
		seq       [][]LongWrite
		want      []int64
		wantCalls int
	}{
		{"nothing: one look", [][]LongWrite{nil}, nil, 1},
		{"a commit that finished in between", [][]LongWrite{{stmt}, nil}, nil, 2},
		{"the next transaction of the same connection", [][]LongWrite{{younger}, {nextTrx}}, nil, 2},
		{"a statement that holds on", [][]LongWrite{{stmt}, {older}}, []int64{7}, 2},
		{"a LOCK TABLES session that ran a statement", [][]LongWrite{{lock}, {lockBusy}}, []int64{9}, 2},
		{"a session that became long only at the second look", [][]LongWrite{{lock}, {lock, stmt}}, []int64{9}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("y:1")
			f.longWritesSeq = tt.seq
			lw, err := settledLongWrites(context.Background(), f, "x:1", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, w := range lw.Sessions {
				got = append(got, w.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) || f.lwCalls != tt.wantCalls {
				t.Fatalf("sessions %v after %d looks, want %v after %d", got, f.lwCalls, tt.want, tt.wantCalls)
			}
		})
	}
	t.Run("planning is not refused for a write that finished", func(t *testing.T) {
		f := newFake("y:1")
		f.longWritesSeq = [][]LongWrite{{stmt}, nil}
		o := SwitchoverOptions{Primary: "x:1", Candidate: "y:1", Replication: Credentials{User: "repl"}}
		if _, err := PlanSwitchover(context.Background(), f, f.topology(), o); err != nil {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a cancelled context ends the wait", func(t *testing.T) {
		f := newFake("y:1")
		f.longWritesSeq = [][]LongWrite{{stmt}}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := settledLongWrites(ctx, f, "x:1", time.Second); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}
