package dbstate

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Reasons for refusing a move or a switchover. Callers branch on them with errors.Is; a *RefusalError carries
// every reason that applied.
var (
	ErrUnknownInstance     = errors.New("instance not found in the topology")
	ErrUnreachable         = errors.New("instance unreachable")
	ErrNotReplica          = errors.New("not a replica of the expected master")
	ErrPrimaryReplicates   = errors.New("the primary replicates from another instance")
	ErrReplicaUnhealthy    = errors.New("replication is not healthy")
	ErrLagTooHigh          = errors.New("replication lag above the bound")
	ErrErrantGTID          = errors.New("errant GTIDs")
	ErrBinlogFormat        = errors.New("binlog formats differ")
	ErrNoBinlog            = errors.New("no binary log or log_slave_updates")
	ErrNoGTID              = errors.New("replication does not use GTID")
	ErrLoop                = errors.New("the move would create a replication loop")
	ErrNotSameTree         = errors.New("instances are in different replication trees")
	ErrPositionUnreachable = errors.New("the new master does not have the replica's position and cannot get it in time")
	ErrAlreadyThere        = errors.New("the replica already replicates from there")
	ErrMultipleWritable    = errors.New("more than one writable instance")
	ErrUnfencedWriters     = errors.New("connected accounts write through read_only")
	ErrSameInstance        = errors.New("the two instances are the same")
	ErrDelayedCandidate    = errors.New("the candidate is a delayed replica")
	ErrReplicationFilter   = errors.New("the candidate filters what it replicates: it is not a full copy")
	ErrReplicationLogin    = errors.New("the replication account cannot replicate from the candidate")
	ErrGTIDDomain          = errors.New("the candidate logs in another GTID domain than the primary")
)

// RefusalError is returned when planning refuses an operation. It lists every reason; errors.Is matches any of
// the sentinels above that applied.
type RefusalError struct {
	Op      string // "switchover" or "move"
	Reasons []error
	// Checks are every preflight check that ran, passed and failed, in order (WriteText prints them).
	Checks []PreflightCheck
}

func (e *RefusalError) Error() string {
	parts := make([]string, len(e.Reasons))
	for k, r := range e.Reasons {
		parts[k] = r.Error()
	}
	return e.Op + " refused: " + strings.Join(parts, "; ")
}

// WriteText prints the refusal for a human: a heading, then every check with ok or FAIL.
func (e *RefusalError) WriteText(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "%s refused (%d of %d preflight checks failed):\n", e.Op, len(e.Reasons), len(e.Checks)); err != nil {
		return err
	}
	return writeChecks(w, e.Checks)
}

// Unwrap returns the reasons.
func (e *RefusalError) Unwrap() []error { return e.Reasons }

// reason wraps a sentinel with detail: "what: sentinel text".
type reason struct {
	detail string
	err    error
}

func (r *reason) Error() string { return r.detail + ": " + r.err.Error() }
func (r *reason) Unwrap() error { return r.err }

func because(err error, detail string) error { return &reason{detail: detail, err: err} }
