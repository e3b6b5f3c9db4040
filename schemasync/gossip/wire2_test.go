package gossip

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/schemasync/observation"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// TestCheckDigestBounds: every number and string of a digest at its bound is taken, and one past it is
// rejected, with the reason counted.
func TestCheckDigestBounds(t *testing.T) {
	recv := time.Unix(1_800_000_000, 0)
	const maxAge = 2 * time.Hour
	ahead := uint64(recv.Add(maxSeqAhead).UnixNano())
	ok := observation.Digest{Observer: "node1", Repository: "primary", Endpoint: "http://a/", Seq: uint64(recv.UnixNano()),
		Hash: observation.ContentHash(nil)}
	configured := func(repo, ep string) bool { return repo == "primary" && ep == "http://a/" }
	tests := []struct {
		name string
		mut  func(*observation.Digest)
		want string
	}{
		{"age 0", func(d *observation.Digest) { d.AgeMS = 0 }, ""},
		{"age at the bound", func(d *observation.Digest) { d.AgeMS = maxAge.Milliseconds() }, ""},
		{"age past the bound", func(d *observation.Digest) { d.AgeMS = maxAge.Milliseconds() + 1 }, "age"},
		{"age MaxInt64", func(d *observation.Digest) { d.AgeMS = math.MaxInt64 }, "age"},
		{"age MinInt64 (MaxUint64/2+1 on the wire)", func(d *observation.Digest) { d.AgeMS = math.MinInt64 }, "age"},
		{"seq 1", func(d *observation.Digest) { d.Seq = 1 }, ""},
		{"seq a day ahead (a clock a day off)", func(d *observation.Digest) { d.Seq = uint64(recv.Add(24 * time.Hour).UnixNano()) }, ""},
		{"seq at the bound", func(d *observation.Digest) { d.Seq = ahead }, ""},
		{"seq past the bound", func(d *observation.Digest) { d.Seq = ahead + 1 }, "seq"},
		{"seq MaxInt64", func(d *observation.Digest) { d.Seq = math.MaxInt64 }, "seq"},
		{"seq that wraps when continued", func(d *observation.Digest) { d.Seq = math.MaxUint64 }, "seq"},
		{"observer at the bound", func(d *observation.Digest) { d.Observer = strings.Repeat("n", maxNameBytes) }, ""},
		{"observer past the bound", func(d *observation.Digest) { d.Observer = strings.Repeat("n", maxNameBytes+1) }, "observer"},
		{"error at the bound", func(d *observation.Digest) { d.Hash, d.Err = "", strings.Repeat("e", observation.MaxReasonBytes) }, ""},
		{"error past the bound", func(d *observation.Digest) { d.Hash, d.Err = "", strings.Repeat("e", observation.MaxReasonBytes+1) }, "error"},
		{"empty repository", func(d *observation.Digest) { d.Repository = "" }, "endpoint"},
		{"endpoint of another repository", func(d *observation.Digest) { d.Repository = "secondary" }, "endpoint"},
		{"endpoint not configured", func(d *observation.Digest) { d.Endpoint = "http://a:80/" }, "endpoint"},
		{"hash in upper case", func(d *observation.Digest) { d.Hash = strings.ToUpper(observation.ContentHash(nil)) }, "hash"},
		{"hash one digit short", func(d *observation.Digest) { d.Hash = observation.ContentHash(nil)[1:] }, "hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.mut(&d)
			if got := checkDigest(&d, recv, maxAge, configured); got != tt.want {
				t.Fatalf("checkDigest = %q, want %q", got, tt.want)
			}
		})
	}
}

// hostileSeeds are FuzzDecodeGossip's seeds from attacking the decoder: fields at and past their bounds,
// truncated and unknown messages, leave announcements for others, duplicate digests with conflicting hashes.
func hostileSeeds() [][]byte {
	d := observation.Digest{Observer: "n", Repository: "primary", Endpoint: "http://a/", Seq: 1, Hash: observation.ContentHash(nil)}
	other := d
	other.Hash = observation.ContentHash(map[string][]version.Version{"t": {version.MustParse("1.0.0")}})
	far := d
	far.Seq = math.MaxUint64
	long := d
	long.Observer = strings.Repeat("o", maxNameBytes+1)
	full := broadcastBytes(0, broadcastMsg{From: "n", D: d})
	pp := func(m pushPullMsg) []byte { b, _ := json.Marshal(m); return b }
	return [][]byte{
		broadcastBytes(uint64((2 * time.Hour).Milliseconds()), broadcastMsg{From: "n", D: d}),
		broadcastBytes(uint64((2*time.Hour).Milliseconds())+1, broadcastMsg{From: "n", D: d}),
		broadcastBytes(1<<63, broadcastMsg{From: "n", D: d}),
		broadcastBytes(math.MaxInt64, broadcastMsg{From: "n", D: d}),
		broadcastBytes(0, broadcastMsg{From: "n", D: far}),
		broadcastBytes(0, broadcastMsg{From: "n", D: long}),
		broadcastBytes(0, broadcastMsg{From: strings.Repeat("f", maxNameBytes+1), D: d}),
		broadcastBytes(0, broadcastMsg{From: "evil", Leave: "n"}),
		broadcastBytes(0, broadcastMsg{From: "n", Leave: "n", D: d}),
		append(broadcastBytes(0, broadcastMsg{From: "n"})[:8], `{"type":"unknown","from":"n"}`...),
		append(broadcastBytes(0, broadcastMsg{From: "n"})[:8], `{"from":"n","d":{"s":-1}}`...),
		append(broadcastBytes(0, broadcastMsg{From: "n"})[:8], `{"from":"n","d":{"a":5}}`...), // the wire age wins
		full[:7],
		full[:8],
		full[:len(full)-1],
		append(append([]byte{}, full...), `{"from":"x"}`...),
		pp(pushPullMsg{Node: "n", Digests: []observation.Digest{d, other, d}}),
		pp(pushPullMsg{Node: "n", Digests: []observation.Digest{{Seq: 1, AgeMS: -1}}}),
		pp(pushPullMsg{Node: "n", Held: []observation.HeldVersion{{Repository: "primary", Title: "a/../b", Version: version.MustParse("9.9.9")}},
			Sets: map[string]string{"primary": "x"}}),
		[]byte(`{"node":"n","digests":[{"a":9223372036854775807,"s":18446744073709551615}]}`),
		[]byte(`{"node":"n","digests":[{"a":1e30}]}`),
		[]byte(`{"node":"n","held":[{"v":"01.2.3"}]}`),
	}
}

// recordingDelegate takes every observation, checks what FuzzDelegateMessages promises of each, and holds
// content for one hash only (so that the fuzzer reaches both a fetch and an observation).
type recordingDelegate struct {
	t        *testing.T
	recv     time.Time
	mu       sync.Mutex
	observed int
}

func (r *recordingDelegate) Observe(o observation.Observation) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observed++
	if o.At.After(r.recv) || o.At.Before(r.recv.Add(-time.Hour)) || o.Seq == 0 || o.Observer == "" ||
		len(o.Observer) > maxNameBytes || o.Repository != "primary" || o.Endpoint != "http://a/" {
		r.t.Fatalf("observed an out-of-range observation: %+v", o)
	}
	return false // not new: nothing is relayed
}
func (r *recordingDelegate) Seq(string, string) (uint64, bool) { return 0, false }
func (r *recordingDelegate) NoteOwnSeq(uint64)                 {}
func (r *recordingDelegate) Content(h string) (map[string][]version.Version, bool) {
	return nil, h == observation.ContentHash(nil)
}
func (r *recordingDelegate) Digests(time.Time) Shared                               { return Shared{} }
func (r *recordingDelegate) AdoptHeld([]observation.HeldVersion, map[string]string) {}
func (r *recordingDelegate) Configured(repo, ep string) bool {
	return repo == "primary" && ep == "http://a/"
}
func (r *recordingDelegate) Limits() Limits { return Limits{MaxAge: time.Hour, MaxTitles: 10} }

// FuzzDelegateMessages feeds arbitrary bytes to memberlist's delegate methods of a real cluster, as a peer
// that holds the key could, and applies what they queue: nothing panics, every observation handed to the
// Delegate is within range, the inboxes stay within their bounds, and leave marks only name members.
func FuzzDelegateMessages(f *testing.F) {
	for _, s := range hostileSeeds() {
		f.Add(s)
	}
	f.Add(broadcastBytes(5, broadcastMsg{From: "n", D: observation.Digest{Observer: "o", Repository: "primary",
		Endpoint: "http://a/", Seq: 1, Hash: observation.ContentHash(nil)}}))
	recv := time.Unix(1_800_000_000, 0)
	r := &recordingDelegate{t: nil, recv: recv}
	c, err := New(r, testConfig(), Options{Now: func() time.Time { return recv }})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = c.Close() })
	d := (*delegate)(c)
	f.Fuzz(func(t *testing.T, b []byte) {
		r.mu.Lock()
		r.t = t
		r.mu.Unlock()
		d.NotifyMsg(b)
		d.MergeRemoteState(b, false)
		if len(c.inbox) > cap(c.inbox) || len(c.heldInbox) > cap(c.heldInbox) {
			t.Fatal("an inbox past its bound")
		}
		for len(c.inbox) > 0 {
			c.apply(context.Background(), <-c.inbox)
		}
		for len(c.heldInbox) > 0 {
			<-c.heldInbox
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for name := range c.leaving {
			if c.members[name] == nil {
				t.Fatalf("a leave mark for %q, no member", name)
			}
		}
	})
}

// TestValidAPIURL: a member's advertised API must be an http(s) URL without credentials, query or fragment,
// on the machine the member gossips from. On main any host was taken: a member that holds the key could
// make a node send requests to its own loopback services or to any other host.
func TestValidAPIURL(t *testing.T) {
	lo, remote := net.IPv4(127, 0, 0, 1), net.ParseIP("10.0.0.5")
	tests := []struct {
		name, url string
		member    net.IP
		want      bool
	}{
		{"loopback member, loopback API", "http://127.0.0.1:8190", lo, true},
		{"loopback member, another loopback address", "http://[::1]:8190/", lo, true},
		{"remote member, its own address", "http://10.0.0.5:8190", remote, true},
		{"https", "https://10.0.0.5:8190/", remote, true},
		{"a name (checked when dialled)", "http://schema1001.eqiad.wmnet:8190", remote, true},
		{"remote member, this node's loopback", "http://127.0.0.1:6379/", remote, false},
		{"remote member, another host", "http://10.0.0.6:8190", remote, false},
		{"remote member, the metadata service", "http://169.254.169.254/latest", remote, false},
		{"loopback member, a remote host", "http://10.0.0.6:8190", lo, false},
		{"credentials", "http://u:p@10.0.0.5:8190", remote, false},
		{"query", "http://10.0.0.5:8190/?x=1", remote, false},
		{"fragment", "http://10.0.0.5:8190/#x", remote, false},
		{"another scheme", "gopher://10.0.0.5:70/", remote, false},
		{"file", "file:///etc/passwd", remote, false},
		{"no host", "http:///x", remote, false},
		{"too long", "http://10.0.0.5:8190/" + strings.Repeat("a", 300), remote, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validAPIURL(tt.url, tt.member); got != tt.want {
				t.Fatalf("validAPIURL(%q, %s) = %v, want %v", tt.url, tt.member, got, tt.want)
			}
		})
	}
}

// TestPeerDialerChecksResolvedAddress: a content request connects only to the address the member gossips
// from, whatever its API's host name resolves to; the check runs before the connection is attempted.
func TestPeerDialerChecksResolvedAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := peerDialer(time.Second)
	ctxFor := func(ip net.IP) context.Context { return context.WithValue(context.Background(), memberIPKey{}, ip) }
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	if c, err := dial(ctxFor(net.IPv4(127, 0, 0, 1)), "tcp", "localhost:"+port); err != nil {
		t.Fatalf("a loopback member's API on localhost: %v", err)
	} else {
		c.Close()
	}
	for _, tc := range []struct {
		member net.IP
		addr   string
	}{
		{net.ParseIP("10.0.0.5"), "localhost:" + port}, // a name that resolves to this machine
		{net.ParseIP("10.0.0.5"), "127.0.0.1:" + port},
		{net.IPv4(127, 0, 0, 1), "192.0.2.1:80"},
		{nil, "127.0.0.1:" + port}, // no member named
	} {
		if c, err := dial(ctxFor(tc.member), "tcp", tc.addr); err == nil {
			c.Close()
			t.Errorf("dialled %s for a member at %s", tc.addr, tc.member)
		} else if !strings.Contains(err.Error(), "not the address the member gossips from") {
			t.Errorf("dialling %s for a member at %s: %v, want the address refused", tc.addr, tc.member, err)
		}
	}
}
