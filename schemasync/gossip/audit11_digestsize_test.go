package gossip

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/schemasync/observation"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// gossipRoom is what one gossip packet holds for a broadcast with memberlist's defaults: UDPBufferSize (1400
// bytes), less its compound header (2), AES-GCM encryption (29, for a keyring), the compound entry's length (2)
// and the user-message type (1). A cluster label takes 2 more bytes plus its length.
const gossipRoom = 1400 - 2 - 29 - 2 - 1

// TestDigestEncodedSize measures a digest as gossip sends it (the 8-byte age, then the JSON broadcast), for a
// typical scan and for the largest names the bounds allow, and checks which of them fit one gossip packet.
// memberlist's gossip skips a broadcast larger than its packet: such a digest still travels by the direct
// message (UDP, any size the network carries) and by push/pull. go test -v prints the sizes.
func TestDigestEncodedSize(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	schemas := map[string][]version.Version{"mediawiki/page/change": {version.MustParse("1.1.0")}}
	typical := observation.Observation{Repository: "primary", Observer: "schemasync1001.eqiad.wmnet",
		Endpoint: "https://schema.svc.eqiad.wmnet/repositories/primary/jsonschema/", Seq: uint64(at.UnixNano()),
		Hash: observation.ContentHash(schemas)}
	failed := typical
	failed.Hash, failed.Err = "", `GET "/mediawiki/page/change/": HTTP 503 Service Unavailable`
	longest := typical
	longest.Observer = strings.Repeat("o", maxNameBytes)
	longest.Endpoint = "https://" + strings.Repeat("h", 100) + ".wmnet/repositories/primary/jsonschema/"
	longest.Hash, longest.Err = "", strings.Repeat("x", observation.MaxReasonBytes)
	escaped := longest
	escaped.Err = strings.Repeat("<", observation.MaxReasonBytes) // JSON writes each as \u003c
	tests := []struct {
		name string
		from string
		o    observation.Observation
		fits bool
	}{
		{"typical: a successful scan", typical.Observer, typical, true},
		{"typical: a failed scan", typical.Observer, failed, true},
		{"256-byte node names, a 147-byte endpoint, a 512-byte plain reason", strings.Repeat("f", maxNameBytes), longest, true},
		{"the same with a reason of 512 '<', which JSON escapes to 6 bytes each", strings.Repeat("f", maxNameBytes), escaped, false},
	}
	for _, tt := range tests {
		for _, direct := range []bool{false, true} {
			body, err := json.Marshal(broadcastMsg{From: tt.from, D: observation.DigestOf(&tt.o, 0), Direct: direct})
			if err != nil {
				t.Fatal(err)
			}
			b := &obsBroadcast{body: body, at: at, now: func() time.Time { return at.Add(3 * time.Second) }}
			n := len(b.Message())
			t.Logf("%s (direct %v): %d bytes; a gossip packet holds %d", tt.name, direct, n, gossipRoom)
			if fits := n <= gossipRoom; fits != tt.fits {
				t.Errorf("%s (direct %v): %d bytes, fits a gossip packet = %v, want %v", tt.name, direct, n, fits, tt.fits)
			}
		}
	}
}
