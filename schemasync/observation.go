package schemasync

import "github.com/evenkeel/evenkeel/schemasync/observation"

// Observation is one scan of one endpoint by one node (the observer); see package observation, which the
// gossip package shares.
type Observation = observation.Observation

// HeldVersion is one held safe version, as nodes share them.
type HeldVersion = observation.HeldVersion

// ContentHash names the content of an observation (its titles and versions), so that nodes fetch each
// distinct content once, and check what they fetched.
func ContentHash(schemas map[string][]Version) string { return observation.ContentHash(schemas) }

// MaxReasonBytes bounds the reason of a failed scan (and any error text that travels by gossip or into an
// answer): a hostile host's names cannot make answers large.
const MaxReasonBytes = observation.MaxReasonBytes
