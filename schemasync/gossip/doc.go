// Package gossip shares a schemasync node's observations with the other nodes over hashicorp/memberlist, and
// feeds theirs to the node's service. It decides nothing about versions: every decision is the service's
// (its Delegate, the way memberlist's Delegate is what memberlist needs of its user). It carries
// observations, checks them and hands them over.
//
// # Messages
//
// Each observation travels as a small digest (observer, repository, endpoint, sequence number, content hash
// or error, age; see observation.Digest), never as its content. Digests travel three ways: a node whose scan
// of an endpoint changed result sends the digest straight to every member (one hop); every digest is also
// gossiped, and relayed once by each node that learns it (epidemic and bounded: a node relays only what was
// new to it); and push/pull exchanges the digests of everything a node holds, repairing whatever was lost.
// Push/pull also carries the sender's held safe versions of repositories with an unknown endpoint, with the
// hash of each such repository's endpoint set, for a node that restarted during an outage to adopt.
//
// The receiver dates an observation by its own clock: receipt time minus the age the sender wrote when it
// sent the message (an 8-byte field written at each transmission), so clocks that differ between nodes do
// not matter.
//
// # Guarantees
//
//   - Range checks: every number and string of a digest is checked before it is used (checkDigest): an age
//     from 0 to Limits.MaxAge (a negative, overflowing or older one is rejected), a sequence number above 0
//     and at most a year ahead of the receiver's clock (a bound no real clock reaches, which still lets
//     nodes whose clocks are off by days gossip), a bounded observer name, an endpoint configured here in
//     the repository the digest names, an error of at most observation.MaxReasonBytes, or else a well-formed
//     content hash. Sender names are bounded, a push/pull holds at most 100,000 held versions. What is
//     rejected is counted in schemasync_gossip_rejected_total{reason} and logged at debug level only, and
//     memberlist's own warnings are rate-limited in the log: garbage cannot flood it.
//   - Content only from the sender: the content of a digest is fetched by hash over HTTP from the member that
//     sent (or relayed) the digest, at the API URL that member advertises in its memberlist metadata (http or
//     https, no credentials, query or fragment, on the address the member gossips from: an IP host must be
//     it, and a host name must resolve to it when dialled, any loopback address standing for any other),
//     never from a URL a message names, without a proxy, and without following a redirect. It is fetched once per distinct content however many digests name it (a
//     relayed digest waits for a fetch of the same content in progress; the observer's own digest never
//     does, so a key holder that announces a predictable hash first cannot delay it), bounded to 64 MiB and
//     Limits.MaxTitles titles, and checked against its hash before the Delegate sees it.
//   - Bounded push/pull: a node's full state is a digest per observation it holds (which the service bounds in
//     number, and whose strings are bounded as above) plus its held versions, never content or unbounded text,
//     so it stays far below memberlist's 20 MiB limit on a user state (TestPushPullStateBounded).
//   - Delegates never block: memberlist calls the delegate methods from its own goroutines. They only decode,
//     count, and queue into bounded inboxes (full: the digest is dropped and counted; the next push/pull
//     brings it again); the one Delegate method they call synchronously, Digests, must not wait for a lock.
//     Run's workers do the rest: call the Delegate, and hand a digest whose content this node lacks to the
//     fetcher of the member that sent it. Each member's fetcher fetches one content at a time, in order,
//     from at most 256 queued digests (more are dropped and counted), so a member whose API drips or never
//     answers delays only its own digests, never the workers or another member's. At most 256 members have a
//     fetcher at once.
//   - Lifecycle: New creates memberlist (it listens from then on); Run starts four workers, the direct sender
//     and the join loop (and the workers start the members' fetchers), and returns once they have all ended, when its context ends or the cluster leaves;
//     Leave (or Close) announces the departure, shuts memberlist down and waits for Run. No goroutine of the
//     package outlives Leave (TestNoGoroutineOutlivesLeave).
//
// # Membership
//
// A node joins its seeds with backoff until another node answers, and then every RejoinInterval dials the
// members it believes dead (and its seeds while it is alone): memberlist stops gossiping to a dead member
// after 30 s, so without this a partition longer than that would never heal. A round dials at most three
// dead members, those tried least recently first, one at a time, and stops when Run ends: a dial cannot be
// cancelled and hangs for memberlist's TCP timeout against a host that drops packets, so Leave waits for at
// most one. A dead or departed member is forgotten once it has been gone longer than Limits.MaxAge (no
// node keeps an observation that old), and beyond 256 of them the longest gone are forgotten first. A node that leaves on purpose
// says so first, so that others show it "left" rather than "dead". Gossip carries no signature, so any key
// holder could forge that announcement: a node accepts it only from the leaving member itself (as the
// message names its sender), only for a live member, and only for a departure that follows within
// max(30 gossip intervals, 5s), so that forged announcements neither grow its memory nor make a member
// that crashes later look as if it had left (and go unredialled). Gossip may be encrypted with a keyring
// (LoadKeyring; rotated with ReloadKeyring) and separated by a memberlist label.
//
// A peer that holds the gossip key is still trusted for what it claims to have observed, within the ranges
// above: it can make nodes believe an endpoint serves what it does not, but it cannot make them send
// requests to an address that no member gossips from (memberlist itself probes whatever address a member it
// forges names), date an observation outside the range any node keeps, or
// grow their memory without bound. Gossip carries no signature, so it can also speak in another node's
// name: its digest then replaces that node's observation until the node hears its own name with the
// higher sequence number, continues its numbering above it, and its next scan replaces the lie everywhere
// (within a scan interval and a gossip round; the peer can repeat it). Two digests of one observer with one
// sequence number and different outcomes leave every node with the same one (the Delegate keeps the outcome
// that sorts first), so sending each node another cannot split their answers. It can forge memberlist's own
// messages too (suspect, dead), which memberlist does not defend against. A version that no real
// observation confirmed can reach an answer only this way: by a key holder's lie.
package gossip
