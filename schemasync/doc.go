// Package schemasync measures a fleet of schema hosts: it scans every endpoint (one host's base URL for one
// schema repository), and publishes, for each schema, the highest version that every endpoint serves (the safe
// version), with a dirty flag while the endpoints disagree. Nodes share what they scan over a gossip cluster
// (hashicorp/memberlist), so that any node answers with the cluster-wide view.
//
// # Model
//
// Data flows one way:
//
//	schema endpoints (HTTP) -> Scanner -> Observation -> State (pure) -> View -> HTTP API, metrics
//	                                          ^   |
//	              package gossip (memberlist) -+
//
// An Observation is one scan of one endpoint by one node (its observer): the versions of every schema title
// that the endpoint serves, or the reason the scan failed, and when the scan started. A version counts only
// once a GET of its extensionless file (<title>/X.Y.Z, which EventGate resolves) answers 200: a directory
// listing can run ahead of a git pull that is still writing files. A confirmation is repeated at least every
// scan.reconfirm_after, and an observation is dated by the oldest confirmation it relies on, so that no
// version counts on a GET older than max_staleness.
//
// State takes observations and the current time and makes every decision; it has no sockets, timers or
// goroutines, so its rules are tested directly. Scanner, Service (the scan loop, the HTTP API and metrics) and
// package gossip are thin adapters that feed it. Observation and what gossip carries of it live in package
// observation, which both use.
//
// # Decisions
//
// Per repository and schema title, from the latest observation of each (endpoint, observer):
//
//   - An endpoint is known when some observer's latest observation of it is fresh (at most max_staleness old)
//     and succeeded. A version is present on it only if every such fresh, successful observation includes it.
//     Failed or stale observations neither add nor remove versions.
//   - Dirty: the known endpoints, or the observers of one endpoint, disagree on the version set, or some known
//     endpoint lacks the title.
//   - Stale: some endpoint is unknown.
//   - Safe version: with every endpoint known, the highest version present on all of them. Otherwise the last
//     safe version is held, and lowered if a known endpoint no longer serves it; it never advances while any
//     endpoint is unknown.
//
// # Guarantees
//
//   - S1 safety: a version is reported safe only if every endpoint of its repository was confirmed, by a fresh
//     observation, to serve it (or, while an endpoint is unknown, it is the held version, marked stale).
//   - S2 liveness: once every endpoint serves v and answers, every node reports v safe within scan_interval plus
//     the propagation delay (measured by BenchmarkPropagation).
//   - S3 no single point of failure: every node answers with the cluster-wide view; a node that dies costs only
//     its own scans, whose observations expire through max_staleness.
//
// # HTTP API
//
// Service.Handler is the API as a net/http handler; Server serves it as cmd/schemasync does. The safe-version
// lookup (GET /v1/repositories/{repo}/schemas/{title...}) is what canaries and deploy tools ask, at high rates:
// each answer is encoded once per view and then served as the same bytes, with no per-request encoding,
// formatting, logging or metrics. Server serves that one endpoint with github.com/valyala/fasthttp, which
// reuses its request and response objects per connection, and hands every other request to the net/http
// handler, so that they answer as before (405 with Allow, HEAD, /metrics and its series cap, paths that need
// cleaning or unescaping). It does so because net/http alone, after every overhead of ours was removed, still
// allocated 17 objects (2.3 KB) per lookup, and on the same two cores beside nginx serving the answer as a
// static file it served 0.56-0.81x nginx's requests per second (BenchmarkAPIvsNginx; numbers in the
// README); with fasthttp it serves about as much as nginx with one worker or more. Every request, whichever
// path serves it, is within the same bounds: api.read_header_timeout, read_timeout, write_timeout and
// idle_timeout, api.max_connections (Service.Listen), 16 KiB of request headers (431) and 64 KiB of body
// (413); a request target net/http would reject is answered 400.
//
// # Merge rule (the cluster)
//
// Every node holds, per (endpoint, observer), the observation with the highest sequence number it has heard of.
// Each observation travels as a small digest (observer, endpoint, sequence, content hash, error, age); the
// content itself is fetched over HTTP by hash from the member that sent the digest, at the API address that
// member advertises (never a URL a message names), once per distinct content. Every number and string of a
// digest is range-checked first (see package gossip); a peer with the gossip key is still trusted for what it
// claims to have observed, within those ranges.
// The receiver dates an observation by its own clock: receipt time minus the age the sender wrote when it
// sent the message, so clocks that differ between nodes do not matter. From the same set of observations every
// node computes the same view with the same State rules. The one thing observations cannot rebuild is a held
// safe version (which needs the history before an endpoint became unknown): push/pull carries the held
// versions of repositories with an unknown endpoint, and a node without history (restarted during the
// outage) adopts them, lowered by what its own known endpoints serve, and only for repositories whose
// endpoint set equals its own.
//
// How digests travel (one hop to every member when a scan's result changed, gossip with one relay, and
// push/pull), how membership heals after a long partition, and what gossip checks are package gossip's
// documentation. Service.NewCluster creates the gossip of a service from its configuration.
package schemasync
