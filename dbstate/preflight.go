package dbstate

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// checklist collects the preflight checks of one operation, passed and failed, in the order they ran.
type checklist struct {
	op      string
	checks  []PreflightCheck
	reasons []error
	known   bool // the instances the operation names were found and read: live checks can follow
}

func (l *checklist) pass(name, format string, args ...any) {
	l.checks = append(l.checks, PreflightCheck{Name: name, Passed: true, Detail: fmt.Sprintf(format, args...)})
}

// fail records a failed check: the reason wraps sentinel with detail.
func (l *checklist) fail(name string, sentinel error, detail string) {
	r := because(sentinel, detail)
	l.reasons = append(l.reasons, r)
	l.checks = append(l.checks, PreflightCheck{Name: name, Detail: r.Error()})
}

// failed reports whether a check has failed so far.
func (l *checklist) failed() bool { return len(l.reasons) > 0 }

// result returns the passed checks, or a *RefusalError with every check and reason.
func (l *checklist) result() ([]PreflightCheck, error) {
	if l.failed() {
		return nil, &RefusalError{Op: l.op, Reasons: l.reasons, Checks: l.checks}
	}
	return l.checks, nil
}

// pair is the preamble that move and switchover share: both instances are in t, were read, and differ. It
// returns them, or false after recording why not.
func (l *checklist) pair(t *Topology, roleA, a, roleB, b string) (*Instance, *Instance, bool) {
	ia, ib := t.Instances[a], t.Instances[b]
	for _, e := range []struct {
		role, addr string
		in         *Instance
	}{{roleA, a, ia}, {roleB, b, ib}} {
		switch {
		case e.in == nil:
			l.fail(e.role+" known", ErrUnknownInstance, e.addr)
		case e.in.Denied:
			l.fail(e.role+" readable", ErrMissingPrivilege, e.addr+": "+e.in.Error)
		case e.in.Error != "":
			l.fail(e.role+" readable", ErrUnreachable, e.addr+": "+e.in.Error)
		default:
			l.pass(e.role+" readable", "%s answered", e.addr)
		}
	}
	if l.failed() {
		return nil, nil, false
	}
	if a == b {
		l.fail("two instances", ErrSameInstance, a)
		return nil, nil, false
	}
	return ia, ib, true
}

// allReadable fails for each instance of t that could not be read (a replica that is left out of a plan would
// keep replicating from the old primary), except those in allowed, which pass as left behind.
func (l *checklist) allReadable(t *Topology, allowed []string) {
	bad := 0
	for _, a := range t.sortedAddrs() {
		in := t.Instances[a]
		if in.Error != "" && slices.ContainsFunc(allowed, func(x string) bool { return t.Resolve(x) == a }) {
			l.pass("every instance readable", "%s is LEFT BEHIND (allowed unreachable): it is not moved and keeps what it had: %s", a, in.Error)
			continue
		}
		if in.Error != "" {
			bad++
			sentinel := ErrUnreachable
			if in.Denied {
				sentinel = ErrMissingPrivilege
			}
			l.fail("every instance readable", sentinel, a+": "+in.Error)
		}
	}
	if bad == 0 {
		l.pass("every instance readable", "all %d instances of the tree answered", len(t.Instances))
	}
}

// checkErrantLive reads every replica's gtid_binlog_pos, then the primary's, and fails for each replica with a
// GTID that the primary lacks, compared per domain by sequence number whatever the server id (see
// ErrantAgainst). Reading the primary last makes a replica that is merely ahead of an older read impossible.
// unchecked are instances left out because they could not be read (allowed unreachable): the check names them.
func checkErrantLive(ctx context.Context, l *checklist, s Servers, primary string, replicas, unchecked []string) {
	got := map[string]Position{}
	var unread []string
	for _, r := range replicas {
		v, err := s.Vars(ctx, r)
		if err != nil {
			unread = append(unread, r+" ("+err.Error()+")")
			continue
		}
		got[r] = v.GTIDBinlogPos
	}
	pv, err := s.Vars(ctx, primary)
	if err != nil {
		l.fail("no errant GTIDs (live)", ErrUnreachable, primary+": "+err.Error())
		return
	}
	pos := pv.GTIDBinlogPos.Merge(pv.GTIDCurrentPos)
	bad := false
	for _, r := range replicas {
		if p, ok := got[r]; ok {
			if e := ErrantAgainst(p, pos); len(e) > 0 {
				bad = true
				l.fail("no errant GTIDs (live)", ErrErrantGTID, fmt.Sprintf("%s has %s, which %s (%s) lacks", r, Position(e), primary, pos))
			}
		}
	}
	if len(unread) > 0 {
		l.fail("no errant GTIDs (live)", ErrUnreachable, "could not check "+strings.Join(unread, ", "))
		return
	}
	if !bad {
		var not string
		if len(unchecked) > 0 {
			not = "; NOT CHECKED, unreadable (allowed unreachable): " + strings.Join(unchecked, ", ")
		}
		l.pass("no errant GTIDs (live)", "%d replicas, read before %s, have nothing it lacks (per domain, whatever the server id)%s", len(replicas), primary, not)
	}
}

// writeChecks prints checks one a line, "ok" or "FAIL" first.
func writeChecks(w io.Writer, checks []PreflightCheck) error {
	var b strings.Builder
	for _, c := range checks {
		mark := "ok"
		if !c.Passed {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %-4s %-22s %s\n", mark, c.Name, c.Detail)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
