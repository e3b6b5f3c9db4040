// Package observation holds what schemasync nodes observe and share: an Observation (one scan of one
// endpoint by one node), the ContentHash that names its content, the Digest that gossip carries instead of
// the content, and the held safe versions that nodes exchange. Both the service (package schemasync) and
// its gossip (package gossip) use these types; this package depends on neither.
package observation

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// MaxReasonBytes bounds the reason of a failed scan (and any error text that travels by gossip or into an
// answer): a hostile host's names cannot make answers large.
const MaxReasonBytes = 512

// MaxTitleBytes bounds a title (PATH_MAX, which no real repository reaches): the scanner fails an endpoint
// whose directory paths are longer, and content from a peer with a longer title is rejected.
const MaxTitleBytes = 4096

// ValidName reports whether name can be one directory or file name of a listing, and so one segment of a
// title: not empty, not "." or "..", and without "/" or NUL.
func ValidName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}

// ValidTitle reports whether t is a title a scan can produce: at most MaxTitleBytes bytes of ValidName
// segments joined by "/", all printable (the scanner skips a directory whose name holds a control or format
// character or is not UTF-8), so that a peer cannot put in an answer, a /metrics label or a terminal what no
// scan would.
func ValidTitle(t string) bool {
	if t == "" || len(t) > MaxTitleBytes || !safetext.Printable(t) {
		return false
	}
	for seg := range strings.SplitSeq(t, "/") {
		if !ValidName(seg) {
			return false
		}
	}
	return true
}

// CheckContent checks content that did not come from this node's own scan against the shape a scan gives:
// valid titles, each with its versions strictly ascending. ContentHash names only such content
// unambiguously (a title with a NUL could be built to hash like other content), and the state's
// decisions rely on the order.
func CheckContent(schemas map[string][]version.Version) error {
	for t, vs := range schemas {
		if !ValidTitle(t) {
			return errors.New("content names a title that no scan produces")
		}
		for i := 1; i < len(vs); i++ {
			if !vs[i-1].Less(vs[i]) {
				return fmt.Errorf("content lists the versions of a title out of order or twice (%s after %s)", vs[i], vs[i-1])
			}
		}
	}
	return nil
}

// Observation is one scan of one endpoint by one node (the observer).
type Observation struct {
	Repository string `json:"repository"`
	Endpoint   string `json:"endpoint"`
	Observer   string `json:"observer"`
	// Seq orders the observations of one observer of one endpoint: a newer scan has a higher Seq. Observers use
	// their wall-clock time in nanoseconds, kept strictly increasing across clock steps (see Service). It is
	// never compared across observers, so clock skew between nodes does not matter to it.
	Seq uint64 `json:"seq"`
	// At is when the scan started, by the clock of the State that holds the observation: dating an observation
	// by its start never under-reports its age, however long the scan took. The local service sets it from its
	// own clock; gossip sets it from the receiver's clock and the age the sender reported.
	At time.Time `json:"-"`
	// Err is empty when the scan succeeded. A failed scan says nothing about which versions the endpoint serves.
	Err string `json:"error,omitempty"`
	// Warning is what a successful scan saw but did not count, at most MaxReasonBytes: listed versions whose
	// file refused the GET (401 or 403), and so are not present. It stays with the observer's own view
	// (gossip does not carry it) and changes no decision.
	Warning string `json:"warning,omitempty"`
	// Schemas maps each title the endpoint serves to its confirmed versions, ascending and without duplicates.
	Schemas map[string][]version.Version `json:"schemas,omitempty"`
	// Hash is ContentHash(Schemas) for a successful observation: gossip carries it instead of the content.
	Hash string `json:"hash,omitempty"`
}

// OK reports whether the scan succeeded.
func (o *Observation) OK() bool { return o.Err == "" }

// HeldVersion is one held safe version, as nodes share them.
type HeldVersion struct {
	Repository string          `json:"r"`
	Title      string          `json:"t"`
	Version    version.Version `json:"v"`
}

// ContentHash names the content of an observation (its titles and versions), so that nodes fetch each
// distinct content once, and check what they fetched.
func ContentHash(schemas map[string][]version.Version) string {
	titles := make([]string, 0, len(schemas))
	for t := range schemas {
		titles = append(titles, t)
	}
	sort.Strings(titles)
	h := sha256.New()
	var buf []byte
	for _, t := range titles {
		buf = append(buf[:0], t...)
		buf = append(buf, 0)
		for _, v := range schemas[t] {
			buf = v.Append(buf)
			buf = append(buf, ',')
		}
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Digest is what gossip carries of an observation: everything but its content, which receivers fetch by
// hash over HTTP from the node that sent the digest (once per distinct content).
type Digest struct {
	Observer   string `json:"o"`
	Repository string `json:"r"`
	Endpoint   string `json:"e"`
	Seq        uint64 `json:"s"`
	Hash       string `json:"h,omitempty"`
	Err        string `json:"x,omitempty"`
	// AgeMS is the observation's age when the message was sent, by the sender's clock: receivers date the
	// observation by their own clock (receipt time minus age), so clock skew between nodes does not matter.
	AgeMS int64 `json:"a"`
}

// DigestOf is o's digest, with o's age (by the sender's clock) as given.
func DigestOf(o *Observation, age time.Duration) Digest {
	return Digest{Observer: o.Observer, Repository: o.Repository, Endpoint: o.Endpoint, Seq: o.Seq, Hash: o.Hash,
		Err: o.Err, AgeMS: age.Milliseconds()}
}

// ValidHash reports whether h looks like a ContentHash: 32 lowercase hex digits.
func ValidHash(h string) bool {
	if len(h) != 32 {
		return false
	}
	for _, c := range []byte(h) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
