package gossip_test

import (
	"errors"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// faultNet is an in-memory network for memberlist with fault injection: partitions, dropped, duplicated and
// delayed (so reordered) packets, and nodes that vanish. It also judges, for the HTTP content fetches between
// nodes, whether two nodes can reach each other. Decisions come from one seeded random source.
type faultNet struct {
	mu       sync.Mutex
	rng      *rand.Rand
	byAddr   map[string]*faultTransport
	group    map[string]int // node name -> partition group; nodes talk only within a group
	drop     float64        // probability a packet is lost
	dup      float64        // probability a packet is delivered twice
	maxDelay time.Duration  // packets are delayed uniformly up to this (reordering them)
	slow     map[string]time.Duration
	next     int
	apiNode  map[string]string // API host:port -> node name
}

func newFaultNet(seed int64) *faultNet {
	return &faultNet{rng: rand.New(rand.NewSource(seed)), byAddr: map[string]*faultTransport{},
		group: map[string]int{}, slow: map[string]time.Duration{}, apiNode: map[string]string{}}
}

// transport returns a new transport for node name.
func (n *faultNet) transport(name string) *faultTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next++
	t := &faultTransport{net: n, name: name, addr: "127.0.0.1:" + strconv.Itoa(20000+n.next),
		packets: make(chan *memberlist.Packet, 1024), streams: make(chan net.Conn, 64), done: make(chan struct{})}
	n.byAddr[t.addr] = t
	return t
}

// partition splits the nodes into groups; nodes not named stay in group 0.
func (n *faultNet) partition(groups ...[]string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = map[string]int{}
	for i, g := range groups {
		for _, name := range g {
			n.group[name] = i + 1
		}
	}
}

func (n *faultNet) heal() { n.partition() }

func (n *faultNet) setFaults(drop, dup float64, maxDelay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop, n.dup, n.maxDelay = drop, dup, maxDelay
}

// connected reports whether from can reach to. Callers hold n.mu.
func (n *faultNet) connected(from, to string) bool { return n.group[from] == n.group[to] }

func (n *faultNet) send(from *faultTransport, b []byte, addr string) {
	n.mu.Lock()
	dest := n.byAddr[addr]
	if dest == nil || !n.connected(from.name, dest.name) || n.rng.Float64() < n.drop {
		n.mu.Unlock()
		return
	}
	copies := 1
	if n.rng.Float64() < n.dup {
		copies = 2
	}
	delays := make([]time.Duration, copies)
	for i := range delays {
		delays[i] = n.slow[from.name] + n.slow[dest.name]
		if n.maxDelay > 0 {
			delays[i] += time.Duration(n.rng.Int63n(int64(n.maxDelay)))
		}
	}
	n.mu.Unlock()
	for _, d := range delays {
		pkt := &memberlist.Packet{Buf: append([]byte(nil), b...), From: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: from.port()}, Timestamp: time.Now()}
		deliver := func() {
			select {
			case dest.packets <- pkt:
			case <-dest.done:
			default: // a full receive buffer drops, as UDP does
			}
		}
		if d == 0 {
			deliver()
		} else {
			time.AfterFunc(d, deliver)
		}
	}
}

// fetcher returns the HTTP client node `from` uses to fetch content from other nodes: requests to a node on
// the other side of a partition fail as a refused connection would.
func (n *faultNet) fetcher(from string) *partitionFetcher {
	return &partitionFetcher{net: n, from: from}
}

func (n *faultNet) registerAPI(apiURL, node string) {
	u, _ := url.Parse(apiURL)
	n.mu.Lock()
	n.apiNode[u.Host] = node
	n.mu.Unlock()
}

type partitionFetcher struct {
	net  *faultNet
	from string
}

func (f *partitionFetcher) Do(req *http.Request) (*http.Response, error) {
	f.net.mu.Lock()
	to, known := f.net.apiNode[req.URL.Host]
	ok := known && f.net.connected(f.from, to)
	f.net.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("dial %s: connection refused (partitioned)", req.URL.Host)
	}
	return http.DefaultClient.Do(req)
}

// faultTransport is one node's memberlist transport on a faultNet.
type faultTransport struct {
	net     *faultNet
	name    string
	addr    string
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
}

var _ memberlist.NodeAwareTransport = (*faultTransport)(nil)

func (t *faultTransport) port() int {
	_, p, _ := net.SplitHostPort(t.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (t *faultTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1), t.port(), nil
}

func (t *faultTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.isShutdown() {
		return time.Now(), nil // a crashed node sends nothing; memberlist may still try until it notices
	}
	t.net.send(t, b, addr)
	return time.Now(), nil
}

func (t *faultTransport) isShutdown() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func (t *faultTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

func (t *faultTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *faultTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.isShutdown() {
		return nil, errors.New("transport shut down")
	}
	t.net.mu.Lock()
	dest := t.net.byAddr[addr]
	ok := dest != nil && t.net.connected(t.name, dest.name)
	delay := t.net.slow[t.name]
	if dest != nil {
		delay += t.net.slow[dest.name]
	}
	t.net.mu.Unlock()
	if !ok {
		return nil, errors.New("connection refused (partitioned or gone)")
	}
	time.Sleep(delay)
	a, b := net.Pipe()
	select {
	case dest.streams <- b:
		return a, nil
	case <-dest.done:
		return nil, errors.New("connection refused (shut down)")
	case <-time.After(timeout):
		return nil, errors.New("dial timeout")
	}
}

func (t *faultTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

func (t *faultTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *faultTransport) IngestPacket(conn net.Conn, addr net.Addr, now time.Time, shouldClose bool) error {
	return errors.New("not supported")
}

func (t *faultTransport) IngestStream(conn net.Conn) error { return errors.New("not supported") }

func (t *faultTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.net.mu.Lock()
		delete(t.net.byAddr, t.addr)
		t.net.mu.Unlock()
	})
	return nil
}
