package schemasync

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evenkeel/evenkeel/internal/syncbuf"
)

func TestCheckDigest(t *testing.T) {
	recv := time.Unix(1_800_000_000, 0)
	ok := digest{Observer: "node1", Repository: "primary", Endpoint: "http://a/", Seq: uint64(recv.UnixNano()),
		Hash: ContentHash(nil), AgeMS: 1000}
	configured := func(repo, ep string) bool { return repo == "primary" && ep == "http://a/" }
	tests := []struct {
		name string
		mut  func(*digest)
		want string
	}{
		{"fine", func(*digest) {}, ""},
		{"failed scan", func(d *digest) { d.Hash, d.Err = "", "HTTP 503" }, ""},
		{"negative age", func(d *digest) { d.AgeMS = -1 }, "age"},
		{"age above int64 on the wire", func(d *digest) { d.AgeMS = -1 << 62 }, "age"},
		{"age that overflows a Duration", func(d *digest) { d.AgeMS = math.MaxInt64 / 2 }, "age"},
		{"age older than any node keeps", func(d *digest) { d.AgeMS = (2*time.Hour + time.Second).Milliseconds() }, "age"},
		{"seq zero", func(d *digest) { d.Seq = 0 }, "seq"},
		{"seq far in the future", func(d *digest) { d.Seq = math.MaxUint64 }, "seq"},
		{"no observer", func(d *digest) { d.Observer = "" }, "observer"},
		{"huge observer", func(d *digest) { d.Observer = string(make([]byte, 300)) }, "observer"},
		{"unconfigured endpoint", func(d *digest) { d.Endpoint = "http://elsewhere/" }, "endpoint"},
		{"wrong repository", func(d *digest) { d.Repository = "secondary" }, "endpoint"},
		{"huge error", func(d *digest) { d.Hash, d.Err = "", string(make([]byte, MaxReasonBytes+1)) }, "error"},
		{"error and hash", func(d *digest) { d.Err = "x" }, "error"},
		{"bad hash", func(d *digest) { d.Hash = "../../etc/passwd" }, "hash"},
		{"no hash", func(d *digest) { d.Hash = "" }, "hash"},
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
	d := digest{Observer: "n", Repository: "primary", Endpoint: "http://a/", Seq: 1, Hash: ContentHash(nil)}
	f.Add(broadcastBytes(5, broadcastMsg{From: "n", D: d}))
	f.Add(broadcastBytes(math.MaxUint64, broadcastMsg{From: "n", D: d}))
	f.Add(broadcastBytes(0, broadcastMsg{From: "n", Leave: "n"}))
	pp, _ := json.Marshal(pushPullMsg{Node: "n", Digests: []digest{d}, Held: []HeldVersion{{Repository: "primary", Title: "t", Version: MustParseVersion("1.0.0")}}})
	f.Add(pp)
	f.Add([]byte("\x00\x00\x00\x00\x00\x00\x00\x01{"))
	f.Add([]byte{})
	recv := time.Unix(1_800_000_000, 0)
	const maxAge = 2 * time.Hour
	configured := func(repo, ep string) bool { return true }
	check := func(t *testing.T, d digest) {
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

// TestMemberlistLogRateLimited: a flood of one kind of memberlist error (garbage packets from many
// addresses) logs one line per 10 s with the count suppressed, not one line each.
func TestMemberlistLogRateLimited(t *testing.T) {
	var buf syncbuf.Buffer
	now := time.Unix(1_800_000_000, 0)
	problems := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "p"}, []string{"level"})
	l := &memberlistLog{log: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }, problems: problems}
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(l, "2026/12/01 10:00:00 [ERR] memberlist: failed to decode packet from=127.0.0.1:%d\n", 1000+i)
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("%d lines for 1000 garbage packets, want 1:\n%s", n, buf.String())
	}
	now = now.Add(logEvery)
	fmt.Fprintf(l, "[ERR] memberlist: failed to decode packet from=127.0.0.1:9\n")
	if n := testutil.ToFloat64(problems.WithLabelValues("error")); n != 1001 {
		t.Fatalf("%v errors counted, want 1001", n)
	}
	if !strings.Contains(buf.String(), "suppressed_since_last=999") {
		t.Fatalf("the suppressed count is missing:\n%s", buf.String())
	}
	fmt.Fprintf(l, "[ERR] memberlist: \x1b[2Janother kind\n")
	if strings.Contains(buf.String(), "\x1b") || !strings.Contains(buf.String(), "another kind") {
		t.Fatalf("another kind not logged, or not escaped:\n%q", buf.String())
	}
}
