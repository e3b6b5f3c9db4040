package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/evenkeel/evenkeel/internal/cli"
	"github.com/evenkeel/evenkeel/internal/origin"
	"github.com/evenkeel/evenkeel/internal/safetext"
	"github.com/evenkeel/evenkeel/schemasync"
	"github.com/evenkeel/evenkeel/schemasync/gossip"
)

const membersUsage = `
Usage: schemasync members (--config FILE | --node URL) [--json]

Asks a running node (its HTTP API: the config's listen address, or --node) which cluster members it knows,
with their state (alive, dead or left: memberlist does not expose its suspicion of a member), datacenter and API address.

Examples:
  schemasync members --config /etc/schemasync/schemasync.yml
  schemasync members --node http://schemasync1001.eqiad.example:8190 --json
`

func cmdMembers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("members", membersUsage, stderr)
	configPath := fs.String("config", "", "configuration file: ask the node at its listen address")
	node := fs.String("node", "", "base URL of a node's API, instead of --config")
	asJSON := fs.Bool("json", false, "print JSON")
	if done, code := cli.Parse(fs, args, stdout); done {
		return code
	}
	base, code := nodeURL("members", *configPath, *node, stderr)
	if code != cli.ExitOK {
		return code
	}
	var mr schemasync.MembersResponse
	if err := askNode(ctx, base, "/v1/members", maxMembersBytes, &mr); err != nil {
		reportNodeError(stderr, "members", base, err)
		return cli.ExitFailure
	}
	cleanMembers(&mr)
	if *asJSON {
		_ = cli.WriteJSON(stdout, mr)
		return cli.ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tADDRESS\tDATACENTER\tAPI")
	alive := 0
	for _, m := range mr.Members {
		name := m.Name
		if m.Self {
			name += " (this node)"
		}
		if m.State == "alive" {
			alive++
		}
		cli.Row(tw, name, m.State, m.Address, m.Datacenter, m.API)
	}
	tw.Flush()
	if !mr.Cluster {
		fmt.Fprintln(stdout, "\nthis node runs alone (no cluster.bind)")
	} else {
		fmt.Fprintf(stdout, "\n%d of %d members alive; gossip keys (primary first): %s\n", alive, len(mr.Members), keysOrNone(mr.Keys))
	}
	return cli.ExitOK
}

// maxMembersBytes bounds the answer `members` reads from a node.
const maxMembersBytes = 4 << 20

// nodeURL is the base URL of the node a command asks: --node, or the config's listen address (an unspecified
// host is asked at 127.0.0.1). A missing or unusable one is a usage error, reported on stderr.
func nodeURL(cmd, configPath, node string, stderr io.Writer) (string, int) {
	base := node
	if base == "" {
		if configPath == "" {
			fmt.Fprintf(stderr, "schemasync %s: --config or --node is required\n", cmd)
			return "", cli.ExitUsage
		}
		cfg, err := schemasync.LoadConfig(configPath)
		if err != nil {
			fmt.Fprintf(stderr, "schemasync %s: %v\n", cmd, err)
			return "", cli.ExitUsage
		}
		host, port, _ := net.SplitHostPort(cfg.Listen)
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		base = "http://" + net.JoinHostPort(host, port)
	}
	if err := origin.CheckBaseURL(base); err != nil { // paths are appended to it: no query or fragment either
		fmt.Fprintf(stderr, "schemasync %s: --node %v\n", cmd, err)
		return "", cli.ExitUsage
	}
	return strings.TrimSuffix(base, "/"), cli.ExitOK
}

// reportNodeError prints why the node at base could not be asked: the node without its credentials, the
// error escaped and bounded.
func reportNodeError(stderr io.Writer, cmd, base string, err error) {
	fmt.Fprintf(stderr, "schemasync %s: %s: %s\n", cmd, safetext.Clean(base, 200),
		safetext.Clean(err.Error(), 1000))
}

// askNode GETs base+path and decodes its JSON answer into v: within 10 s, following redirects only within
// the node's origin, reading at most limit bytes. The caller bounds and escapes the strings in v.
func askNode(ctx context.Context, base, path string, limit int, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	client := &http.Client{CheckRedirect: origin.Redirects(origin.MaxRedirects)}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the caller names the node
		}
		return fmt.Errorf("is the node running? %w", err)
	}
	defer resp.Body.Close()
	if err := origin.CheckResponse(req.URL, resp); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("answered %s", safetext.Bound(resp.Status, 80))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if len(body) > limit {
		return fmt.Errorf("the answer is larger than %d MiB", limit>>20)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("bad answer: %w", err)
	}
	return nil
}

// clean bounds *s to n bytes and escapes it for terminals.
func clean(s *string, n int) { *s = safetext.Escape(safetext.Bound(*s, n)) }

// cleanMembers bounds and escapes every string a node put in its members answer, for the table and --json.
func cleanMembers(mr *schemasync.MembersResponse) {
	clean(&mr.Node, maxNameBytes)
	for i := range mr.Keys {
		clean(&mr.Keys[i], 128)
	}
	for i := range mr.Members {
		m := &mr.Members[i]
		clean(&m.Name, maxNameBytes)
		clean(&m.Address, 256)
		clean(&m.State, 32)
		clean(&m.Datacenter, 256)
		clean(&m.API, 512)
	}
}

func keysOrNone(k []string) string {
	if len(k) == 0 {
		return "none (unencrypted)"
	}
	return safetext.Escape(safetext.Bound(strings.Join(k, ", "), 1024)) // from the node: outside text
}

const keysUsage = `
Usage: schemasync keys generate
       schemasync keys show --keyring FILE

Gossip between nodes is encrypted with AES keys listed in cluster.keyring_file: a YAML list of base64 keys,
the first one primary (it encrypts; every listed key decrypts). Nodes re-read the file on SIGHUP.

"generate" prints a new random 32-byte key. "show" validates a keyring file and prints key fingerprints,
which "schemasync members" also prints for a running node.

Rotating keys without downtime (every step on every node, each step finished everywhere before the next):
  1. add the new key at the END of every node's keyring file, then SIGHUP every node   (all can decrypt it)
  2. move the new key to the FRONT of every keyring file, then SIGHUP every node     (all encrypt with it)
  3. remove the old key from every keyring file, then SIGHUP every node
  After each step, "schemasync members --json" on each node shows the keys it has installed.

Examples:
  schemasync keys generate
  schemasync keys show --keyring /etc/schemasync/keyring.yml
`

func cmdKeys(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, strings.TrimSpace(keysUsage))
		return cli.ExitUsage
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, strings.TrimSpace(keysUsage))
		return cli.ExitOK
	case "generate":
		fs := cli.NewFlagSet("keys generate", keysUsage, stderr)
		if done, code := cli.Parse(fs, args[1:], stdout); done {
			return code
		}
		k, err := gossip.GenerateKey()
		if err != nil {
			fmt.Fprintln(stderr, "schemasync keys:", err)
			return cli.ExitFailure
		}
		fmt.Fprintln(stdout, k)
		return cli.ExitOK
	case "show":
		fs := cli.NewFlagSet("keys show", keysUsage, stderr)
		path := fs.String("keyring", "", "keyring file (required)")
		if done, code := cli.Parse(fs, args[1:], stdout); done {
			return code
		}
		if *path == "" {
			fmt.Fprintln(stderr, "schemasync keys show: --keyring is required")
			return cli.ExitUsage
		}
		keys, err := gossip.LoadKeyring(*path)
		if err != nil {
			fmt.Fprintln(stderr, "schemasync keys show:", err)
			return cli.ExitFailure
		}
		for i, k := range keys {
			role := "decrypts"
			if i == 0 {
				role = "primary: encrypts and decrypts"
			}
			fmt.Fprintf(stdout, "%d  %s  AES-%d  %s\n", i+1, gossip.KeyFingerprint(k), 8*len(k), role)
		}
		return cli.ExitOK
	}
	fmt.Fprintf(stderr, "schemasync keys: unknown subcommand %q\n", args[0])
	return cli.ExitUsage
}
