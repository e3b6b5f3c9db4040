package dbstate

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// OptionFile is the [client] part of a MariaDB option file (also [client-server] and [client-mariadb]).
// Password is never printed: see Credentials.
type OptionFile struct {
	User     string
	Password string
	Host     string
	Port     int
	Socket   string
	SSLCA    string
	SSLCert  string
	SSLKey   string
	SSL      bool // ssl, or ssl-ca given
	// SSLVerifyServerCert is ssl-verify-server-cert.
	SSLVerifyServerCert bool
}

// otherClientOptions are options of the MariaDB client programs that a [client] group may hold and that dbstate
// does not use: accepted and ignored. Any other key is an error, as it is for the mariadb client (a typo such as
// "pasword" would otherwise log in without a password). A "loose-" prefix makes an unknown key ignored, as in
// MariaDB.
var otherClientOptions = []string{
	"auto-rehash", "batch", "bind-address", "binary-mode", "character-sets-dir", "column-names", "comments",
	"compress", "connect-timeout", "database", "debug", "default-auth", "default-character-set", "delimiter",
	"force", "html", "init-command", "line-numbers", "local-infile", "max-allowed-packet", "max-join-size",
	"named-commands", "net-buffer-length", "no-auto-rehash", "no-beep", "one-database", "pager", "plugin-dir",
	"progress-reports", "prompt", "protocol", "quick", "raw", "reconnect", "safe-updates", "secure-auth",
	"select-limit", "show-warnings", "sigint-ignore", "silent", "skip-auto-rehash", "skip-column-names",
	"skip-comments", "skip-reconnect", "skip-ssl", "ssl-capath", "ssl-cipher", "ssl-crl", "ssl-crlpath",
	"table", "tee", "tls-version", "unbuffered", "verbose", "vertical", "wait", "xml",
}

// maxIncludeDepth bounds !include nesting (and include loops).
const maxIncludeDepth = 10

// ParseOptionFile reads one MariaDB option file and returns the options of the client groups. It understands
// "key = value", "key=value", bare "key" (true), quoted values ('..' or ".." with backslash escapes), comments
// starting with # or ; and dashes or underscores in names. An unknown key in a client group is an error that
// names the line. !include and !includedir need a file name to resolve against: use ReadOptionFile; here they
// are an error.
func ParseOptionFile(r io.Reader) (*OptionFile, error) {
	o := &OptionFile{}
	err := parseOptions(r, "option file", o, func(directive, arg string) error {
		return fmt.Errorf("%s %s: use ReadOptionFile to follow includes", directive, arg)
	})
	if err != nil {
		return nil, err
	}
	return o, nil
}

// ReadOptionFile reads the option file at path and follows its !include FILE and !includedir DIR directives as
// the MariaDB client does: an included file is read in place (a relative name is relative to the including
// file's directory); !includedir reads the directory's *.cnf files in name order. Later values win. An empty
// file is fine; a missing included file is an error; nesting deeper than 10 is an error.
func ReadOptionFile(path string) (*OptionFile, error) {
	o := &OptionFile{}
	if err := readOptionFile(path, o, 0); err != nil {
		return nil, err
	}
	return o, nil
}

func readOptionFile(path string, o *OptionFile, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("%w option file %s: includes nested deeper than %d", ErrParse, path, maxIncludeDepth)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("option file: %w", err)
	}
	defer f.Close()
	dir := filepath.Dir(path)
	return parseOptions(f, path, o, func(directive, arg string) error {
		if !filepath.IsAbs(arg) {
			arg = filepath.Join(dir, arg)
		}
		if directive == "!include" {
			return readOptionFile(arg, o, depth+1)
		}
		names, err := filepath.Glob(filepath.Join(arg, "*.cnf"))
		if err != nil {
			return err
		}
		if _, err := os.Stat(arg); err != nil {
			return fmt.Errorf("option file: %w", err)
		}
		slices.Sort(names)
		for _, n := range names {
			if err := readOptionFile(n, o, depth+1); err != nil {
				return err
			}
		}
		return nil
	})
}

// parseOptions reads one file into o; include is called for each !include or !includedir line.
func parseOptions(r io.Reader, name string, o *OptionFile, include func(directive, arg string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	inClient := false
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '!' {
			directive, arg, _ := strings.Cut(line, " ")
			arg = strings.TrimSpace(arg)
			if (directive != "!include" && directive != "!includedir") || arg == "" {
				return fmt.Errorf("%w %s line %d: unknown directive (want !include FILE or !includedir DIR)", ErrParse, name, lineNo)
			}
			if err := include(directive, arg); err != nil {
				return fmt.Errorf("%s line %d: %w", name, lineNo, err)
			}
			continue
		}
		if line[0] == '[' {
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return fmt.Errorf("%w %s line %d: unterminated group", ErrParse, name, lineNo)
			}
			g := strings.ToLower(strings.TrimSpace(line[1:end]))
			inClient = g == "client" || g == "client-server" || g == "client-mariadb"
			continue
		}
		if !inClient {
			continue
		}
		key, val, hasVal := strings.Cut(line, "=")
		key = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "_", "-")
		if hasVal {
			v, err := unquoteOption(strings.TrimSpace(val))
			if err != nil {
				return fmt.Errorf("%w %s line %d (%s): %v", ErrParse, name, lineNo, key, err)
			}
			val = v
		}
		if err := o.set(key, val, hasVal); err != nil {
			return fmt.Errorf("%w %s line %d: %v", ErrParse, name, lineNo, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w %s: %v", ErrParse, name, err)
	}
	return nil
}

// set applies one option. Values never appear in its errors (the key may be a misspelled "password").
func (o *OptionFile) set(key, val string, hasVal bool) error {
	loose := false
	if k, ok := strings.CutPrefix(key, "loose-"); ok {
		key, loose = k, true
	}
	switch key {
	case "user":
		o.User = val
	case "password":
		o.Password = val
	case "host":
		o.Host = val
	case "socket":
		o.Socket = val
	case "port":
		p, err := strconv.Atoi(val)
		if err != nil || p <= 0 || p > 65535 {
			return fmt.Errorf("port %q", val)
		}
		o.Port = p
	case "ssl-ca":
		o.SSLCA, o.SSL = val, true
	case "ssl-cert":
		o.SSLCert = val
	case "ssl-key":
		o.SSLKey = val
	case "ssl", "ssl-verify-server-cert":
		b := true
		if hasVal {
			var err error
			if b, err = ParseBool(val); err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
		}
		if key == "ssl" {
			o.SSL = b
		} else {
			o.SSLVerifyServerCert = b
		}
	default:
		if loose || slices.Contains(otherClientOptions, key) {
			return nil
		}
		if len(key) > 64 {
			key = key[:64] + "..."
		}
		return fmt.Errorf("unknown option %q in a client group%s", key, didYouMean(key))
	}
	return nil
}

// didYouMean suggests the option dbstate uses that is closest to a misspelled key.
func didYouMean(key string) string {
	best, bestD := "", 3
	for _, k := range []string{"user", "password", "host", "port", "socket", "ssl", "ssl-ca", "ssl-cert", "ssl-key", "ssl-verify-server-cert"} {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
