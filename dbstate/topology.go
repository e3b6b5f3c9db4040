package dbstate

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Instance is what discovery learned about one server.
type Instance struct {
	Addr string `json:"addr"` // host:port, the instance's key (report_host and port when the seed was a socket)
	Vars
	// Replication is the SHOW SLAVE STATUS of the default connection; nil for an instance that replicates from
	// no one.
	Replication *ReplicaStatus `json:"replication,omitempty"`
	Master      string         `json:"master,omitempty"`   // Replication.MasterAddr(), "" for a root
	Replicas    []string       `json:"replicas,omitempty"` // from SHOW SLAVE HOSTS, sorted
	Error       string         `json:"error,omitempty"`    // set when the instance could not be read
	// Denied: the instance answered but refused a read for lack of a privilege (Error names it).
	Denied bool `json:"denied,omitempty"`
}

// Topology is the discovered replication tree (or forest) and what is wrong with it.
type Topology struct {
	Instances map[string]*Instance `json:"instances"`
	Roots     []string             `json:"roots"` // instances that replicate from no known instance, sorted
	// Aliases maps other names of an instance (a socket seed, a host name where others use an IP, localhost) to
	// its key in Instances.
	Aliases  map[string]string `json:"aliases,omitempty"`
	Problems []Problem         `json:"problems"`
	// Took is how long discovery took.
	Took time.Duration `json:"took_ns"`
}

func (t *Topology) alias(name, key string) {
	if name == key {
		return
	}
	if t.Aliases == nil {
		t.Aliases = map[string]string{}
	}
	t.Aliases[name] = key
}

// Resolve returns the key in Instances for an address as a user or a server wrote it: localhost is 127.0.0.1,
// and aliases found during discovery are followed. Unknown addresses come back normalized.
func (t *Topology) Resolve(addr string) string {
	if _, ok := t.Instances[addr]; ok {
		return addr
	}
	if k, ok := t.Aliases[addr]; ok {
		return k
	}
	if h, p, err := net.SplitHostPort(addr); err == nil {
		if port, err := strconv.Atoi(p); err == nil {
			n := NormalizeAddr(h, port)
			if k, ok := t.Aliases[n]; ok {
				return k
			}
			return n
		}
	}
	return addr
}

// ProblemKind names a diagnosis.
type ProblemKind string

// The diagnoses of Diagnose.
const (
	ProblemUnreachable   ProblemKind = "unreachable"
	ProblemPrivilege     ProblemKind = "missing-privilege"   // it answered, but dbstate's account may not read it
	ProblemBroken        ProblemKind = "replication-broken"  // a thread stopped with an error, or not connecting
	ProblemStopped       ProblemKind = "replication-stopped" // a thread stopped without an error
	ProblemLag           ProblemKind = "lag"
	ProblemMultiWritable ProblemKind = "multiple-writable"
	ProblemLoop          ProblemKind = "replication-loop"
	ProblemNoGTID        ProblemKind = "no-gtid"
	ProblemErrant        ProblemKind = "errant-gtid"
	ProblemNoBinlog      ProblemKind = "no-binlog" // a master without log_bin or a replica with replicas but no log_slave_updates
)

// Problem is one diagnosis on one instance.
type Problem struct {
	Instance string      `json:"instance"`
	Kind     ProblemKind `json:"kind"`
	Detail   string      `json:"detail"`
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %s", p.Instance, p.Kind, p.Detail) }

// DiagnoseOptions tune Diagnose.
type DiagnoseOptions struct {
	// MaxLag is the replication lag above which ProblemLag is reported. Zero means 10 s.
	MaxLag time.Duration
}

// Diagnose is pure: it fills t.Problems from the instances and returns them.
func Diagnose(t *Topology, opt DiagnoseOptions) []Problem {
	if opt.MaxLag <= 0 {
		opt.MaxLag = 10 * time.Second
	}
	var ps []Problem
	add := func(addr string, k ProblemKind, format string, args ...any) {
		ps = append(ps, Problem{Instance: addr, Kind: k, Detail: fmt.Sprintf(format, args...)})
	}
	var writable []string
	for _, addr := range t.sortedAddrs() {
		in := t.Instances[addr]
		if in.Error != "" {
			kind := ProblemUnreachable
			if in.Denied {
				kind = ProblemPrivilege
			}
			add(addr, kind, "%s", in.Error)
			continue
		}
		if !in.ReadOnly {
			writable = append(writable, addr)
		}
		if len(in.Replicas) > 0 && !in.LogBin {
			add(addr, ProblemNoBinlog, "has replicas but log_bin is OFF")
		}
		if len(in.Replicas) > 0 && in.Replication != nil && !in.LogSlaveUpdates {
			add(addr, ProblemNoBinlog, "intermediate master without log_slave_updates: its replicas miss upstream writes")
		}
		r := in.Replication
		if r == nil {
			continue
		}
		switch {
		case r.LastIOErrno != 0 || r.LastSQLErrno != 0:
			add(addr, ProblemBroken, "io=%s sql=%s io_error=%q sql_error=%q", r.IORunning, r.SQLRunning, r.LastIOError, r.LastSQLError)
		case r.IORunning == "No" && r.SQLRunning == "No":
			add(addr, ProblemStopped, "replication is stopped")
		case r.SQLRunning != "Yes":
			add(addr, ProblemStopped, "SQL thread is not running (io=%s)", r.IORunning)
		case r.IORunning != "Yes":
			add(addr, ProblemBroken, "IO thread is %s (cannot reach %s?)", r.IORunning, r.MasterAddr())
		}
		if lag, ok := r.Lag(); ok && lag > opt.MaxLag {
			add(addr, ProblemLag, "%v behind master beyond its delay of %ds (bound %v)", lag, r.SQLDelay, opt.MaxLag)
		}
		if !strings.EqualFold(r.UsingGTID, "Slave_Pos") && !strings.EqualFold(r.UsingGTID, "Current_Pos") {
			add(addr, ProblemNoGTID, "replicates by file and position (Using_Gtid=%s)", r.UsingGTID)
		}
		if m, ok := t.Instances[in.Master]; ok && m.Error == "" {
			if e := Errant(in.GTIDBinlogPos, in.ServerID, m.GTIDCurrentPos); len(e) > 0 {
				add(addr, ProblemErrant, "transactions its master %s does not have: %s", m.Addr, Position(e))
			}
		}
	}
	if len(writable) > 1 {
		for _, a := range writable {
			add(a, ProblemMultiWritable, "writable, as are %d other instances (%s)", len(writable)-1, strings.Join(writable, ", "))
		}
	}
	for _, loop := range t.loops() {
		add(loop[0], ProblemLoop, "replication loop (each replicates from the next): %s", strings.Join(append(loop, loop[0]), " -> "))
	}
	if ps == nil {
		ps = []Problem{} // "problems": [] in JSON
	}
	t.Problems = ps
	return ps
}

func (t *Topology) sortedAddrs() []string {
	out := make([]string, 0, len(t.Instances))
	for a := range t.Instances {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// loops returns each replication cycle once, starting at its smallest address.
func (t *Topology) loops() [][]string {
	seen := map[string]bool{}
	var out [][]string
	for _, start := range t.sortedAddrs() {
		var path []string
		onPath := map[string]int{}
		cur := start
		for cur != "" && !seen[cur] {
			if k, ok := onPath[cur]; ok {
				cyc := append([]string(nil), path[k:]...)
				min := 0
				for i := range cyc {
					if cyc[i] < cyc[min] {
						min = i
					}
				}
				out = append(out, append(cyc[min:], cyc[:min]...))
				break
			}
			onPath[cur] = len(path)
			path = append(path, cur)
			in, ok := t.Instances[cur]
			if !ok {
				break
			}
			cur = in.Master
		}
		for _, p := range path {
			seen[p] = true
		}
	}
	return out
}

// Children returns the known instances that replicate from addr, sorted.
func (t *Topology) Children(addr string) []string {
	var out []string
	for a, in := range t.Instances {
		if in.Master == addr {
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// Descendants returns every instance below addr (not addr itself), following Master links.
func (t *Topology) Descendants(addr string) []string {
	var out []string
	seen := map[string]bool{addr: true}
	queue := []string{addr}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, c := range t.Children(cur) {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// ProblemsOf returns the problems of one instance.
func (t *Topology) ProblemsOf(addr string) []Problem {
	var out []Problem
	for _, p := range t.Problems {
		if p.Instance == addr {
			out = append(out, p)
		}
	}
	return out
}

// WriteTree prints the topology as an indented tree, one instance a line, problems marked with "!!".
func (t *Topology) WriteTree(w io.Writer) error {
	var b strings.Builder
	printed := map[string]bool{}
	var walk func(addr string, depth int)
	walk = func(addr string, depth int) {
		indent := strings.Repeat("  ", depth)
		if printed[addr] {
			fmt.Fprintf(&b, "%s%s (already shown: loop)\n", indent, addr)
			return
		}
		printed[addr] = true
		in := t.Instances[addr]
		_, masterKnown := t.Instances[in.Master]
		fmt.Fprintf(&b, "%s%s\n", indent, in.summary(depth == 0, masterKnown))
		for _, p := range t.ProblemsOf(addr) {
			fmt.Fprintf(&b, "%s  !! %s: %s\n", indent, p.Kind, p.Detail)
		}
		for _, c := range t.Children(addr) {
			walk(c, depth+1)
		}
	}
	for _, r := range t.Roots {
		walk(r, 0)
	}
	for _, a := range t.sortedAddrs() { // instances in loops have no root
		if !printed[a] {
			walk(a, 0)
		}
	}
	n := len(t.Problems)
	fmt.Fprintf(&b, "%d instances, %d problems\n", len(t.Instances), n)
	_, err := io.WriteString(w, b.String())
	return err
}

func (in *Instance) summary(root, masterKnown bool) string {
	if in.Denied {
		return fmt.Sprintf("%s LACKS PRIVILEGE (dbstate's account may not read it)", in.Addr)
	}
	if in.Error != "" {
		return fmt.Sprintf("%s UNREACHABLE", in.Addr)
	}
	role := "replica"
	if in.Replication == nil {
		role = "primary"
	} else if root && masterKnown {
		role = "replica of " + in.Master + " (in a loop)"
	} else if root {
		role = "replica of " + in.Master + " (not found)"
	}
	rw := "ro"
	if !in.ReadOnly {
		rw = "rw"
	}
	s := fmt.Sprintf("%s [%s] server_id=%d %s %s binlog=%s gtid=%s", in.Addr, role, in.ServerID, rw,
		strings.SplitN(in.Version, "-", 2)[0], in.BinlogFormat, in.GTIDCurrentPos)
	if r := in.Replication; r != nil {
		s += fmt.Sprintf(" io=%s sql=%s lag=%s", r.IORunning, r.SQLRunning, r.LagString())
		if r.Delayed() {
			s += fmt.Sprintf(" delayed=%ds (intended: lag is counted beyond it)", r.SQLDelay)
		}
	}
	return s
}

// DiscoverOptions tune Discover.
type DiscoverOptions struct {
	// MaxInstances stops the crawl (an error) beyond this many instances. Zero means 1000.
	MaxInstances int
	// Parallel is how many instances are read at once. Zero means 8.
	Parallel int
	Diagnose DiagnoseOptions
}

// Discover crawls from the seeds: up through SHOW SLAVE STATUS, down through SHOW SLAVE HOSTS (which lists replicas
// whose IO thread is connected and that set report_host/report_port), reads every instance, and diagnoses the
// result. An unreachable instance is recorded with its error, not returned as an error. Instances are keyed by
// report_host:port (else the address they were reached at, localhost written 127.0.0.1); one server reached
// under several names (same server_id and port) is one instance, and Topology.Resolve maps the other names.
func Discover(ctx context.Context, r InstanceReader, seeds []string, opt DiscoverOptions) (*Topology, error) {
	start := time.Now()
	if opt.MaxInstances <= 0 {
		opt.MaxInstances = 1000
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 8
	}
	if len(seeds) == 0 {
		return nil, fmt.Errorf("discover: no seeds")
	}
	t := &Topology{Instances: map[string]*Instance{}}
	byID := map[uint32]string{}
	visited := map[string]bool{}
	frontier := append([]string(nil), seeds...)
	for len(frontier) > 0 {
		var batch []string
		for _, a := range frontier {
			if !visited[a] {
				visited[a] = true
				batch = append(batch, a)
			}
		}
		frontier = nil
		results := make([]*Instance, len(batch))
		var wg sync.WaitGroup
		sem := make(chan struct{}, opt.Parallel)
		for k, a := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				results[k] = r.ReadInstance(ctx, a)
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("discover: %w", err)
		}
		for k, in := range results {
			visited[in.Addr] = true
			if _, dup := t.Instances[in.Addr]; dup {
				if batch[k] != in.Addr {
					t.alias(batch[k], in.Addr)
				}
				continue
			}
			// One server reached under two names (an IP and a host name, say) is one instance.
			if in.Error == "" {
				if known, ok := byID[in.ServerID]; ok && t.Instances[known].Port == in.Port {
					t.alias(in.Addr, known)
					t.alias(batch[k], known)
					continue
				}
				byID[in.ServerID] = in.Addr
			}
			if batch[k] != in.Addr {
				t.alias(batch[k], in.Addr)
			}
			t.Instances[in.Addr] = in
			if len(t.Instances) > opt.MaxInstances {
				return nil, fmt.Errorf("discover: more than %d instances", opt.MaxInstances)
			}
			if in.Master != "" {
				frontier = append(frontier, in.Master)
			}
			frontier = append(frontier, in.Replicas...)
		}
	}
	for _, in := range t.Instances {
		if in.Master != "" {
			in.Master = t.Resolve(in.Master)
		}
		for k, r := range in.Replicas {
			in.Replicas[k] = t.Resolve(r)
		}
		sort.Strings(in.Replicas)
	}
	for a, in := range t.Instances {
		if _, ok := t.Instances[in.Master]; !ok {
			t.Roots = append(t.Roots, a)
		}
	}
	sort.Strings(t.Roots)
	Diagnose(t, opt.Diagnose)
	t.Took = time.Since(start)
	return t, nil
}

// ReadInstance reads one instance at addr (host:port or socket). Errors are recorded in Instance.Error.
func (c *Client) ReadInstance(ctx context.Context, addr string) *Instance {
	// A server that accepts connections but does not answer must not hang the crawl.
	ctx, cancel := context.WithTimeout(ctx, c.timeout+10*time.Second)
	defer cancel()
	in := &Instance{Addr: addr}
	db, err := c.DB(addr)
	if err == nil {
		err = readInto(ctx, db, in)
	}
	if err != nil {
		in.Error = err.Error()
		if isDenied(err) {
			in.Denied = true
			in.Error = "lacks privilege: " + in.Error
		}
		return in
	}
	// An instance is known by report_host:port when it sets report_host (the name SHOW SLAVE HOSTS gives its
	// master), else by the address it was reached at; a socket seed without report_host is 127.0.0.1:port.
	switch {
	case in.ReportHost != "":
		in.Addr = NormalizeAddr(in.ReportHost, in.Port)
	case strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "unix:"):
		in.Addr = NormalizeAddr("127.0.0.1", in.Port)
	default:
		if h, p, err := net.SplitHostPort(addr); err == nil {
			port, _ := strconv.Atoi(p)
			in.Addr = NormalizeAddr(h, port)
		}
	}
	return in
}

func readInto(ctx context.Context, q Querier, in *Instance) error {
	v, err := ReadVars(ctx, q)
	if err != nil {
		return err
	}
	in.Vars = *v
	if in.Replication, err = ReadReplicaStatus(ctx, q); err != nil {
		return err
	}
	if in.Replication != nil && in.Replication.MasterHost != "" {
		in.Master = in.Replication.MasterAddr()
	}
	hosts, err := ReadReplicaHosts(ctx, q)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		if h.Host != "" {
			in.Replicas = append(in.Replicas, h.Addr())
		}
	}
	sort.Strings(in.Replicas)
	return nil
}
