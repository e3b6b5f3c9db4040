package schemasync

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"
)

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
	// Schemas maps each title the endpoint serves to its confirmed versions, ascending and without duplicates.
	Schemas map[string][]Version `json:"schemas,omitempty"`
	// Hash is ContentHash(Schemas) for a successful observation: gossip carries it instead of the content.
	Hash string `json:"hash,omitempty"`
}

// OK reports whether the scan succeeded.
func (o *Observation) OK() bool { return o.Err == "" }

// HeldVersion is one held safe version, as nodes share them.
type HeldVersion struct {
	Repository string  `json:"r"`
	Title      string  `json:"t"`
	Version    Version `json:"v"`
}

// ContentHash names the content of an observation (its titles and versions), so that nodes fetch each
// distinct content once, and check what they fetched.
func ContentHash(schemas map[string][]Version) string {
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

// digest is what gossip carries of an observation: everything but its content, which receivers fetch by
// hash over HTTP from the node that sent the digest (once per distinct content).
type digest struct {
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

func digestOf(o *Observation, age time.Duration) digest {
	return digest{Observer: o.Observer, Repository: o.Repository, Endpoint: o.Endpoint, Seq: o.Seq, Hash: o.Hash,
		Err: o.Err, AgeMS: age.Milliseconds()}
}
