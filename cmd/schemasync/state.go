package main

import (
	"context"
	"fmt"
	"io"

	"github.com/evenkeel/evenkeel/internal/cli"
	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync"
	"github.com/evenkeel/evenkeel/schemasync/observation"
)

const stateUsage = `
Usage: schemasync state (--config FILE | --node URL) [--dirty] [--json]

Asks a running node for its cluster-wide view (GET /v1/state, or /v1/dirty with --dirty) and prints it as
"scan" does: unknown endpoints with their reasons, then each dirty or stale schema with its safe version and
the versions each endpoint serves, then a summary. With --json it prints the node's answer. Every string in
it (titles, reasons, URLs, node names) is bounded and escaped, in the table and in --json alike.

Exit status: 0 when the node is ready and its view is consistent; 1 when anything is dirty, stale or unknown,
the node is not ready, or it cannot be asked; 2 on a usage error.

Examples:
  schemasync state --config /etc/schemasync/schemasync.yml
  schemasync state --node http://schemasync1001.eqiad.example:8190 --dirty
  schemasync state --node http://schemasync1001.eqiad.example:8190 --json | jq '.schemas[] | select(.dirty) | .title'
`

// maxStateBytes bounds the answer `state` reads from a node.
const maxStateBytes = 256 << 20

// Bounds on the strings of a node's view, as printed: a node's own bounds are these or smaller (a title's is
// the one its scanner and gossip hold titles to).
const (
	maxTitleBytes  = observation.MaxTitleBytes
	maxReasonBytes = 1024
	maxURLBytes    = 2048
	maxNameBytes   = 256
)

func cmdState(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("state", stateUsage, stderr)
	configPath := fs.String("config", "", "configuration file: ask the node at its listen address")
	node := fs.String("node", "", "base URL of a node's API, instead of --config")
	dirty := fs.Bool("dirty", false, "only dirty or stale schemas and unknown endpoints (GET /v1/dirty)")
	asJSON := fs.Bool("json", false, "print the node's answer as JSON")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	return askState(ctx, *configPath, *node, *dirty, *asJSON, stdout, stderr)
}

func askState(ctx context.Context, configPath, node string, dirty, asJSON bool, stdout, stderr io.Writer) int {
	base, code := nodeURL("state", configPath, node, stderr)
	if code != cli.ExitOK {
		return code
	}
	path := "/v1/state"
	if dirty {
		path = "/v1/dirty"
	}
	var st schemasync.StateResponse
	if err := askNode(ctx, base, path, maxStateBytes, &st); err != nil {
		reportNodeError(stderr, "state", base, err)
		return cli.ExitFailure
	}
	cleanState(&st)
	if asJSON {
		if err := cli.WriteJSON(stdout, st); err != nil {
			fmt.Fprintln(stderr, "schemasync state:", err)
			return cli.ExitFailure
		}
	} else {
		if !st.Ready {
			fmt.Fprintf(stdout, "node %s is not ready: its first scan has not finished\n\n", st.Node)
		}
		printTable(stdout, &schemasync.View{At: st.GeneratedAt, Endpoints: st.Endpoints, Schemas: st.Schemas})
	}
	v := schemasync.View{Endpoints: st.Endpoints, Schemas: st.Schemas}
	if !st.Ready || !v.Consistent() {
		return cli.ExitFailure
	}
	return cli.ExitOK
}

// cleanState bounds and escapes every string a node put in its view, and shows URLs without credentials.
func cleanState(st *schemasync.StateResponse) {
	clean(&st.Node, maxNameBytes)
	observers := func(obs []schemasync.ObserverView) {
		for i := range obs {
			clean(&obs[i].Node, maxNameBytes)
			clean(&obs[i].Error, maxReasonBytes)
		}
	}
	url := func(s *string) { *s = safetext.RedactURL(*s); clean(s, maxURLBytes) }
	for i := range st.Endpoints {
		e := &st.Endpoints[i]
		clean(&e.Repository, maxNameBytes)
		url(&e.URL)
		clean(&e.State, 32)
		clean(&e.Reason, maxReasonBytes)
		observers(e.Observers)
	}
	for i := range st.Schemas {
		s := &st.Schemas[i]
		clean(&s.Repository, maxNameBytes)
		clean(&s.Title, maxTitleBytes)
		for j := range s.Reasons {
			clean(&s.Reasons[j], maxReasonBytes)
		}
		for j := range s.Endpoints {
			e := &s.Endpoints[j]
			url(&e.URL)
			clean(&e.State, 32)
			clean(&e.Reason, maxReasonBytes)
			observers(e.Observers)
		}
	}
}
