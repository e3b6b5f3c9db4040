package gossip

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/evenkeel/evenkeel/schemasync/observation"
)

// broadcastMsg is one gossip broadcast: an 8-byte big-endian age in milliseconds, then this as JSON.
// The age is written when memberlist sends the message, not when it was queued.
type broadcastMsg struct {
	// From names the member that sent (or relayed) the digest. Receivers fetch its content from that
	// member's API, at the address the member advertises in its memberlist metadata: never from a URL that
	// a message names, so that no message can make a node send requests elsewhere.
	From  string             `json:"from"`
	D     observation.Digest `json:"d"`
	Leave string             `json:"leave,omitempty"` // set instead of D when the named node is leaving on purpose
	// Direct marks a digest the observer sent straight to every member because its scan result changed,
	// rather than through gossip. Receivers treat both alike; it only labels the metrics.
	Direct bool `json:"direct,omitempty"`
}

// pushPullMsg is a node's full state in memberlist's push/pull: digests of every observation it holds.
type pushPullMsg struct {
	Node    string               `json:"node"`
	Digests []observation.Digest `json:"digests"`
	// Held are the sender's held safe versions in repositories with an unknown endpoint (usually none): a
	// node that restarted during an outage adopts them where it holds nothing (Delegate.AdoptHeld), for the
	// repositories whose endpoint set (Sets: repository -> EndpointSetHash) equals its own.
	Held []observation.HeldVersion `json:"held,omitempty"`
	Sets map[string]string         `json:"sets,omitempty"`
}

// nodeMeta is memberlist node metadata (at most 512 bytes).
type nodeMeta struct {
	DC  string `json:"dc,omitempty"`
	API string `json:"api"`
}

// obsBroadcast is a queued digest. Message computes the age at each transmission, in a fixed-width field
// (memberlist requires a message's length not to change while it is queued).
type obsBroadcast struct {
	name string
	body []byte
	at   time.Time
	now  func() time.Time
}

var _ memberlist.NamedBroadcast = (*obsBroadcast)(nil)

func (b *obsBroadcast) Name() string { return b.name }

func (b *obsBroadcast) Invalidates(other memberlist.Broadcast) bool {
	o, ok := other.(*obsBroadcast)
	return ok && o.name == b.name
}

func (b *obsBroadcast) Message() []byte {
	msg := make([]byte, 8+len(b.body))
	age := b.now().Sub(b.at).Milliseconds()
	if age < 0 {
		age = 0
	}
	binary.BigEndian.PutUint64(msg, uint64(age))
	copy(msg[8:], b.body)
	return msg
}

func (b *obsBroadcast) Finished() {}

// Bounds on what gossip may carry. A peer that holds the gossip key can send anything; these keep what it
// sends from taking unbounded memory, or from dating an observation outside the range any node would.
const (
	maxNameBytes      = 256      // a node (observer) name
	maxContentBytes   = 64 << 20 // one observation's content, fetched by hash
	maxHeldPerMessage = 100000   // held versions in one push/pull
	// maxSeqAhead bounds how far a sequence number (the observer's clock reading, in nanoseconds) may run
	// ahead of the receiver's clock. It is a sanity bound, not a clock comparison: nodes whose clocks are off
	// by days must still gossip (freshness is judged from ages, never from clocks). What it guards against
	// is a number that no real clock reaches, which would make an observer's slot unreachable for its own
	// later scans, or wrap its sequence. A forged number within the bound only makes the real observer,
	// once it hears it, continue its numbering above it.
	maxSeqAhead = 366 * 24 * time.Hour
)

// decodeBroadcast decodes a broadcast or direct message: the 8-byte age, then JSON. The age goes into the
// digest; one above the int64 range arrives negative, and checkDigest rejects it.
func decodeBroadcast(b []byte) (broadcastMsg, error) {
	var m broadcastMsg
	if len(b) < 8 {
		return m, errors.New("shorter than its 8-byte age")
	}
	if err := json.Unmarshal(b[8:], &m); err != nil {
		return broadcastMsg{}, err
	}
	m.D.AgeMS = int64(binary.BigEndian.Uint64(b[:8]))
	return m, nil
}

// decodePushPull decodes a push/pull state message.
func decodePushPull(b []byte) (pushPullMsg, error) {
	var m pushPullMsg
	err := json.Unmarshal(b, &m)
	return m, err
}

// checkDigest is the rule: an age from 0 to maxAge, a sequence number above 0 and at most maxSeqAhead (a
// year) ahead of recv's (sequence numbers are nanosecond clock readings), a bounded observer name, an endpoint configured
// here in the repository the digest names, a bounded error or else a well-formed content hash.
func checkDigest(d *observation.Digest, recv time.Time, maxAge time.Duration, configured func(repo, endpoint string) bool) string {
	switch {
	case d.AgeMS < 0 || d.AgeMS > maxAge.Milliseconds():
		return "age"
	case d.Seq == 0 || d.Seq > uint64(max(recv.Add(maxSeqAhead).UnixNano(), 0)):
		return "seq"
	case d.Observer == "" || len(d.Observer) > maxNameBytes:
		return "observer"
	case !configured(d.Repository, d.Endpoint):
		return "endpoint"
	case len(d.Err) > observation.MaxReasonBytes || d.Err != "" && d.Hash != "":
		return "error"
	case d.Err == "" && !observation.ValidHash(d.Hash):
		return "hash"
	}
	return ""
}

// validAPIURL reports whether a member's advertised API is a URL this node may fetch content from: http(s),
// with a host, without credentials, query or fragment, and on the machine the member gossips from (see
// sameMachine) when its host is an IP address. A host name is checked when it is dialled (peerDialer).
func validAPIURL(s string, member net.IP) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || len(s) > 256 {
		return false
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		return sameMachine(ip, member)
	}
	return u.Hostname() != ""
}

// sameMachine reports whether ip is the address a member gossips from (any loopback address stands for any
// other: a single-machine cluster). A member's API must be there: a member that holds the key could
// otherwise make this node send requests to any host, this node's own loopback services included.
func sameMachine(ip, member net.IP) bool {
	return ip != nil && member != nil && (ip.Equal(member) || ip.IsLoopback() && member.IsLoopback())
}

// memberIPKey carries, in a content request's context, the address the member gossips from.
type memberIPKey struct{}

// peerDialer dials for content requests: it connects only to the address the member named by the
// request's context gossips from, checked on the resolved address (a host name that resolves elsewhere,
// now or after a DNS change, is refused before any packet is sent).
func peerDialer(timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		member, _ := ctx.Value(memberIPKey{}).(net.IP)
		d := net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
			host, _, _ := net.SplitHostPort(address)
			if !sameMachine(net.ParseIP(host), member) {
				return fmt.Errorf("%s is not the address the member gossips from (%s)", host, member)
			}
			return nil
		}}
		return d.DialContext(ctx, network, addr)
	}
}
