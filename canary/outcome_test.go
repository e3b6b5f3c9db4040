package canary

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/internal/schemarepo"
)

// TestDeliveryOutcome: each delivery says truthfully what became of the event: accepted (201, 202), refused
// (the intake answered otherwise, a redirect not followed included), not sent (no request reached the intake),
// or unknown (the whole request was sent and no answer came: the intake may have accepted it). An attempt
// whose fate is unknown keeps the delivery unknown unless a later attempt is accepted. On main, deliveries
// said none of this: a reset after the request was sent read like a refused connection.
func TestDeliveryOutcome(t *testing.T) {
	repo := schemarepo.Demo()
	base := schemaHost(t, repo)
	node := fakeSchemasync(t, repo)
	offOrigin := httptest.NewServer(http.RedirectHandler("http://127.0.0.1:1/v1/events", http.StatusTemporaryRedirect))
	t.Cleanup(offOrigin.Close)
	resetThenBusy := &scripted{statuses: []int{http.StatusServiceUnavailable}}
	resetFirst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if resetThenBusy.n.Load() == 0 {
			resetThenBusy.n.Add(1)
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close() // the request was read whole: no answer
			return
		}
		resetThenBusy.ServeHTTP(w, r)
	}))
	t.Cleanup(resetFirst.Close)
	for _, tc := range []struct {
		name, dest, outcome, errHas string
	}{
		{"201", scriptedURL(t, &scripted{statuses: []int{201}}), OutcomeAccepted, ""},
		{"202", scriptedURL(t, &scripted{statuses: []int{202}}), OutcomeAccepted, ""},
		{"400", scriptedURL(t, &scripted{statuses: []int{400}, bodies: []string{`{"invalid":[{"context":{"message":"bad"}}]}`}}), OutcomeRefused, "not accepted"},
		{"207", scriptedURL(t, &scripted{statuses: []int{207}, bodies: []string{`{"invalid":[{"context":{"message":"bad"}}],"error":[]}`}}), OutcomeRefused, "not accepted"},
		{"307 to another origin", offOrigin.URL, OutcomeRefused, "not accepted"},
		{"connection refused", closedURL(t), OutcomeNotSent, "not sent"},
		{"untrusted certificate", quietTLSServer(t).URL + "/v1/events", OutcomeNotSent, "not sent"},
		{"https to a plain HTTP server", strings.Replace(scriptedURL(t, &scripted{statuses: []int{201}}), "http://", "https://", 1), OutcomeNotSent, "not sent"},
		{"reset after the request", hangUp(t, true), OutcomeUnknown, "may have accepted"},
		{"closed after the request", hangUp(t, false), OutcomeUnknown, "may have accepted"},
		{"reset, then 503", resetFirst.URL, OutcomeUnknown, "HTTP 503 (after 2 attempts); an earlier attempt was sent and got no answer"},
		{"201, then reset in the body", headersThenReset(t, "201 Created"), OutcomeAccepted, ""},
		{"400, then reset in the body", headersThenReset(t, "400 Bad Request"), OutcomeRefused, "HTTP 400, then reading the body failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(node.URL, []string{base}, []Stream{{Name: "s", SchemaTitle: "test/event", Destinations: []string{tc.dest}}})
			cfg.Retries = 1
			res, err := Run(context.Background(), cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			d := res[0].Deliveries[0]
			if d.Outcome != tc.outcome || (tc.outcome == OutcomeAccepted) != res[0].OK || !strings.Contains(d.Error, tc.errHas) {
				t.Fatalf("outcome %q (want %q), ok %v, error %q (want %q)", d.Outcome, tc.outcome, res[0].OK, d.Error, tc.errHas)
			}
		})
	}
}

// headersThenReset answers every request with the status line and headers promising a 1000-byte body, sends
// a few bytes of it, and resets the connection.
func headersThenReset(t *testing.T, status string) string {
	t.Helper()
	return rawServer(t, func(c net.Conn) {
		buf := make([]byte, 8192)
		_, _ = c.Read(buf)
		_, _ = c.Write([]byte("HTTP/1.1 " + status + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"inv"))
		time.Sleep(10 * time.Millisecond)
		_ = c.(*net.TCPConn).SetLinger(0)
	})
}
