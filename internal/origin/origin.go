// Package origin keeps HTTP requests on the origin (scheme, host and port) they were sent to: a schema host
// or an intake may move a path by redirecting, never send a request, its body or its credentials elsewhere.
// It also holds the one rule for the URLs those requests are built on (CheckURL, CheckBaseURL).
package origin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/evenkeel/evenkeel/internal/safetext"
)

// ErrOffOrigin is wrapped by the error of a request that was redirected to another scheme, host or port than
// the one it was sent to.
var ErrOffOrigin = errors.New("redirect to another origin refused")

// MaxRedirects is the number of same-origin redirects a request follows by default.
const MaxRedirects = 5

// Of returns scheme://host:port in lower case, with the default port made explicit and without credentials.
func Of(u *url.URL) string {
	port := u.Port()
	scheme := strings.ToLower(u.Scheme)
	if port == "" {
		switch scheme {
		case "http":
			port = "80"
		case "https":
			port = "443"
		}
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + ":" + port
}

// Check returns an error wrapping ErrOffOrigin when to is not on from's origin.
func Check(from, to *url.URL) error {
	if Of(from) != Of(to) {
		return fmt.Errorf("%w: %s to %s (requests stay on the configured scheme, host and port)",
			ErrOffOrigin, safetext.Bound(Of(from), 200), safetext.Bound(Of(to), 200))
	}
	return nil
}

// CheckResponse checks that resp answers a request on sent's origin, whatever the client did with
// redirects (a Doer supplied by the caller may follow any).
func CheckResponse(sent *url.URL, resp *http.Response) error {
	if resp == nil || resp.Request == nil || resp.Request.URL == nil {
		return nil
	}
	return Check(sent, resp.Request.URL)
}

// Redirects returns an http.Client CheckRedirect that follows at most limit redirects in a row, and only
// those that stay on the first request's origin.
func Redirects(limit int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if err := Check(via[0].URL, req.URL); err != nil {
			return err
		}
		// via holds the requests sent so far, the first one too: req is redirect number len(via).
		if len(via) > limit {
			return fmt.Errorf("stopped after %d redirects (a redirect loop?)", limit)
		}
		return nil
	}
}

// CheckURL accepts an absolute http(s) URL without a fragment (an intake's: it may carry a query). The error
// shows the URL without its credentials, bounded and quoted.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	shown := safetext.Quote(safetext.Bound(safetext.RedactURL(s), 300))
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("%s is not an http(s) URL", shown)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%s has a fragment (#...), which no request carries", shown)
	}
	return nil
}

// CheckBaseURL is CheckURL for a URL that paths are appended to (a schemasync node, a schema base URI, a
// Pushgateway): it may not carry a query either, which would end up in the middle of every URL built on it.
func CheckBaseURL(s string) error {
	if err := CheckURL(s); err != nil {
		return err
	}
	if u, _ := url.Parse(s); u.RawQuery != "" || u.ForceQuery {
		return fmt.Errorf("%s has a query (?...): paths are appended to it", safetext.Quote(safetext.Bound(safetext.RedactURL(s), 300)))
	}
	return nil
}
