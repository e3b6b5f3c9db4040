package gossip

// LocalState is the push/pull state memberlist would send now (for tests outside the package).
func (c *Cluster) LocalState() []byte { return (*delegate)(c).LocalState(false) }
