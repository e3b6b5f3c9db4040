package dbstate_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSplitMatrix runs every cell of the split matrix (see split_matrix_test.go) 30 times, back to back on
// one testbed, and prints per cell the write-unavailability window (the longest time without an acknowledged
// write, from the last one before the switchover to the end of the writing after it) and the total switchover
// time, median and max over the runs that switched, with the splits, the acknowledged writes lost, the runs that
// failed a check and the outcomes. The "app baseline" rows are a writer that read_only stops, through the same
// harness. The writers go on for 500 ms after each switchover (1 s in the test), 2 s for the event.
//
// Run it with -benchtime 1x: it does its repetitions itself. EVENKEEL_SPLIT_RUNS sets the runs per cell, and
// EVENKEEL_SPLIT_KINDS (comma-separated substrings of the writer names) picks writers, for shorter runs.
func BenchmarkSplitMatrix(b *testing.B) {
	runs := 30
	if v := os.Getenv("EVENKEEL_SPLIT_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			b.Fatalf("EVENKEEL_SPLIT_RUNS=%q: want a number of runs from 1 to 1000", v)
		}
		runs = n
	}
	kinds := splitKinds
	if v := os.Getenv("EVENKEEL_SPLIT_KINDS"); v != "" {
		kinds = nil
		for _, k := range splitKinds {
			for _, want := range strings.Split(v, ",") {
				if want != "" && strings.Contains(k.name, want) {
					kinds = append(kinds, k)
					break
				}
			}
		}
		if len(kinds) == 0 {
			b.Fatalf("EVENKEEL_SPLIT_KINDS=%q names no writer", v)
		}
	}
	start := time.Now()
	b.ResetTimer()
	stats, rebuilds := runSplitMatrix(b, splitPlan{runs: runs, post: 500 * time.Millisecond}, kinds)
	b.StopTimer()
	// Printed, not logged: a benchmark's log is cut at 10 lines without -v.
	fmt.Printf("%s\nunprivileged baseline of BenchmarkSwitchoverWindow (README): window median 7.6 ms\nsplit matrix: %d runs per cell, %s in all, testbed rebuilt %d times after a run broke it\n",
		splitTable(stats), runs, time.Since(start).Round(time.Second), rebuilds)
	failed := 0
	for _, s := range stats {
		if n := s.notes(); len(n) > 0 {
			fmt.Printf("%s: %d refused or rolled back, the first: %s\n", s.cell, len(n), n[0])
		}
		if f := s.failed(); len(f) > 0 {
			failed++
			fmt.Printf("%s: %d problems, the first: %s\n", s.cell, len(f), strings.Join(f[:min(3, len(f))], "; "))
		}
	}
	if failed > 0 {
		b.Errorf("%d of %d cells failed a check (see the table's fail column)", failed, len(stats))
	}
	b.ReportMetric(0, "ns/op")
}
