package gossip

import "time"

// LeavingMarks is how many members this node holds a leave announcement for (for tests outside the package).
func (c *Cluster) LeavingMarks() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.leaving)
}

// LeaveMarkTTL is leaveMarkTTL (for tests outside the package).
func LeaveMarkTTL(gossipInterval time.Duration) time.Duration { return leaveMarkTTL(gossipInterval) }
