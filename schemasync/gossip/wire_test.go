package gossip

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/schemasync/observation"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

func TestCheckDigest(t *testing.T) {
	recv := time.Unix(1_800_000_000, 0)
	ok := observation.Digest{Observer: "node1", Repository: "primary", Endpoint: "http://a/", Seq: uint64(recv.UnixNano()),
		Hash: observation.ContentHash(nil), AgeMS: 1000}
	configured := func(repo, ep string) bool { return repo == "primary" && ep == "http://a/" }
	tests := []struct {
		name string
		mut  func(*observation.Digest)
		want string
	}{
		{"fine", func(*observation.Digest) {}, ""},
		{"failed scan", func(d *observation.Digest) { d.Hash, d.Err = "", "HTTP 503" }, ""},
		{"negative age", func(d *observation.Digest) { d.AgeMS = -1 }, "age"},
		{"age above int64 on the wire", func(d *observation.Digest) { d.AgeMS = -1 << 62 }, "age"},
		{"age that overflows a Duration", func(d *observation.Digest) { d.AgeMS = math.MaxInt64 / 2 }, "age"},
		{"age older than any node keeps", func(d *observation.Digest) { d.AgeMS = (2*time.Hour + time.Second).Milliseconds() }, "age"},
		{"seq zero", func(d *observation.Digest) { d.Seq = 0 }, "seq"},
		{"seq far in the future", func(d *observation.Digest) { d.Seq = math.MaxUint64 }, "seq"},
		{"no observer", func(d *observation.Digest) { d.Observer = "" }, "observer"},
		{"huge observer", func(d *observation.Digest) { d.Observer = string(make([]byte, 300)) }, "observer"},
		{"unconfigured endpoint", func(d *observation.Digest) { d.Endpoint = "http://elsewhere/" }, "endpoint"},
		{"wrong repository", func(d *observation.Digest) { d.Repository = "secondary" }, "endpoint"},
		{"huge error", func(d *observation.Digest) { d.Hash, d.Err = "", string(make([]byte, observation.MaxReasonBytes+1)) }, "error"},
		{"error and hash", func(d *observation.Digest) { d.Err = "x" }, "error"},
		{"bad hash", func(d *observation.Digest) { d.Hash = "../../etc/passwd" }, "hash"},
		{"no hash", func(d *observation.Digest) { d.Hash = "" }, "hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok
			tt.mut(&d)
			if got := checkDigest(&d, recv, 2*time.Hour, configured); got != tt.want {
				t.Fatalf("checkDigest = %q, want %q", got, tt.want)
			}
		})
	}
}

func broadcastBytes(age uint64, m broadcastMsg) []byte {
	body, _ := json.Marshal(m)
	b := make([]byte, 8, 8+len(body))
	binary.BigEndian.PutUint64(b, age)
	return append(b, body...)
}

// FuzzDecodeGossip: the decoders of broadcasts and push/pull states never panic, and every digest they
// return either passes the range checks or is rejected by them; none dates an observation outside
// [recv-maxAge, recv].
func FuzzDecodeGossip(f *testing.F) {
	d := observation.Digest{Observer: "n", Repository: "primary", Endpoint: "http://a/", Seq: 1, Hash: observation.ContentHash(nil)}
	f.Add(broadcastBytes(5, broadcastMsg{From: "n", D: d}))
	f.Add(broadcastBytes(math.MaxUint64, broadcastMsg{From: "n", D: d}))
	f.Add(broadcastBytes(0, broadcastMsg{From: "n", Leave: "n"}))
	pp, _ := json.Marshal(pushPullMsg{Node: "n", Digests: []observation.Digest{d}, Held: []observation.HeldVersion{{Repository: "primary", Title: "t", Version: version.MustParse("1.0.0")}}})
	f.Add(pp)
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x01{"))
	f.Add([]byte{})
	for _, s := range hostileSeeds() {
		f.Add(s)
	}
	recv := time.Unix(1_800_000_000, 0)
	const maxAge = 2 * time.Hour
	configured := func(repo, ep string) bool { return true }
	check := func(t *testing.T, d observation.Digest) {
		if checkDigest(&d, recv, maxAge, configured) != "" {
			return
		}
		at := recv.Add(-time.Duration(d.AgeMS) * time.Millisecond)
		if at.After(recv) || at.Before(recv.Add(-maxAge)) {
			t.Fatalf("accepted digest dated %s, outside [recv-maxAge, recv]", at)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := decodeBroadcast(b); err == nil {
			check(t, m.D)
		}
		if m, err := decodePushPull(b); err == nil {
			for _, d := range m.Digests {
				check(t, d)
			}
		}
	})
}
