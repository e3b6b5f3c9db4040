package dbstate

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
)

// Bounds of ReadAuditRun: an audit log is outside text (it may be cut by a crash, edited, or huge).
const (
	maxAuditLine    = 1 << 20 // longer lines are skipped
	maxAuditRecords = 100_000 // per run
	maxAuditRuns    = 100_000 // distinct run ids remembered
)

// ErrRunNotFound is returned by ReadAuditRun when the log has no record of the run asked for.
var ErrRunNotFound = errors.New("no such run in the audit log")

// AuditRun is one execution of a plan in an audit log.
type AuditRun struct {
	ID      string        `json:"run"`
	Records []AuditRecord `json:"records"`
	// Runs are the ids of every run in the log, in order of first appearance; Skipped counts lines that are no
	// audit record (blank, not JSON, longer than 1 MiB).
	Runs    []string `json:"runs"`
	Skipped int      `json:"skipped"`
}

// ReadAuditRun reads an audit log (JSON lines of AuditRecord) and returns the run with id runID, or the last
// run when runID is empty. Records without a run id (logs of older versions) form one run per plan start. Only
// one run is kept in memory.
func ReadAuditRun(r io.Reader, runID string) (*AuditRun, error) {
	out := &AuditRun{}
	seen := map[string]bool{}
	var cur *AuditRun
	skipped, err := scanAudit(r, func(id string, rec AuditRecord) error {
		if !seen[id] && len(seen) < maxAuditRuns {
			seen[id] = true
			out.Runs = append(out.Runs, id)
		}
		if runID != "" && id != runID {
			return nil
		}
		if cur == nil || cur.ID != id {
			cur = &AuditRun{ID: id} // without runID: the last run is the last one seen
		}
		if len(cur.Records) >= maxAuditRecords {
			return fmt.Errorf("audit log: run %s has more than %d records", id, maxAuditRecords)
		}
		cur.Records = append(cur.Records, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if cur == nil {
		if runID != "" {
			return nil, fmt.Errorf("%w: %q", ErrRunNotFound, runID)
		}
		return nil, fmt.Errorf("%w: the log has no records", ErrRunNotFound)
	}
	cur.Runs, cur.Skipped = out.Runs, skipped
	return cur, nil
}

// scanAudit calls fn with each audit record of r and its run id, in order, up to fn's first error. Records
// without a run id (logs of older versions) get one per plan start. It returns how many lines it skipped
// (blank, not JSON, no phase, longer than 1 MiB).
func scanAudit(r io.Reader, fn func(id string, rec AuditRecord) error) (int, error) {
	skipped, legacy := 0, 0
	src := bufio.NewReader(r)
	newScanner := func() *bufio.Scanner {
		sc := bufio.NewScanner(src)
		sc.Buffer(make([]byte, 0, 64*1024), maxAuditLine)
		return sc
	}
	sc := newScanner()
	for {
		if !sc.Scan() {
			if errors.Is(sc.Err(), bufio.ErrTooLong) {
				// The scanner holds the first MiB of the line: skip the rest of it and go on.
				skipped++
				skipLine(src)
				sc = newScanner()
				continue
			}
			if err := sc.Err(); err != nil {
				return skipped, fmt.Errorf("audit log: %w", err)
			}
			return skipped, nil
		}
		line := strings.TrimSpace(sc.Text())
		var rec AuditRecord
		if line == "" || json.Unmarshal([]byte(line), &rec) != nil || rec.Phase == "" {
			skipped++
			continue
		}
		id := rec.Run
		if id == "" {
			if rec.Phase == "plan" && rec.Result == "start" {
				legacy++
			}
			id = fmt.Sprintf("(no id %d)", legacy)
		}
		if err := fn(id, rec); err != nil {
			return skipped, err
		}
	}
}

// skipLine reads br up to and including the next newline (or to its end).
func skipLine(br *bufio.Reader) {
	for {
		if _, err := br.ReadSlice('\n'); err != bufio.ErrBufferFull {
			return
		}
	}
}

// Window is the write-unavailability window of a switchover run: from the start of set-read-only to the end of
// promote (the candidate writable). ok is false when the run has no such pair.
func (r *AuditRun) Window() (time.Duration, bool) {
	var from, to time.Time
	for _, rec := range r.Records {
		switch {
		case rec.Step == "set-read-only" && rec.Phase == "do" && rec.Result == "start":
			from = rec.Time
		case rec.Step == "promote" && rec.Phase == "do" && rec.Result == "ok":
			to = rec.Time
		}
	}
	if from.IsZero() || to.IsZero() || to.Before(from) {
		return 0, false
	}
	return to.Sub(from), true
}

// WriteTimeline prints the run for a human: who ran what where, then one line per record with its offset from
// the first, and the outcome and window at the end. Text from the log is cleaned of control characters.
func (r *AuditRun) WriteTimeline(w io.Writer) error {
	var b strings.Builder
	first := r.Records[0]
	fmt.Fprintf(&b, "Run %s: %s\n", clean(r.ID), clean(first.Plan))
	fmt.Fprintf(&b, "  by OS user %s on host %s, as database account %s\n", orNone(clean(first.User)), orNone(clean(first.Host)), orNone(clean(first.Account)))
	fmt.Fprintf(&b, "  started %s\n\n", first.Time.UTC().Format(time.RFC3339Nano))
	result := "unfinished (no plan result: dbstate may have died; the last start line is the step that was running)"
	for _, rec := range r.Records {
		what := clean(rec.Step)
		if what == "" {
			what = "plan"
		}
		if rec.Instance != "" {
			what += " on " + clean(rec.Instance)
		}
		fmt.Fprintf(&b, "  %+9.3fs  %-44s %-8s %-16s", rec.Time.Sub(first.Time).Seconds(), what, clean(rec.Phase), clean(rec.Result))
		if rec.DurationMS > 0 {
			fmt.Fprintf(&b, " %9.1f ms", rec.DurationMS)
		}
		if rec.Detail != "" {
			fmt.Fprintf(&b, "  %s", clean(rec.Detail))
		}
		if rec.Error != "" {
			fmt.Fprintf(&b, "\n             error: %s", clean(rec.Error))
		}
		b.WriteString("\n")
		if rec.Phase == "plan" && rec.Result != "start" {
			result = clean(rec.Result)
		}
	}
	last := r.Records[len(r.Records)-1]
	fmt.Fprintf(&b, "\nResult: %s, %.3fs from first to last record\n", result, last.Time.Sub(first.Time).Seconds())
	if d, ok := r.Window(); ok {
		fmt.Fprintf(&b, "Write window (set-read-only started to promote done): %.1f ms\n", float64(d.Microseconds())/1000)
	}
	if len(r.Runs) > 1 {
		fmt.Fprintf(&b, "(%d runs in this log; pick one with --run ID)\n", len(r.Runs))
	}
	if r.Skipped > 0 {
		fmt.Fprintf(&b, "(%d lines skipped: not audit records)\n", r.Skipped)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// clean makes text from a log safe for a terminal: every character that safetext.Escape would escape (control
// characters, format characters such as bidirectional overrides, other non-printable runes, bytes that are not
// UTF-8) becomes '?', and it is cut at 2000 bytes.
func clean(s string) string {
	if len(s) > 2000 {
		s = s[:2000] + "..."
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}
