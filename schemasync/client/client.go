// Package client asks schemasync nodes for the safe version of a schema. It tries each configured node in turn, so
// that no single node is a point of failure, and for each node the repositories in order (EventGate's base URI
// order: primary, then secondary). The first 200 answer wins.
//
// The wire format it reads is schemasync's:
//
//	GET {node}/v1/repositories/{repository}/schemas/{title...}
//	200 {"repository":"primary","title":"mediawiki/page/change","safe_version":"1.1.0" or null,
//	     "latest_version":"1.2.0","dirty":true,"stale":false,"endpoints":[...]}
//	404 {"error":"..."} when the repository does not know the title (a 404 without that body is a failed node:
//	    it is not schemasync answering); 503 while the node is not ready.
//
// A node's answer is believed only if it is about what was asked (the same title and repository), has a
// safe_version field that is a strict X.Y.Z version (see schemasync/version) or null, a latest_version that
// is one or absent, fields of the right types, at most MaxAnswerBytes, and came from the node's own scheme,
// host and port. Anything else is that node's failure: the error names the node (its credentials shown as
// ***) and quotes what it said, bounded and escaped, and the next node is asked.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/evenkeel/evenkeel/internal/origin"
	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync/version"
)

// ErrUnknownSchema means every node answered, and no repository on any node knows the title.
var ErrUnknownSchema = errors.New("schema title unknown to schemasync")

// ErrNoSafeVersion means schemasync knows the title but no version is present on every endpoint yet.
var ErrNoSafeVersion = errors.New("schemasync reports no safe version")

// Doer is the part of *http.Client the client uses.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

var _ Doer = (*http.Client)(nil)

// Endpoint is one schema endpoint as a schemasync node sees it.
type Endpoint struct {
	URL      string   `json:"url"`
	State    string   `json:"state"` // "ok" or "unknown"
	Reason   string   `json:"reason,omitempty"`
	Versions []string `json:"versions,omitempty"`
	Latest   string   `json:"latest,omitempty"`
	LastScan string   `json:"last_scan,omitempty"` // RFC 3339, as the node wrote it
}

// SchemaView is a node's answer for one (repository, title).
type SchemaView struct {
	Node          string     `json:"-"` // the node that answered
	Repository    string     `json:"repository"`
	Title         string     `json:"title"`
	SafeVersion   *string    `json:"safe_version"` // nil: no version is on every endpoint
	LatestVersion string     `json:"latest_version"`
	Dirty         bool       `json:"dirty"`
	Stale         bool       `json:"stale"` // the safe version is held while some endpoint is unknown
	Endpoints     []Endpoint `json:"endpoints"`
}

// NodeError is one node's failure to answer.
type NodeError struct {
	Node string
	Err  error
}

func (e *NodeError) Error() string { return safetext.RedactURL(e.Node) + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

// AllNodesFailedError is returned when no node gave an answer; it lists each node's reason.
type AllNodesFailedError struct {
	Title string
	Nodes []*NodeError
}

func (e *AllNodesFailedError) Error() string {
	parts := make([]string, len(e.Nodes))
	for i, n := range e.Nodes {
		parts[i] = n.Error()
	}
	return fmt.Sprintf("no schemasync node answered for %q: %s", e.Title, strings.Join(parts, "; "))
}

// Unwrap returns each node's error, so errors.Is and errors.As see through to them.
func (e *AllNodesFailedError) Unwrap() []error {
	out := make([]error, len(e.Nodes))
	for i, n := range e.Nodes {
		out[i] = n
	}
	return out
}

// StatusError is a node's answer with an unexpected HTTP status.
type StatusError struct {
	URL     string
	Status  int
	Message string // the "error" field of the body, when there is one
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("GET %s: HTTP %d: %s", safetext.RedactURL(e.URL), e.Status, safetext.Escape(e.Message))
	}
	return fmt.Sprintf("GET %s: HTTP %d", safetext.RedactURL(e.URL), e.Status)
}

// MaxAnswerBytes bounds the answer the client reads from a node.
const MaxAnswerBytes = 4 << 20

// DefaultRepositories is the order in which repositories are tried: EventGate's schema base URI order.
var DefaultRepositories = []string{"primary", "secondary"}

// Options tunes a Client. The zero value is usable.
type Options struct {
	// HTTPClient sends the requests. Default: a new *http.Client that follows redirects only within the
	// node's scheme, host and port (per-request deadlines come from Timeout). An answer that comes from
	// another origin, whatever client followed the redirect, is a node failure.
	HTTPClient Doer
	// Timeout bounds each request to one node. Default: 5s.
	Timeout time.Duration
	// Logger receives one debug line per failed node. Default: discard.
	Logger *slog.Logger
}

// Client asks schemasync nodes for safe versions. It is safe for concurrent use.
type Client struct {
	nodes   []string
	http    Doer
	timeout time.Duration
	log     *slog.Logger
}

// New returns a client for the given node base URLs (e.g. http://schemasync1:8091).
func New(nodes []string, opts Options) (*Client, error) {
	if len(nodes) == 0 {
		return nil, errors.New("schemasync client: no nodes configured")
	}
	c := &Client{http: opts.HTTPClient, timeout: opts.Timeout, log: opts.Logger}
	for _, n := range nodes {
		if err := origin.CheckBaseURL(n); err != nil {
			return nil, fmt.Errorf("schemasync client: node %w", err)
		}
		c.nodes = append(c.nodes, strings.TrimRight(n, "/"))
	}
	if c.http == nil {
		// Redirects stay on the node's origin: a safe version is only believed from the node that was asked.
		c.http = &http.Client{CheckRedirect: origin.Redirects(origin.MaxRedirects)}
	}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// SafeVersion returns the safe version of title, and the view it came from. repos is the repository order to
// try (nil: DefaultRepositories). A view that is stale still carries the held safe version: it is returned, and
// the caller reports view.Stale. With no safe version, the error wraps ErrNoSafeVersion and the view is returned.
func (c *Client) SafeVersion(ctx context.Context, repos []string, title string) (string, *SchemaView, error) {
	title = strings.Trim(title, "/")
	if title == "" {
		return "", nil, errors.New("schemasync client: empty schema title")
	}
	if len(repos) == 0 {
		repos = DefaultRepositories
	}
	failed := &AllNodesFailedError{Title: title}
	unknown := 0
	for _, node := range c.nodes {
		view, err := c.ask(ctx, node, repos, title)
		if err == nil {
			if view.SafeVersion == nil || *view.SafeVersion == "" {
				return "", view, fmt.Errorf("%q in repository %s (node %s, latest %s): %w",
					title, view.Repository, safetext.RedactURL(node), view.LatestVersion, ErrNoSafeVersion)
			}
			return *view.SafeVersion, view, nil
		}
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		c.log.Debug("schemasync node failed", "node", safetext.RedactURL(node), "title", title, "err", safetext.Clean(err.Error(), 1000))
		if errors.Is(err, ErrUnknownSchema) {
			unknown++
		}
		failed.Nodes = append(failed.Nodes, &NodeError{Node: node, Err: err})
	}
	if unknown == len(c.nodes) {
		return "", nil, fmt.Errorf("%q in repositories %s: %w", title, strings.Join(repos, ", "), ErrUnknownSchema)
	}
	return "", nil, failed
}

// ask tries each repository on one node. 404 moves on to the next repository; any other failure gives up on the
// node. It returns an error wrapping ErrUnknownSchema when every repository answered 404.
func (c *Client) ask(ctx context.Context, node string, repos []string, title string) (*SchemaView, error) {
	for _, repo := range repos {
		u := node + "/v1/repositories/" + url.PathEscape(repo) + "/schemas/" + safetext.EscapePath(title)
		view, status, err := c.get(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", repo, err)
		}
		if status == http.StatusNotFound {
			continue
		}
		// The answer must be about what was asked: a view of another title or repository (a misrouted proxy,
		// a buggy node) says nothing about this one's safe version.
		if got := strings.Trim(view.Title, "/"); got != title {
			return nil, fmt.Errorf("repository %s: the node answered for title %s, not %s", repo, quote(got), quote(title))
		}
		if view.Repository != "" && view.Repository != repo {
			return nil, fmt.Errorf("repository %s: the node answered for repository %s", repo, quote(view.Repository))
		}
		view.Node = node
		view.Repository = repo
		return view, nil
	}
	return nil, ErrUnknownSchema
}

func (c *Client) get(ctx context.Context, u string) (*SchemaView, int, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the node and repository are named by the callers; the URL would repeat them
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	if err := origin.CheckResponse(req.URL, resp); err != nil {
		return nil, 0, err // a Doer supplied by the caller may have followed a redirect anywhere
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err == nil && len(body) > MaxAnswerBytes {
		return nil, 0, fmt.Errorf("HTTP %d: the answer is larger than %d MiB", resp.StatusCode, MaxAnswerBytes>>20)
	}
	if err != nil {
		// The callers name the node (without its credentials) and the repository: the URL would repeat them.
		return nil, 0, fmt.Errorf("reading the answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		view, err := ParseView(body)
		if err != nil {
			return nil, 0, err
		}
		return view, http.StatusOK, nil
	case http.StatusNotFound:
		// Only schemasync's own answer says the repository does not know the title; a 404 page from
		// something else (a proxy, a web server at the wrong port) says nothing about it.
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			return nil, 0, &StatusError{URL: u, Status: resp.StatusCode, Message: errorMessage(body) + " (not schemasync's answer)"}
		}
		return nil, http.StatusNotFound, nil
	default:
		return nil, 0, &StatusError{URL: u, Status: resp.StatusCode, Message: errorMessage(body)}
	}
}

// ParseView decodes a node's 200 answer. It rejects bodies that are not a JSON object, whose fields have the
// wrong types, that lack the title or the safe_version field, whose safe_version is neither an X.Y.Z string
// nor null, or whose latest_version is neither an X.Y.Z string nor absent.
func ParseView(body []byte) (*SchemaView, error) {
	var v struct {
		SchemaView
		Safe json.RawMessage `json:"safe_version"` // to tell a missing field from null
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("schemasync answer is not a schema view: %w", err)
	}
	if v.Title == "" {
		return nil, errors.New("schemasync answer has no title")
	}
	if len(v.Safe) == 0 {
		return nil, errors.New("schemasync answer has no safe_version (neither a version nor null)")
	}
	if err := json.Unmarshal(v.Safe, &v.SafeVersion); err != nil {
		return nil, fmt.Errorf("schemasync answer is not a schema view: safe_version: %w", err)
	}
	if v.SafeVersion != nil && !version.Valid(*v.SafeVersion) {
		return nil, fmt.Errorf("schemasync answer has a malformed safe_version %s", quote(*v.SafeVersion))
	}
	if v.LatestVersion != "" && !version.Valid(v.LatestVersion) {
		return nil, fmt.Errorf("schemasync answer has a malformed latest_version %s", quote(v.LatestVersion))
	}
	return &v.SchemaView, nil
}

// quote quotes a string from a node for an error message: bounded, and escaped for terminals.
func quote(s string) string { return safetext.Quote(safetext.Bound(s, 100)) }

func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return safetext.Bound(e.Error, maxMessageBytes)
	}
	return safetext.Bound(strings.TrimSpace(string(body)), maxMessageBytes)
}

// maxMessageBytes bounds StatusError.Message, whatever a node put in its error answer.
const maxMessageBytes = 300
