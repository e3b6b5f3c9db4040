// Package cli holds the conventions that the evenkeel binaries share: subcommand dispatch with per-command
// FlagSets and usage text, exit codes (0 ok, 1 failure, 2 usage), JSON output on stdout, logs on stderr, and
// build information. It keeps each main a thin wrapper around run(ctx, args, stdout, stderr).
package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/evenkeel/evenkeel/internal/buildinfo"
	"github.com/evenkeel/evenkeel/internal/safetext"
)

// Exit codes shared by every evenkeel binary.
const (
	ExitOK      = 0 // the command did what was asked and found nothing wrong
	ExitFailure = 1 // the command ran but failed, or found a problem (dirty, drift, a failed stream)
	ExitUsage   = 2 // bad flags, arguments or configuration
)

// UsageError marks an error as the caller's fault (flags, arguments, config): commands exit 2 for it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// ExitCode maps an error to an exit code: nil is 0, a *UsageError is 2, anything else 1.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	default:
		return ExitFailure
	}
}

// Command is one subcommand of a binary.
type Command struct {
	Name    string
	Summary string // one line for the command list
	// Run parses args with its own FlagSet (see NewFlagSet) and returns an exit code.
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// Dispatch runs the subcommand named by args[0]. With no arguments, "help", "-h" or "--help" it prints the
// command list to stdout; an unknown command prints it to stderr and returns ExitUsage.
func Dispatch(ctx context.Context, prog, about string, cmds []Command, args []string, stdout, stderr io.Writer) int {
	list := func(w io.Writer) {
		fmt.Fprintf(w, "%s: %s\n\nUsage:\n  %s <command> [flags]\n\nCommands:\n", prog, about, prog)
		sorted := append([]Command(nil), cmds...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
		for _, c := range sorted {
			fmt.Fprintf(w, "  %-14s %s\n", c.Name, c.Summary)
		}
		fmt.Fprintf(w, "  %-14s %s\n", "version", "print the version and exit")
		fmt.Fprintf(w, "\nRun '%s <command> --help' for a command's flags and examples.\n", prog)
	}
	if len(args) == 0 {
		list(stderr)
		return ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		list(stdout)
		return ExitOK
	case "version", "--version":
		fmt.Fprintf(stdout, "%s %s (%s)\n", prog, Version(), runtime.Version())
		return ExitOK
	}
	for _, c := range cmds {
		if c.Name == args[0] {
			return c.Run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", prog, args[0])
	list(stderr)
	return ExitUsage
}

// NewFlagSet returns a FlagSet whose -h output is usage (synopsis, description, examples) followed by the flags.
func NewFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), strings.TrimSpace(usage))
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args. It returns done=true with the exit code when the command must stop now: 0 after -h or
// --help (the usage goes to stdout, once), 2 after a flag error (the error and the usage go to the FlagSet's
// output, stderr, once) or stray positional arguments.
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer) (done bool, code int) {
	// The flag package calls Usage itself on -h and on errors, to its output (stderr). Silence it during the
	// parse and print the usage here, once, where it belongs.
	usage := fs.Usage
	if usage == nil { // a FlagSet not made by NewFlagSet: the flag package's default
		usage = func() {
			fmt.Fprintf(fs.Output(), "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
	}
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		stderr := fs.Output()
		fs.SetOutput(stdout)
		fs.Usage()
		fs.SetOutput(stderr)
		return true, ExitOK
	case err != nil:
		fs.Usage() // after the flag package's one-line error
		return true, ExitUsage
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return true, ExitUsage
	}
	return false, ExitOK
}

// WriteJSON writes v as indented JSON followed by a newline. Characters that encoding/json leaves raw but a
// terminal may act on or reorder (C1 controls, bidirectional overrides and other non-printable runes) are
// written as \uXXXX escapes: the same JSON value, safe to show when piped through jq or less.
func WriteJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeNonPrintable(buf.Bytes()))
	return err
}

// escapeNonPrintable rewrites each non-printable rune above ASCII in JSON text b as a \uXXXX escape (a
// surrogate pair above U+FFFF). Outside strings JSON text holds only ASCII, so every such rune is in a string.
func escapeNonPrintable(b []byte) []byte {
	clean := true
	for _, r := range string(b) {
		if r >= utf8.RuneSelf && !unicode.IsPrint(r) {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+64)
	for _, r := range string(b) {
		if r < utf8.RuneSelf || unicode.IsPrint(r) {
			out = utf8.AppendRune(out, r)
			continue
		}
		if r > 0xFFFF {
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		out = fmt.Appendf(out, `\u%04x`, r)
	}
	return out
}

// NewLogger builds the logger a binary hands to the libraries. level is debug, info, warn or error; format is
// text or json. Logs always go to w (stderr), never to stdout, which is for results.
func NewLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, Usagef("invalid log level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, Usagef("invalid log format %q: want text or json", format)
	}
}

// SignalContext returns a context that is cancelled on SIGINT or SIGTERM.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// Version is the build's version (see buildinfo.Version).
func Version() string { return buildinfo.Version() }

// Row writes one table row to w (a tabwriter): the cells separated by tabs, each escaped for the terminal
// (safetext.Escape), so that a title, reason or address from outside can neither move the cursor nor add a
// column.
func Row(w io.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = safetext.Escape(c)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}
