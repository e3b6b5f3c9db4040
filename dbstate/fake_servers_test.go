package dbstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// fakeServers is a small in-memory Servers for the tests of single steps: each instance has variables and a
// replica status that the statements dbstate sends change as a server would, and faults are injected by
// statement. It records every statement as "addr: statement".
type fakeServers struct {
	mu     sync.Mutex
	vars   map[string]*Vars
	status map[string]*ReplicaStatus
	// varsAfter, when set for an address, replaces its variables from the n-th read on (fault injection:
	// "X logged something meanwhile").
	varsAfter map[string]struct {
		n int
		v Vars
	}
	reads   map[string]int
	fail    map[string]error // "addr: statement", "addr: vars", "addr: status", "addr: wait", "addr: lock 'u'@'h'"
	writers *FenceInfo
	locked  map[Account]bool
	events  map[string][]Event // ENABLED events by address
	log     []string
	privs   map[string]*Privileges // default: ALL PRIVILEGES
	// longWrites is what LongWrites finds on every instance (until KillSessions).
	longWrites []LongWrite
	// longWritesSeq, when set, is what successive LongWrites calls find (the last one repeats); lwCalls counts
	// the calls.
	longWritesSeq [][]LongWrite
	lwCalls       int
	// blockWait makes WaitApplied wait until its ctx ends (a wait that never completes by itself).
	blockWait bool
}

var _ Servers = (*fakeServers)(nil)

// newFake has a writable primary x ("x:1") and replicas of it, all at 0-1-10.
func newFake(replicas ...string) *fakeServers {
	f := &fakeServers{vars: map[string]*Vars{}, status: map[string]*ReplicaStatus{}, reads: map[string]int{},
		fail: map[string]error{}, privs: map[string]*Privileges{}, locked: map[Account]bool{}, writers: &FenceInfo{},
		varsAfter: map[string]struct {
			n int
			v Vars
		}{}}
	pos := MustParsePosition("0-1-10")
	f.vars["x:1"] = &Vars{ServerID: 1, Version: "10.11.19-MariaDB", LogBin: true, LogSlaveUpdates: true, BinlogFormat: "ROW",
		GTIDBinlogPos: pos, GTIDCurrentPos: pos, Port: 1}
	for k, r := range replicas {
		f.vars[r] = &Vars{ServerID: uint32(k + 2), Version: "10.11.19-MariaDB", ReadOnly: true, LogBin: true, LogSlaveUpdates: true,
			BinlogFormat: "ROW", GTIDBinlogPos: pos, GTIDSlavePos: pos, GTIDCurrentPos: pos, Port: 1}
		f.status[r] = &ReplicaStatus{MasterHost: "x", MasterPort: 1, IORunning: "Yes", SQLRunning: "Yes", UsingGTID: "Slave_Pos", SecondsBehind: new(int64)}
	}
	return f
}

func (f *fakeServers) record(addr, what string) error {
	f.log = append(f.log, addr+": "+what)
	if err := f.fail[addr+": "+what]; err != nil {
		return fmt.Errorf("%s: %s: %w", addr, what, err)
	}
	return nil
}

// statements returns the recorded statements, joined by "; ".
func (f *fakeServers) statements() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.log, "; ")
}

func (f *fakeServers) ReadInstance(ctx context.Context, addr string) *Instance {
	v, err := f.Vars(ctx, addr)
	if err != nil {
		return &Instance{Addr: addr, Error: err.Error()}
	}
	in := &Instance{Addr: addr, Vars: *v}
	st, _ := f.ReplicaStatus(ctx, addr)
	if st != nil {
		in.Replication, in.Master = st, st.MasterAddr()
	}
	return in
}

func (f *fakeServers) Vars(_ context.Context, addr string) (*Vars, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[addr+": vars"]; err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	v, ok := f.vars[addr]
	if !ok {
		return nil, fmt.Errorf("%s: no such instance", addr)
	}
	f.reads[addr]++
	if a, ok := f.varsAfter[addr]; ok && f.reads[addr] >= a.n {
		*v = a.v
	}
	c := *v
	return &c, nil
}

func (f *fakeServers) ReplicaStatus(_ context.Context, addr string) (*ReplicaStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[addr+": status"]; err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if st := f.status[addr]; st != nil {
		c := *st
		return &c, nil
	}
	return nil, nil
}

func (f *fakeServers) Exec(_ context.Context, addr string, stmts ...string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range stmts {
		if err := f.record(addr, s); err != nil {
			return err
		}
		v, st := f.vars[addr], f.status[addr]
		if strings.HasSuffix(s, " FOR SET GLOBAL read_only=1") { // bounded by max_statement_time
			s = "SET GLOBAL read_only=1"
		}
		switch s {
		case "SET GLOBAL read_only=1":
			v.ReadOnly = true
		case "SET GLOBAL read_only=0":
			v.ReadOnly = false
		case "STOP SLAVE":
			if st != nil {
				st.IORunning, st.SQLRunning = "No", "No"
			}
		case "START SLAVE":
			if st != nil {
				st.IORunning, st.SQLRunning = "Yes", "Yes"
			}
		case "RESET SLAVE ALL":
			delete(f.status, addr)
		}
	}
	return nil
}

func (f *fakeServers) ChangeMaster(_ context.Context, addr string, cm ChangeMaster, start bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(addr, cm.Redacted()); err != nil {
		return err
	}
	run := "No"
	if start {
		run = "Yes"
	}
	f.status[addr] = &ReplicaStatus{MasterHost: cm.Host, MasterPort: cm.Port, IORunning: run, SQLRunning: run, UsingGTID: "Slave_Pos"}
	return nil
}

func (f *fakeServers) WaitApplied(ctx context.Context, addr string, pos Position, timeout time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(addr, "wait "+pos.String()); err != nil {
		return err
	}
	if f.blockWait {
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		return ctx.Err()
	}
	if !f.vars[addr].GTIDCurrentPos.Contains(pos) {
		return fmt.Errorf("%s: %w %s after %v", addr, ErrWaitTimeout, pos, timeout)
	}
	return nil
}

func (f *fakeServers) Writers(_ context.Context, addr string, _ []Account) (*FenceInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record(addr, "writers"); err != nil {
		return nil, err
	}
	c := *f.writers
	return &c, nil
}

func (f *fakeServers) SetAccountsLocked(_ context.Context, addr string, accounts []Account, lock bool, done func(Account)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	verb := "unlock "
	if lock {
		verb = "lock "
	}
	for _, a := range accounts {
		if err := f.record(addr, verb+a.String()); err != nil {
			return err
		}
		f.locked[a] = lock
		if done != nil { // nil is allowed, as with Client
			f.mu.Unlock()
			done(a)
			f.mu.Lock()
		}
	}
	return nil
}

func (f *fakeServers) KillClientSessions(_ context.Context, addr string, _ time.Duration) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 0, f.record(addr, "kill sessions")
}

func (f *fakeServers) LongWrites(_ context.Context, addr string, _ time.Duration) (*LongWrites, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[addr+": long writes"]; err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	f.lwCalls++
	if n := len(f.longWritesSeq); n > 0 {
		return &LongWrites{Sessions: f.longWritesSeq[min(f.lwCalls, n)-1], LockInfo: true}, nil
	}
	return &LongWrites{Sessions: f.longWrites, LockInfo: true}, nil
}

func (f *fakeServers) KillSessions(_ context.Context, addr string, ids []int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if err := f.record(addr, fmt.Sprintf("KILL CONNECTION %d", id)); err != nil {
			return err
		}
	}
	f.longWrites = nil
	return nil
}

func (f *fakeServers) KillUserSessions(_ context.Context, addr string, users []string, _ time.Duration) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 0, f.record(addr, "kill sessions of "+strings.Join(users, ","))
}

func (f *fakeServers) LockOwnAccount(_ context.Context, addr string, own Account) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.locked[own] = true
	return 0, f.record(addr, "lock own "+own.String())
}

func (f *fakeServers) Events(_ context.Context, addr string) ([]Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events[addr]), f.record(addr, "events")
}

func (f *fakeServers) SetEventsEnabled(_ context.Context, addr string, events []Event, enable, local bool, done func(Event)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range events {
		if err := f.record(addr, fmt.Sprintf("event %s enable=%v local=%v", e, enable, local)); err != nil {
			return err
		}
		if done != nil {
			f.mu.Unlock()
			done(e)
			f.mu.Lock()
		}
	}
	return nil
}

func (f *fakeServers) Privileges(_ context.Context, addr string) (*Privileges, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := f.privs[addr]; ok {
		return p, nil
	}
	return &Privileges{Account: "dbstate@%", Held: map[string]bool{"ALL PRIVILEGES": true}}, nil
}

func (f *fakeServers) LoginPrivileges(_ context.Context, addr string, creds Credentials) (*Privileges, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail[addr+": login "+creds.User]; err != nil {
		return nil, err
	}
	return &Privileges{Account: creds.User + "@%", Held: map[string]bool{"REPLICATION SLAVE": true}}, nil
}

func (f *fakeServers) Credentials() Credentials { return Credentials{User: "dbstate"} }

// topology is what Discover would see of the fake.
func (f *fakeServers) topology() *Topology {
	t, err := Discover(context.Background(), f, f.addrs(), DiscoverOptions{})
	if err != nil {
		panic(err)
	}
	return t
}

func (f *fakeServers) addrs() []string {
	var out []string
	for a := range f.vars {
		out = append(out, a)
	}
	return out
}

var errDenied = errors.New("Error 1227 (42000): Access denied; you need (at least one of) the SUPER, READ_ONLY ADMIN privilege(s) for this operation")
