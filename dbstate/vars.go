package dbstate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Runtime variables: the desired-state file, and the pure parts of planning a push (normalise, validate, diff).
// The parts that touch servers are in vars_exec.go.

// Errors of variable planning and pushing; callers branch on them with errors.Is.
var (
	// ErrVarsRejected: planning refused a variable or value; *VarsRejectedError names each one.
	ErrVarsRejected = errors.New("desired variables rejected")
	// ErrVarsRolledBack: a push failed and every instance that changed was restored and verified.
	ErrVarsRolledBack = errors.New("rolled back everywhere")
	// ErrVarsRollbackIncomplete: a push failed and some instance could not be restored, or its restore could not
	// be verified. VarsResult names them, with their values and the statements to run.
	ErrVarsRollbackIncomplete = errors.New("rollback incomplete")
	// ErrVarsStale: a value changed between planning and the snapshot; nothing was applied.
	ErrVarsStale = errors.New("values changed since the plan was made")
)

// Bounds of a desired-variables file.
const (
	MaxDesiredVars     = 200  // variables per scope (the base set, or one group)
	MaxDesiredGroups   = 100  // groups per file
	maxVarValueLen     = 4096 // bytes of one value
	maxVarNameLen      = 64
	maxDesiredFileSize = 1 << 20
)

// DesiredVars is a desired-variables document: values for every instance, and per-group overrides. It is
// self-contained: the library takes it parsed and never assumes where it came from.
//
//	variables:
//	  max_connections: 500
//	  slow_query_log: ON
//	  long_query_time: 2s
//	groups:
//	  replicas:
//	    instances: [127.0.0.1:3307, 127.0.0.1:3308]
//	    variables:
//	      max_connections: 1000
type DesiredVars struct {
	Variables map[string]string   `yaml:"variables" json:"variables"`
	Groups    map[string]VarGroup `yaml:"groups,omitempty" json:"groups,omitempty"`
}

// VarGroup overrides some variables on some instances (host:port, as discovery names them).
type VarGroup struct {
	Instances []string          `yaml:"instances" json:"instances"`
	Variables map[string]string `yaml:"variables" json:"variables"`
}

// ParseDesiredVars reads a desired-variables YAML document. Unknown keys are rejected; scalar values of any YAML
// type (500, ON, true, 64M, 2s) are kept as written. The result is validated (see DesiredVars.Validate).
func ParseDesiredVars(r io.Reader) (*DesiredVars, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxDesiredFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("desired variables: %w", err)
	}
	if len(b) > maxDesiredFileSize {
		return nil, fmt.Errorf("desired variables: larger than %d bytes", maxDesiredFileSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var raw rawDesiredVars
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("desired variables: empty document")
		}
		return nil, fmt.Errorf("desired variables: %w", err)
	}
	// A second document would be ignored silently: a file made by concatenating two is refused instead.
	if err := dec.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("desired variables: more than one document (---): put every variable in one")
	}
	d := DesiredVars{Groups: map[string]VarGroup{}}
	if d.Variables, err = raw.Variables.values("variables"); err != nil {
		return nil, err
	}
	for name, g := range raw.Groups {
		vg := VarGroup{Instances: g.Instances}
		if vg.Variables, err = g.Variables.values("group " + name); err != nil {
			return nil, err
		}
		d.Groups[name] = vg
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// rawDesiredVars is the file as decoded: a value is a pointer so that a null one (written as ~, null or
// nothing) is told apart from an empty string, and refused rather than read as "".
type rawDesiredVars struct {
	Variables rawVarMap              `yaml:"variables"`
	Groups    map[string]rawVarGroup `yaml:"groups"`
}

type rawVarGroup struct {
	Instances []string  `yaml:"instances"`
	Variables rawVarMap `yaml:"variables"`
}

type rawVarMap map[string]*string

func (m rawVarMap) values(where string) (map[string]string, error) {
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] == nil {
			return nil, fmt.Errorf("desired variables: %s: %s: no value (null): write the value, or \"\" for an empty string", where, k)
		}
		out[k] = *m[k]
	}
	return out, nil
}

// Validate checks the document's shape: variable names are identifiers (lower-cased here), values are bounded
// single-line text, every group names instances as host:port, and no instance is in two groups.
func (d *DesiredVars) Validate() error {
	if len(d.Variables) == 0 && len(d.Groups) == 0 {
		return fmt.Errorf("desired variables: no variables")
	}
	var err error
	if d.Variables, err = normaliseVarMap(d.Variables, "variables"); err != nil {
		return err
	}
	if len(d.Groups) > MaxDesiredGroups {
		return fmt.Errorf("desired variables: more than %d groups", MaxDesiredGroups)
	}
	owner := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(d.Groups)) {
		g := d.Groups[name]
		if !validVarName(name) {
			return fmt.Errorf("desired variables: group name %q: want letters, digits, _ and -", name)
		}
		if len(g.Instances) == 0 {
			return fmt.Errorf("desired variables: group %s: no instances", name)
		}
		if g.Variables, err = normaliseVarMap(g.Variables, "group "+name); err != nil {
			return err
		}
		for k, in := range g.Instances {
			a, err := ParseInstance(in)
			if err != nil {
				return fmt.Errorf("desired variables: group %s: %w", name, err)
			}
			if o, dup := owner[a]; dup && o == name {
				return fmt.Errorf("desired variables: instance %s is listed twice in group %s (%q)", a, name, in)
			} else if dup {
				return fmt.Errorf("desired variables: instance %s is in groups %s and %s: which value wins would be a guess", a, o, name)
			}
			owner[a] = name
			g.Instances[k] = a
		}
		d.Groups[name] = g
	}
	return nil
}

// ParseInstance reads an instance address as a user wrote it (host:port) and returns it as discovery names
// instances (localhost written 127.0.0.1).
func ParseInstance(s string) (string, error) {
	h, port, err := splitAddr(strings.TrimSpace(s))
	if err != nil || !validHost(h) { // splitAddr bounds the port to 1-65535
		return "", fmt.Errorf("instance %q: want host:port", s)
	}
	return NormalizeAddr(h, port), nil
}

func normaliseVarMap(m map[string]string, where string) (map[string]string, error) {
	if len(m) > MaxDesiredVars {
		return nil, fmt.Errorf("desired variables: %s: more than %d variables", where, MaxDesiredVars)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		n := strings.ToLower(strings.TrimSpace(k))
		if !validVarName(n) || strings.Contains(n, "-") {
			return nil, fmt.Errorf("desired variables: %s: %q is not a variable name (letters, digits and _)", where, k)
		}
		if _, dup := out[n]; dup {
			return nil, fmt.Errorf("desired variables: %s: %s appears twice", where, n)
		}
		if len(v) > maxVarValueLen || strings.IndexFunc(v, unicode.IsControl) >= 0 || strings.ContainsRune(v, 0xFFFD) {
			return nil, fmt.Errorf("desired variables: %s: %s: the value must be one line of at most %d bytes of text", where, n, maxVarValueLen)
		}
		out[n] = v
	}
	return out, nil
}

// validVarName accepts what a server variable (or group) name can be: ASCII letters, digits, _ (and - for group
// names), starting with a letter, at most 64 bytes. Only such names are ever put into a statement.
func validVarName(s string) bool {
	if s == "" || len(s) > maxVarNameLen {
		return false
	}
	for k, r := range s {
		ok := r < unicode.MaxASCII && (unicode.IsLetter(r) || (k > 0 && (unicode.IsDigit(r) || r == '_' || r == '-')))
		if !ok {
			return false
		}
	}
	return true
}

// For returns the desired variables of one instance: the base set with its group's overrides.
func (d *DesiredVars) For(instance string) map[string]string {
	out := make(map[string]string, len(d.Variables))
	for k, v := range d.Variables {
		out[k] = v
	}
	if a, err := ParseInstance(instance); err == nil {
		instance = a
	}
	for _, g := range d.Groups {
		if slices.Contains(g.Instances, instance) {
			for k, v := range g.Variables {
				out[k] = v
			}
		}
	}
	return out
}

// Names returns every variable the document names, in any scope, sorted.
func (d *DesiredVars) Names() []string {
	set := map[string]bool{}
	for k := range d.Variables {
		set[k] = true
	}
	for _, g := range d.Groups {
		for k := range g.Variables {
			set[k] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// SysVar is one row of information_schema.SYSTEM_VARIABLES: a variable's metadata and its global value.
type SysVar struct {
	Name       string   `json:"name"`  // lower case
	Type       string   `json:"type"`  // VARIABLE_TYPE: BOOLEAN, INT, INT UNSIGNED, BIGINT, BIGINT UNSIGNED, DOUBLE, ENUM, SET, FLAGSET, VARCHAR
	Scope      string   `json:"scope"` // VARIABLE_SCOPE: GLOBAL, SESSION (global and session) or SESSION ONLY
	ReadOnly   bool     `json:"read_only"`
	Min        string   `json:"min,omitempty"`   // NUMERIC_MIN_VALUE, "" when NULL
	Max        string   `json:"max,omitempty"`   // NUMERIC_MAX_VALUE
	Block      string   `json:"block,omitempty"` // NUMERIC_BLOCK_SIZE
	EnumValues []string `json:"enum_values,omitempty"`
	Value      string   `json:"value"` // GLOBAL_VALUE
	Null       bool     `json:"null,omitempty"`
}

// ParseSysVar maps a SYSTEM_VARIABLES row by column name.
func ParseSysVar(r Row) (SysVar, error) {
	name := strings.ToLower(r["VARIABLE_NAME"])
	if !validVarName(name) {
		return SysVar{}, fmt.Errorf("%w variable name %q", ErrParse, r["VARIABLE_NAME"])
	}
	v, ok := r["GLOBAL_VALUE"]
	sv := SysVar{Name: name, Type: strings.ToUpper(r["VARIABLE_TYPE"]), Scope: strings.ToUpper(r["VARIABLE_SCOPE"]),
		ReadOnly: strings.EqualFold(r["READ_ONLY"], "YES"), Min: r["NUMERIC_MIN_VALUE"], Max: r["NUMERIC_MAX_VALUE"],
		Block: r["NUMERIC_BLOCK_SIZE"], Value: v, Null: !ok}
	if l := r["ENUM_VALUE_LIST"]; l != "" {
		sv.EnumValues = strings.Split(l, ",")
	}
	return sv, nil
}

// Variables whose number is in seconds: these take durations ("2s", "1m30s", "500ms" where fractions are
// allowed) as well as plain numbers, and never size suffixes. Other variables with a time in their name count
// milliseconds or microseconds (innodb_old_blocks_time, rpl_semi_sync_master_timeout, deadlock_timeout_long), so
// the list is explicit.
var secondsVars = map[string]bool{
	"binlog_expire_logs_seconds": true, "connect_timeout": true, "delayed_insert_timeout": true, "flush_time": true,
	"idle_readonly_transaction_timeout": true, "idle_transaction_timeout": true, "idle_write_transaction_timeout": true,
	"innodb_flush_log_at_timeout": true, "innodb_lock_wait_timeout": true, "interactive_timeout": true,
	"lock_wait_timeout": true, "log_slow_query_time": true, "long_query_time": true, "max_statement_time": true,
	"net_read_timeout": true, "net_write_timeout": true, "slave_max_statement_time": true, "slave_net_timeout": true,
	"slow_launch_time": true, "thread_pool_idle_timeout": true, "wait_timeout": true, "tcp_keepalive_time": true,
	"tcp_keepalive_interval": true, "rpl_semi_sync_slave_kill_conn_timeout": true,
}

// Variables dbstate never pushes: the topology operations own them (read_only, server_id), or setting them
// rewrites replication state (GTID positions).
var refusedVars = map[string]string{
	"read_only":         "dbstate switchover and the replication topology own it",
	"server_id":         "it identifies the server in replication",
	"gtid_slave_pos":    "it is replication state, not configuration",
	"gtid_binlog_state": "it is replication state, not configuration",
}

// sqlModeCombinations are sql_mode values that the server expands into several modes: the read-back would never
// match them.
var sqlModeCombinations = map[string]bool{"ANSI": true, "TRADITIONAL": true, "POSTGRESQL": true, "ORACLE": true,
	"MSSQL": true, "DB2": true, "MAXDB": true, "MYSQL323": true, "MYSQL40": true}

// CheckSettable reports why a variable cannot be pushed at runtime: it is not dynamic (READ_ONLY), session-only,
// of a type dbstate cannot compare, or one of the variables dbstate leaves to other operations.
func CheckSettable(sv SysVar) error {
	switch {
	case refusedVars[sv.Name] != "":
		return fmt.Errorf("dbstate does not push %s: %s", sv.Name, refusedVars[sv.Name])
	case sv.ReadOnly:
		return fmt.Errorf("not dynamic (READ_ONLY): set it in the server's configuration and restart")
	case sv.Scope == "SESSION ONLY":
		return fmt.Errorf("session-only: it has no global value to set")
	case sv.Scope != "GLOBAL" && sv.Scope != "SESSION":
		return fmt.Errorf("scope %q is not global", sv.Scope)
	case sv.Null:
		return fmt.Errorf("its global value is NULL, which a rollback could not restore")
	}
	switch sv.Type {
	case "BOOLEAN", "INT", "INT UNSIGNED", "BIGINT", "BIGINT UNSIGNED", "DOUBLE", "ENUM", "SET", "FLAGSET", "VARCHAR":
		return nil
	}
	return fmt.Errorf("type %q is not one dbstate can compare", sv.Type)
}

// VarValue is a value in its canonical form, as the server shows it (ON/OFF, bytes, seconds, enum and set members
// spelled and ordered as the server lists them, doubles with 6 decimals), and the SQL literal that sets it.
type VarValue struct {
	Canonical string `json:"value"`
	Literal   string `json:"-"`
	// Warning is set when the server would round or clamp the value as written (a block size): Canonical is then
	// what the server will hold.
	Warning string `json:"warning,omitempty"`
}

// NormaliseVar validates a desired value against a variable's metadata (type, NUMERIC_MIN_VALUE,
// NUMERIC_MAX_VALUE, NUMERIC_BLOCK_SIZE, ENUM_VALUE_LIST) and returns it in canonical form. current is the
// server's current value; it matters only for FLAGSET (optimizer_switch), where the desired value names some
// flags and the others keep their current state.
func NormaliseVar(sv SysVar, raw, current string) (VarValue, error) {
	return normaliseVar(sv, raw, current, true)
}

// ObservedVar puts a value the server reported into canonical form, for comparison.
func ObservedVar(sv SysVar, raw string) (string, error) {
	v, err := normaliseVar(sv, raw, raw, false)
	return v.Canonical, err
}

func normaliseVar(sv SysVar, raw, current string, desired bool) (VarValue, error) {
	s := strings.TrimSpace(raw)
	if len(raw) > maxVarValueLen {
		return VarValue{}, fmt.Errorf("value longer than %d bytes", maxVarValueLen)
	}
	switch sv.Type {
	case "BOOLEAN":
		b, err := parseVarBool(s)
		if err != nil {
			return VarValue{}, err
		}
		c := "OFF"
		if b {
			c = "ON"
		}
		return quoted(c, "")
	case "INT", "INT UNSIGNED", "BIGINT", "BIGINT UNSIGNED":
		return normaliseInt(sv, s, desired)
	case "DOUBLE":
		return normaliseDouble(sv, s, desired)
	case "ENUM":
		c, err := enumMember(sv.EnumValues, s)
		if err != nil {
			return VarValue{}, err
		}
		return quoted(c, "")
	case "SET":
		return normaliseSet(sv, s, desired)
	case "FLAGSET":
		return normaliseFlagset(sv, s, current)
	case "VARCHAR":
		return quoted(raw, "")
	}
	return VarValue{}, fmt.Errorf("type %q is not one dbstate can compare", sv.Type)
}

func quoted(c, warn string) (VarValue, error) {
	lit, err := QuoteString(c)
	if err != nil {
		return VarValue{}, err
	}
	return VarValue{Canonical: c, Literal: lit, Warning: warn}, nil
}

// parseVarBool is ParseBool without the empty string: an empty desired value is a mistake, not OFF.
func parseVarBool(s string) (bool, error) {
	if s == "" {
		return false, fmt.Errorf("empty value: want ON/OFF, 1/0, TRUE/FALSE or YES/NO")
	}
	b, err := ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q is not a boolean: want ON/OFF, 1/0, TRUE/FALSE or YES/NO", s)
	}
	return b, nil
}

var sizeSuffix = map[byte]uint{'K': 10, 'M': 20, 'G': 30, 'T': 40, 'P': 50, 'E': 60}

// parseVarInt reads an integer: plain digits (with a sign), a size with a K/M/G/T/P/E suffix (powers of 1024, as
// the server reads them), or, for a variable in seconds, a duration of whole seconds.
func parseVarInt(name, s string) (*big.Int, error) {
	if s == "" {
		return nil, fmt.Errorf("empty value: want a number")
	}
	if len(s) > 40 {
		return nil, fmt.Errorf("%.40q... is not a number", s)
	}
	if secondsVars[name] {
		if n, ok := new(big.Int).SetString(s, 10); ok {
			return n, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number of seconds or a duration (30s, 5m, 1h)", s)
		}
		if d%time.Second != 0 {
			return nil, fmt.Errorf("%q is not a whole number of seconds", s)
		}
		return big.NewInt(int64(d / time.Second)), nil
	}
	shift := uint(0)
	if sh, ok := sizeSuffix[byte(unicode.ToUpper(rune(s[len(s)-1])))]; ok {
		shift, s = sh, s[:len(s)-1]
	}
	if s == "" || strings.TrimLeft(strings.TrimPrefix(s, "-"), "0123456789") != "" || s == "-" {
		return nil, fmt.Errorf("%q is not a number (digits, optionally with K, M, G, T, P or E)", s)
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("%q is not a number", s)
	}
	return n.Lsh(n, shift), nil
}

func bigBound(s string) (*big.Int, bool) {
	if s == "" {
		return nil, false
	}
	n, ok := new(big.Int).SetString(strings.TrimSpace(s), 10)
	return n, ok
}

func normaliseInt(sv SysVar, s string, desired bool) (VarValue, error) {
	n, err := parseVarInt(sv.Name, s)
	if err != nil {
		return VarValue{}, err
	}
	if strings.HasSuffix(sv.Type, "UNSIGNED") && n.Sign() < 0 {
		return VarValue{}, fmt.Errorf("%s is negative; the variable is unsigned", n)
	}
	warn := ""
	if desired {
		if lo, ok := bigBound(sv.Min); ok && n.Cmp(lo) < 0 {
			return VarValue{}, fmt.Errorf("%s is below the minimum %s", n, lo)
		}
		if hi, ok := bigBound(sv.Max); ok && n.Cmp(hi) > 0 {
			return VarValue{}, fmt.Errorf("%s is above the maximum %s", n, hi)
		}
		if b, ok := bigBound(sv.Block); ok && b.Cmp(big.NewInt(1)) > 0 {
			r := new(big.Int).Quo(n, b)
			r.Mul(r, b)
			if lo, ok := bigBound(sv.Min); ok && r.Cmp(lo) < 0 {
				r = lo
			}
			if r.Cmp(n) != 0 {
				warn = fmt.Sprintf("the server rounds %s to %s (a multiple of the block size %s); %s is what it will hold", s, r, b, r)
				n = r
			}
		}
	}
	c := n.String()
	return VarValue{Canonical: c, Literal: c, Warning: warn}, nil
}

func normaliseDouble(sv SysVar, s string, desired bool) (VarValue, error) {
	if s == "" {
		return VarValue{}, fmt.Errorf("empty value: want a number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && secondsVars[sv.Name] {
		d, derr := time.ParseDuration(s)
		if derr != nil {
			return VarValue{}, fmt.Errorf("%q is not a number of seconds or a duration (2s, 500ms, 1m)", s)
		}
		f, err = d.Seconds(), nil
	}
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return VarValue{}, fmt.Errorf("%q is not a number", s)
	}
	if desired {
		if lo, err := strconv.ParseFloat(sv.Min, 64); err == nil && f < lo {
			return VarValue{}, fmt.Errorf("%v is below the minimum %s", f, sv.Min)
		}
		if hi, err := strconv.ParseFloat(sv.Max, 64); err == nil && f > hi {
			return VarValue{}, fmt.Errorf("%v is above the maximum %s", f, sv.Max)
		}
	}
	c := strconv.FormatFloat(f, 'f', 6, 64) // the server shows doubles with 6 decimals
	if c == "-0.000000" {
		c = "0.000000"
	}
	return VarValue{Canonical: c, Literal: c}, nil
}

func enumMember(list []string, s string) (string, error) {
	for _, m := range list {
		if strings.EqualFold(m, s) {
			return m, nil
		}
	}
	return "", fmt.Errorf("%q is not one of %s", s, strings.Join(list, ", "))
}

func normaliseSet(sv SysVar, s string, desired bool) (VarValue, error) {
	have := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		m, err := enumMember(sv.EnumValues, p)
		if err != nil {
			return VarValue{}, err
		}
		if desired && sv.Name == "sql_mode" && sqlModeCombinations[m] {
			return VarValue{}, fmt.Errorf("%s is a combination mode that the server expands: list its modes instead", m)
		}
		have[m] = true
	}
	var out []string
	for _, m := range sv.EnumValues {
		if have[m] {
			out = append(out, m)
		}
	}
	return quoted(strings.Join(out, ","), "")
}

// parseFlags reads "flag=on,flag=off" against the flag names of a FLAGSET.
func parseFlags(sv SysVar, s string) (map[string]string, []string, error) {
	flags := map[string]string{}
	var order []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, nil, fmt.Errorf("%q: want flag=on or flag=off", p)
		}
		name, err := enumMember(sv.EnumValues, strings.TrimSpace(k))
		if err != nil || name == "default" {
			return nil, nil, fmt.Errorf("%q is not a flag of %s", k, sv.Name)
		}
		b, err := parseVarBool(strings.TrimSpace(v))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		if _, dup := flags[name]; !dup {
			order = append(order, name)
		}
		flags[name] = map[bool]string{true: "on", false: "off"}[b]
	}
	return flags, order, nil
}

// normaliseFlagset: the desired value names some flags; the canonical value is the current one with those flags
// set, in the server's order. The literal names only the desired flags, so the server keeps the others.
func normaliseFlagset(sv SysVar, s, current string) (VarValue, error) {
	want, order, err := parseFlags(sv, s)
	if err != nil {
		return VarValue{}, err
	}
	cur, _, err := parseFlags(sv, current)
	if err != nil {
		return VarValue{}, fmt.Errorf("current value: %w", err)
	}
	var full []string
	for _, f := range sv.EnumValues {
		v, ok := want[f]
		if !ok {
			v, ok = cur[f]
		}
		if ok {
			full = append(full, f+"="+v)
		}
	}
	parts := make([]string, len(order))
	for k, f := range order {
		parts[k] = f + "=" + want[f]
	}
	lit, err := QuoteString(strings.Join(parts, ","))
	if err != nil {
		return VarValue{}, err
	}
	return VarValue{Canonical: strings.Join(full, ","), Literal: lit}, nil
}

// restoreLiteral is the literal that sets a variable back to a value the server reported.
func restoreLiteral(sv SysVar, raw string) (string, error) {
	switch sv.Type {
	case "INT", "INT UNSIGNED", "BIGINT", "BIGINT UNSIGNED", "DOUBLE":
		c, err := ObservedVar(sv, raw)
		if err != nil {
			return "", err
		}
		return c, nil
	}
	return QuoteString(raw)
}

// setStatement is the one place a SET GLOBAL statement is built: the name must be a validated identifier, the
// literal one made by QuoteString or a canonical number.
func setStatement(name, literal string) (string, error) {
	if !validVarName(name) || strings.Contains(name, "-") {
		return "", fmt.Errorf("%w: variable name %q", ErrInvalidValue, name)
	}
	return "SET GLOBAL " + name + " = " + literal, nil
}

// VarChange is one variable of one instance in a plan.
type VarChange struct {
	Variable string `json:"variable"`
	Current  string `json:"current"` // as the server reported it
	New      string `json:"new"`     // canonical: what the read-back must show
	Changed  bool   `json:"changed"`
	Warning  string `json:"warning,omitempty"`
	// Statement sets the new value; Restore sets the current one back.
	Statement string `json:"statement,omitempty"`
	Restore   string `json:"restore,omitempty"`
	sv        SysVar
}

// VarIssue is one variable that planning rejected, on one instance.
type VarIssue struct {
	Instance string `json:"instance"`
	Variable string `json:"variable"`
	Reason   string `json:"reason"`
}

func (i VarIssue) String() string { return i.Instance + ": " + i.Variable + ": " + i.Reason }

// VarsRejectedError lists every variable planning rejected; errors.Is(err, ErrVarsRejected) holds.
type VarsRejectedError struct{ Issues []VarIssue }

func (e *VarsRejectedError) Error() string {
	parts := make([]string, len(e.Issues))
	for k, i := range e.Issues {
		parts[k] = i.String()
	}
	return fmt.Sprintf("%v (nothing was sent): %s", ErrVarsRejected, strings.Join(parts, "; "))
}

func (e *VarsRejectedError) Unwrap() error { return ErrVarsRejected }

// DiffVars is pure: it validates the desired values of one instance against that instance's SYSTEM_VARIABLES
// rows (keyed by lower-case name) and returns each variable's change, sorted by name, and the issues. A
// variable the server does not know, one that cannot be set at runtime, and a value the metadata does not
// allow are issues.
func DiffVars(instance string, desired map[string]string, server map[string]SysVar) ([]VarChange, []VarIssue) {
	var changes []VarChange
	var issues []VarIssue
	for _, name := range slices.Sorted(maps.Keys(desired)) {
		sv, ok := server[name]
		if !ok {
			issues = append(issues, VarIssue{instance, name, "unknown variable (not in information_schema.SYSTEM_VARIABLES)"})
			continue
		}
		if err := CheckSettable(sv); err != nil {
			issues = append(issues, VarIssue{instance, name, err.Error()})
			continue
		}
		want, err := NormaliseVar(sv, desired[name], sv.Value)
		if err != nil {
			issues = append(issues, VarIssue{instance, name, err.Error()})
			continue
		}
		cur, err := ObservedVar(sv, sv.Value)
		if err != nil {
			issues = append(issues, VarIssue{instance, name, "current value: " + err.Error()})
			continue
		}
		ch := VarChange{Variable: name, Current: sv.Value, New: want.Canonical, Changed: cur != want.Canonical,
			Warning: want.Warning, sv: sv}
		if ch.Changed {
			rl, err := restoreLiteral(sv, sv.Value)
			if err == nil {
				ch.Statement, _ = setStatement(name, want.Literal)
				ch.Restore, err = setStatement(name, rl)
			}
			if err != nil {
				issues = append(issues, VarIssue{instance, name, "cannot build the statements: " + err.Error()})
				continue
			}
		}
		changes = append(changes, ch)
	}
	return changes, issues
}
