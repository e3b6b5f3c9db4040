package dbstate

import (
	"context"
	"fmt"
	"time"
)

// Progress is one report of a long wait (ExecOptions.Progress): what is awaited, for how long so far, and the
// GTID gap left.
type Progress struct {
	What     string        `json:"what"`     // e.g. "catch-up: 127.0.0.1:3307 to apply 0-1-100"
	Instance string        `json:"instance"` // the instance that is awaited
	Elapsed  time.Duration `json:"elapsed_ns"`
	Target   Position      `json:"target"`
	At       Position      `json:"at"`   // where Instance is now (nil when it could not be read)
	Left     uint64        `json:"left"` // transactions left, by sequence number, summed over the target's domains
}

func (p Progress) String() string {
	at := "unknown"
	if p.At != nil {
		at = p.At.String()
	}
	return fmt.Sprintf("%s: waiting %v, %d transactions left (at %s, target %s)", p.What, p.Elapsed.Round(time.Second), p.Left, at, p.Target)
}

// Gap is how many transactions, by sequence number, at lacks of target, summed over target's domains. It is
// pure and counts per domain whatever the server id.
func Gap(target, at Position) uint64 {
	var n uint64
	for _, g := range target {
		have, ok := at.Get(g.Domain)
		switch {
		case !ok:
			n += g.Seq
		case have.Seq < g.Seq:
			n += g.Seq - have.Seq
		}
	}
	return n
}

type progressKey struct{}

type progressSink struct {
	report func(Progress)
	every  time.Duration
}

func withProgress(ctx context.Context, f func(Progress), every time.Duration) context.Context {
	if every <= 0 {
		every = time.Second
	}
	return context.WithValue(ctx, progressKey{}, &progressSink{report: f, every: every})
}

// waitReporting runs wait and, when the context asks for progress (ExecOptions.Progress), reports every period
// until it returns: elapsed time and the gap between target and pick(addr's variables).
func waitReporting(ctx context.Context, s Servers, what, addr string, target Position, pick func(*Vars) Position, wait func(context.Context) error) error {
	sink, _ := ctx.Value(progressKey{}).(*progressSink)
	if sink == nil {
		return wait(ctx)
	}
	start := time.Now()
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(sink.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p := Progress{What: what, Instance: addr, Target: target}
			rctx, cancel := context.WithTimeout(ctx, sink.every)
			if v, err := s.Vars(rctx, addr); err == nil {
				p.At = pick(v)
				p.Left = Gap(target, p.At)
			}
			cancel()
			p.Elapsed = time.Since(start)
			select {
			case <-done: // finished meanwhile: no stale report
				return
			default:
			}
			sink.report(p)
		}
	}()
	err := wait(ctx)
	close(done)
	<-stopped
	return err
}

func appliedPos(v *Vars) Position { return v.GTIDCurrentPos }
func loggedPos(v *Vars) Position  { return v.GTIDBinlogPos }
