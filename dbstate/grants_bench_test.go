package dbstate_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// BenchmarkGrants measures, for 200, 2,000 and 20,000 accounts with 3 grants each on one server (loopback):
// read and diff against an empty server, apply (statements per second), and read and diff against the server
// that then matches (the empty plan). Run it with -benchtime 1x: it does its measurements itself and prints a table.
func BenchmarkGrants(b *testing.B) {
	sizes := []int{200, 2000, 20000}
	insts := dbtest.Start(b, len(sizes))
	c := newClient(b)
	ctx := context.Background()
	type row struct {
		n                   int
		emptyPlan, matchPln time.Duration
		stmts               int
		apply               time.Duration
	}
	var rows []row
	for k, n := range sizes {
		var y strings.Builder
		y.WriteString("users:\n")
		for i := range n {
			fmt.Fprintf(&y, "  - {name: u%d, host: '10.%%', auth: {password_hash: '*D821809F681A40A6E379B50D0463EFAE20BDD122'}, grants: "+
				"[{privileges: [SELECT, INSERT], on: 'db%d.*'}, {privileges: [SELECT], on: 'shared.*'}, {privileges: [PROCESS], on: '*.*'}]}\n", i, i%50)
		}
		d, err := dbstate.ParseDesiredGrants([]byte(y.String()))
		if err != nil {
			b.Fatal(err)
		}
		target := dbstate.GrantsTarget{Independent: []string{insts[k].Addr()}}
		start := time.Now()
		p, err := dbstate.PlanGrants(ctx, c, target, d, dbstate.GrantsOptions{})
		if err != nil {
			b.Fatal(err)
		}
		r := row{n: n, emptyPlan: time.Since(start), stmts: len(p.Changes)}
		start = time.Now()
		if _, err := p.Execute(ctx, dbstate.ExecOptions{}); err != nil {
			b.Fatal(err)
		}
		r.apply = time.Since(start) // includes the verifying read-back
		start = time.Now()
		p2, err := dbstate.PlanGrants(ctx, c, target, d, dbstate.GrantsOptions{})
		if err != nil {
			b.Fatal(err)
		}
		r.matchPln = time.Since(start)
		if !p2.Empty() {
			b.Fatalf("second plan has %d changes", len(p2.Changes))
		}
		rows = append(rows, r)
	}
	var t strings.Builder
	fmt.Fprintf(&t, "\n| accounts | read+diff, empty server | read+diff, matching server | per account (matching) | apply | statements/s |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&t, "| %d | %.0f ms | %.0f ms | %.1f µs | %d statements in %.1f s | %.0f |\n", r.n, ms(r.emptyPlan), ms(r.matchPln),
			float64(r.matchPln.Microseconds())/float64(r.n), r.stmts, r.apply.Seconds(), float64(r.stmts)/r.apply.Seconds())
	}
	b.Log(t.String())
}
