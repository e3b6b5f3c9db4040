package dbstate

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ErrBadGTID is returned (wrapped) for text that is not a MariaDB GTID or GTID position.
var ErrBadGTID = errors.New("invalid GTID")

// GTID is a MariaDB global transaction id: domain-server-sequence.
type GTID struct {
	Domain uint32 `json:"domain"`
	Server uint32 `json:"server_id"`
	Seq    uint64 `json:"seq"`
}

func (g GTID) String() string { return fmt.Sprintf("%d-%d-%d", g.Domain, g.Server, g.Seq) }

// ParseGTID parses "domain-server-seq".
func ParseGTID(s string) (GTID, error) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) != 3 {
		return GTID{}, fmt.Errorf("%w %q: want domain-server-seq", ErrBadGTID, s)
	}
	var n [3]uint64
	for k, p := range parts {
		if p == "" || strings.TrimLeft(p, "0123456789") != "" {
			return GTID{}, fmt.Errorf("%w %q: %q is not a number", ErrBadGTID, s, p)
		}
		bits := 32
		if k == 2 {
			bits = 64
		}
		v, err := strconv.ParseUint(p, 10, bits)
		if err != nil {
			return GTID{}, fmt.Errorf("%w %q: %q out of range", ErrBadGTID, s, p)
		}
		n[k] = v
	}
	return GTID{Domain: uint32(n[0]), Server: uint32(n[1]), Seq: n[2]}, nil
}

// Position is a GTID position: at most one GTID per domain, sorted by domain. The zero value is the empty position.
// It marshals to and from JSON and text as MariaDB writes it ("0-1-5,1-2-9").
type Position []GTID

// ParsePosition parses a comma-separated GTID list as found in gtid_binlog_pos, gtid_slave_pos and
// gtid_current_pos. Whitespace and newlines around entries are ignored; an empty string is the empty position;
// two GTIDs in one domain are an error.
func ParsePosition(s string) (Position, error) {
	var p Position
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		g, err := ParseGTID(f)
		if err != nil {
			return nil, err
		}
		if _, dup := p.Get(g.Domain); dup {
			return nil, fmt.Errorf("%w position %q: domain %d appears twice", ErrBadGTID, s, g.Domain)
		}
		p = append(p, g)
	}
	sort.Slice(p, func(i, j int) bool { return p[i].Domain < p[j].Domain })
	return p, nil
}

// MustParsePosition is ParsePosition for constants in tests and examples; it panics on error.
func MustParsePosition(s string) Position {
	p, err := ParsePosition(s)
	if err != nil {
		panic(err)
	}
	return p
}

func (p Position) String() string {
	parts := make([]string, len(p))
	for k, g := range p {
		parts[k] = g.String()
	}
	return strings.Join(parts, ",")
}

// MarshalText implements encoding.TextMarshaler.
func (p Position) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Position) UnmarshalText(b []byte) error {
	q, err := ParsePosition(string(b))
	if err != nil {
		return err
	}
	*p = q
	return nil
}

// Get returns the GTID of a domain.
func (p Position) Get(domain uint32) (GTID, bool) {
	for _, g := range p {
		if g.Domain == domain {
			return g, true
		}
	}
	return GTID{}, false
}

// Contains reports whether p has reached q: in every domain of q, p has a GTID with at least q's sequence number.
// (In gtid_strict_mode, sequence numbers increase within a domain, so this is "p includes q".)
func (p Position) Contains(q Position) bool {
	for _, g := range q {
		h, ok := p.Get(g.Domain)
		if !ok || h.Seq < g.Seq {
			return false
		}
	}
	return true
}

// Merge returns, per domain, the GTID with the higher sequence number of p and q (as gtid_current_pos does).
func (p Position) Merge(q Position) Position {
	out := append(Position(nil), p...)
	for _, g := range q {
		found := false
		for k, h := range out {
			if h.Domain == g.Domain {
				found = true
				if g.Seq > h.Seq {
					out[k] = g
				}
			}
		}
		if !found {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Domain < out[j].Domain })
	return out
}

// ErrantAgainst returns the GTIDs of a replica's gtid_binlog_pos that its root primary lacks, per domain by
// sequence number whatever the server id (a write on the replica may carry the primary's server_id): a domain
// the primary does not have, a higher sequence number, or the same one from another server. primary must be read
// after replica: everything the replica got from the primary is then in it.
func ErrantAgainst(replica, primary Position) []GTID {
	var out []GTID
	for _, g := range replica {
		m, ok := primary.Get(g.Domain)
		if !ok || g.Seq > m.Seq || (g.Seq == m.Seq && g.Server != m.Server) {
			out = append(out, g)
		}
	}
	return out
}

// Errant returns the transactions of a replica that its master never had, comparing per domain in Go
// (MariaDB has no gtid_subset). replica is the replica's gtid_binlog_pos (what it logged itself), replicaID its
// server_id, master the master's gtid_current_pos. A GTID is errant when
//   - it was originated by the replica (server id = replicaID) and the master has no such domain or a lower
//     sequence number in it: a local write the master does not have; or
//   - the master has the same sequence number in that domain from a different server: the histories diverged.
//
// A replicated GTID that is ahead of the master only because the master was read earlier is not errant. Known
// limit: positions keep only the last GTID per domain, so a local write that the master has since overtaken is
// seen only through the replication error it causes in gtid_strict_mode.
func Errant(replica Position, replicaID uint32, master Position) []GTID {
	var out []GTID
	for _, g := range replica {
		m, ok := master.Get(g.Domain)
		switch {
		case g.Server == replicaID && (!ok || g.Seq > m.Seq):
			out = append(out, g)
		case ok && g.Seq == m.Seq && g.Server != m.Server:
			out = append(out, g)
		}
	}
	return out
}
