package dbstate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// BenchmarkVarsPush measures pushing 10 variables to 6 instances on loopback (VarsPlan.Execute: snapshot, apply,
// read-back), and the same push with a failure forced right before the read-back, which restores all 6
// instances and verifies them by reading. Each of 10 runs alternates between two sets of values so that every
// run changes all 60 values. Run it with -benchtime 1x: it does its repetitions itself.
func BenchmarkVarsPush(b *testing.B) {
	const runs = 10
	insts := dbtest.Start(b, 6)
	c := newClient(b)
	ctx := context.Background()
	docs := [2]string{
		"variables: {max_connections: 400, slow_query_log: ON, long_query_time: 2s, wait_timeout: 1h, interactive_timeout: 1h, key_buffer_size: 2M, sql_mode: STRICT_TRANS_TABLES, optimizer_switch: mrr=on, net_read_timeout: 40s, max_allowed_packet: 32M}\n",
		"variables: {max_connections: 500, slow_query_log: OFF, long_query_time: 3s, wait_timeout: 2h, interactive_timeout: 2h, key_buffer_size: 4M, sql_mode: NO_ENGINE_SUBSTITUTION, optimizer_switch: mrr=off, net_read_timeout: 50s, max_allowed_packet: 64M}\n",
	}
	var ds [2]*dbstate.DesiredVars
	for k, doc := range docs {
		d, err := dbstate.ParseDesiredVars(strings.NewReader(doc))
		if err != nil {
			b.Fatal(err)
		}
		ds[k] = d
	}
	forced := errors.New("forced failure")
	var table strings.Builder
	fmt.Fprintf(&table, "\n%-24s %4s %10s %10s %10s\n", "push (6 instances, 10 vars)", "runs", "plan_ms", "median_ms", "max_ms")
	b.ResetTimer()
	for _, mode := range []string{"applied everywhere", "forced rollback"} {
		var plans, pushes []time.Duration
		for run := range runs {
			d := ds[run%2]
			if mode == "forced rollback" {
				d = ds[0] // the instances hold ds[1] and keep it: every forced run changes all 60 values again
			}
			pstart := time.Now()
			p, err := dbstate.PlanVariables(ctx, c, addrs(insts), d, dbstate.VarsOptions{})
			if err != nil {
				b.Fatal(err)
			}
			plans = append(plans, time.Since(pstart))
			if !p.Changed() {
				var sb strings.Builder
				p.WriteText(&sb)
				b.Fatalf("run %d: nothing to change\n%s", run, sb.String())
			}
			opt := dbstate.VarsExecOptions{}
			if mode == "forced rollback" {
				opt.BeforePhase = func(ctx context.Context, phase string) error {
					if phase == "read-back" {
						return forced
					}
					return nil
				}
			}
			start := time.Now()
			res, err := p.Execute(ctx, opt)
			pushes = append(pushes, time.Since(start))
			want := dbstate.OutcomeApplied
			if mode == "forced rollback" {
				want = dbstate.OutcomeRolledBack
			}
			if res.Outcome != want {
				b.Fatalf("run %d: %s: %v", run, res.Outcome, err)
			}
		}
		fmt.Fprintf(&table, "%-27s %4d %10.1f %10.1f %10.1f\n", mode, runs, ms(median(plans)), ms(median(pushes)), ms(maxOf(pushes)))
		unit := strings.ReplaceAll(mode, " ", "_")
		b.ReportMetric(ms(median(pushes)), unit+"_ms_median")
		b.ReportMetric(ms(maxOf(pushes)), unit+"_ms_max")
	}
	b.StopTimer()
	b.Log(table.String())
	b.ReportMetric(0, "ns/op")
}
