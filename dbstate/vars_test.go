package dbstate

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Metadata as MariaDB 10.11 reports it in information_schema.SYSTEM_VARIABLES.
var (
	svMaxConn    = SysVar{Name: "max_connections", Type: "BIGINT UNSIGNED", Scope: "GLOBAL", Min: "10", Max: "100000", Block: "1", Value: "151"}
	svKeyBuffer  = SysVar{Name: "key_buffer_size", Type: "BIGINT UNSIGNED", Scope: "GLOBAL", Min: "0", Max: "18446744073709551615", Block: "4096", Value: "1048576"}
	svSlowLog    = SysVar{Name: "slow_query_log", Type: "BOOLEAN", Scope: "SESSION", Value: "OFF"}
	svLongQuery  = SysVar{Name: "long_query_time", Type: "DOUBLE", Scope: "SESSION", Min: "0", Max: "31536000", Value: "10.000000"}
	svWait       = SysVar{Name: "wait_timeout", Type: "BIGINT UNSIGNED", Scope: "SESSION", Min: "1", Max: "31536000", Block: "1", Value: "28800"}
	svOldBlocks  = SysVar{Name: "innodb_old_blocks_time", Type: "INT UNSIGNED", Scope: "GLOBAL", Min: "0", Max: "4294967295", Block: "0", Value: "1000"}
	svBinlogFmt  = SysVar{Name: "binlog_format", Type: "ENUM", Scope: "SESSION", EnumValues: []string{"MIXED", "STATEMENT", "ROW"}, Value: "ROW"}
	svSQLMode    = SysVar{Name: "sql_mode", Type: "SET", Scope: "SESSION", EnumValues: strings.Split("REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,IGNORE_BAD_TABLE_OPTIONS,ONLY_FULL_GROUP_BY,NO_UNSIGNED_SUBTRACTION,NO_DIR_IN_CREATE,POSTGRESQL,ORACLE,MSSQL,DB2,MAXDB,NO_KEY_OPTIONS,NO_TABLE_OPTIONS,NO_FIELD_OPTIONS,MYSQL323,MYSQL40,ANSI,NO_AUTO_VALUE_ON_ZERO,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ALLOW_INVALID_DATES,ERROR_FOR_DIVISION_BY_ZERO,TRADITIONAL,NO_AUTO_CREATE_USER,HIGH_NOT_PRECEDENCE,NO_ENGINE_SUBSTITUTION,PAD_CHAR_TO_FULL_LENGTH,EMPTY_STRING_IS_NULL,SIMULTANEOUS_ASSIGNMENT,TIME_ROUND_FRACTIONAL", ","), Value: "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"}
	svOptSwitch  = SysVar{Name: "optimizer_switch", Type: "FLAGSET", Scope: "SESSION", EnumValues: []string{"index_merge", "mrr", "rowid_filter", "default"}, Value: "index_merge=on,mrr=off,rowid_filter=on"}
	svInitConn   = SysVar{Name: "init_connect", Type: "VARCHAR", Scope: "GLOBAL", Value: ""}
	svAutoinc    = SysVar{Name: "auto_increment_offset", Type: "BIGINT", Scope: "SESSION", Min: "1", Max: "65535", Block: "1", Value: "1"}
	svTimestamp  = SysVar{Name: "timestamp", Type: "DOUBLE", Scope: "SESSION ONLY", Null: true}
	svDatadir    = SysVar{Name: "datadir", Type: "VARCHAR", Scope: "GLOBAL", ReadOnly: true, Value: "/var/lib/mysql/"}
	svPacket     = SysVar{Name: "max_allowed_packet", Type: "BIGINT UNSIGNED", Scope: "SESSION", Min: "1024", Max: "1073741824", Block: "1024", Value: "16777216"}
	svFlushTimer = SysVar{Name: "innodb_flush_log_at_timeout", Type: "INT UNSIGNED", Scope: "GLOBAL", Min: "0", Max: "2700", Block: "0", Value: "1"}
)

func TestNormaliseVar(t *testing.T) {
	cases := []struct {
		name    string
		sv      SysVar
		in      string
		want    string
		literal string
		warn    bool
		err     string
	}{
		{"bool ON", svSlowLog, "ON", "ON", "'ON'", false, ""},
		{"bool on", svSlowLog, "on", "ON", "'ON'", false, ""},
		{"bool 1", svSlowLog, "1", "ON", "'ON'", false, ""},
		{"bool true", svSlowLog, "TRUE", "ON", "'ON'", false, ""},
		{"bool yes", svSlowLog, "yes", "ON", "'ON'", false, ""},
		{"bool 0", svSlowLog, "0", "OFF", "'OFF'", false, ""},
		{"bool false", svSlowLog, "false", "OFF", "'OFF'", false, ""},
		{"bool NO", svSlowLog, "NO", "OFF", "'OFF'", false, ""},
		{"bool empty", svSlowLog, "", "", "", false, "empty value"},
		{"bool junk", svSlowLog, "maybe", "", "", false, "not a boolean"},
		{"int plain", svMaxConn, "500", "500", "500", false, ""},
		{"int spaces", svMaxConn, " 500 ", "500", "500", false, ""},
		{"int below min", svMaxConn, "5", "", "", false, "below the minimum 10"},
		{"int above max", svMaxConn, "100001", "", "", false, "above the maximum 100000"},
		{"int negative unsigned", svMaxConn, "-5", "", "", false, "negative"},
		{"int junk", svMaxConn, "5x", "", "", false, "not a number"},
		{"int float", svMaxConn, "5.5", "", "", false, "not a number"},
		{"int K", svMaxConn, "1K", "1024", "1024", false, ""},
		{"size M", svKeyBuffer, "64M", "67108864", "67108864", false, ""},
		{"size m", svKeyBuffer, "64m", "67108864", "67108864", false, ""},
		{"size G", svKeyBuffer, "1G", "1073741824", "1073741824", false, ""},
		{"size bytes", svKeyBuffer, "67108864", "67108864", "67108864", false, ""},
		{"size rounded to block", svKeyBuffer, "10000", "8192", "8192", true, ""},
		{"size huge", svKeyBuffer, "99999999999999999999", "", "", false, "above the maximum"},
		{"size double suffix", svKeyBuffer, "1MK", "", "", false, "not a number"},
		{"packet block", svPacket, "1000000", "999424", "999424", true, ""},
		{"packet 64M", svPacket, "64M", "67108864", "67108864", false, ""},
		{"signed negative below min", svAutoinc, "-1", "", "", false, "below the minimum 1"},
		{"seconds plain", svWait, "600", "600", "600", false, ""},
		{"seconds duration", svWait, "10m", "600", "600", false, ""},
		{"seconds composite", svWait, "1h30m", "5400", "5400", false, ""},
		{"seconds fraction refused", svWait, "1500ms", "", "", false, "whole number of seconds"},
		{"seconds size refused", svWait, "1M", "", "", false, "not a number of seconds"},
		{"int seconds flush", svFlushTimer, "2s", "2", "2", false, ""},
		{"ms variable takes no duration", svOldBlocks, "1s", "", "", false, "not a number"},
		{"double plain", svLongQuery, "2", "2.000000", "2.000000", false, ""},
		{"double decimals", svLongQuery, "0.5", "0.500000", "0.500000", false, ""},
		{"double duration", svLongQuery, "500ms", "0.500000", "0.500000", false, ""},
		{"double duration s", svLongQuery, "2s", "2.000000", "2.000000", false, ""},
		{"double negative", svLongQuery, "-1", "", "", false, "below the minimum"},
		{"double nan", svLongQuery, "NaN", "", "", false, "not a number"},
		{"double inf", svLongQuery, "Inf", "", "", false, "not a number"},
		{"enum case", svBinlogFmt, "mixed", "MIXED", "'MIXED'", false, ""},
		{"enum unknown", svBinlogFmt, "rows", "", "", false, "not one of MIXED, STATEMENT, ROW"},
		{"set order and case", svSQLMode, "no_engine_substitution, strict_trans_tables", "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION", "'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'", false, ""},
		{"set duplicate", svSQLMode, "ANSI_QUOTES,ansi_quotes", "ANSI_QUOTES", "'ANSI_QUOTES'", false, ""},
		{"set empty", svSQLMode, "", "", "''", false, ""},
		{"set unknown member", svSQLMode, "STRICT", "", "", false, "not one of"},
		{"set combination refused", svSQLMode, "TRADITIONAL", "", "", false, "combination mode"},
		{"flagset partial", svOptSwitch, "MRR=ON", "index_merge=on,mrr=on,rowid_filter=on", "'mrr=on'", false, ""},
		{"flagset two", svOptSwitch, "rowid_filter=off, index_merge=0", "index_merge=off,mrr=off,rowid_filter=off", "'rowid_filter=off,index_merge=off'", false, ""},
		{"flagset default refused", svOptSwitch, "default", "", "", false, "want flag=on"},
		{"flagset unknown flag", svOptSwitch, "nope=on", "", "", false, "not a flag"},
		{"varchar kept", svInitConn, "SET NAMES utf8mb4", "SET NAMES utf8mb4", "'SET NAMES utf8mb4'", false, ""},
		{"varchar quoted", svInitConn, `it's \ here`, `it's \ here`, `'it\'s \\ here'`, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := NormaliseVar(c.sv, c.in, c.sv.Value)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("NormaliseVar(%q) = %+v, %v; want error containing %q", c.in, v, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NormaliseVar(%q): %v", c.in, err)
			}
			if v.Canonical != c.want || v.Literal != c.literal || (v.Warning != "") != c.warn {
				t.Fatalf("NormaliseVar(%q) = %q literal %q warning %q; want %q literal %q warning %v", c.in, v.Canonical, v.Literal, v.Warning, c.want, c.literal, c.warn)
			}
		})
	}
}

func TestCheckSettable(t *testing.T) {
	for _, c := range []struct {
		sv  SysVar
		err string
	}{
		{svMaxConn, ""},
		{svSlowLog, ""},
		{svTimestamp, "session-only"},
		{svDatadir, "not dynamic"},
		{SysVar{Name: "read_only", Type: "BOOLEAN", Scope: "GLOBAL", Value: "OFF"}, "does not push read_only"},
		{SysVar{Name: "x", Type: "GEOMETRY", Scope: "GLOBAL", Value: ""}, "not one dbstate can compare"},
		{SysVar{Name: "default_tmp_storage_engine", Type: "VARCHAR", Scope: "SESSION", Null: true}, "NULL"},
	} {
		err := CheckSettable(c.sv)
		if (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("CheckSettable(%s) = %v, want %q", c.sv.Name, err, c.err)
		}
	}
}

func TestDiffVars(t *testing.T) {
	server := map[string]SysVar{"max_connections": svMaxConn, "slow_query_log": svSlowLog, "sql_mode": svSQLMode,
		"timestamp": svTimestamp, "datadir": svDatadir, "key_buffer_size": svKeyBuffer}
	changes, issues := DiffVars("127.0.0.1:3306", map[string]string{
		"max_connections": "151", "slow_query_log": "1",
		"sql_mode":        "no_auto_create_user,error_for_division_by_zero,strict_trans_tables,no_engine_substitution",
		"key_buffer_size": "1M", "timestamp": "5", "datadir": "/x", "no_such_var": "1",
	}, server)
	var got []string
	for _, c := range changes {
		got = append(got, c.Variable+"="+strconv.FormatBool(c.Changed))
	}
	if strings.Join(got, " ") != "key_buffer_size=false max_connections=false slow_query_log=true sql_mode=false" {
		t.Fatalf("changes: %v", got)
	}
	for _, c := range changes {
		if c.Variable == "slow_query_log" && (c.Statement != "SET GLOBAL slow_query_log = 'ON'" || c.Restore != "SET GLOBAL slow_query_log = 'OFF'") {
			t.Fatalf("statements: %q / %q", c.Statement, c.Restore)
		}
	}
	var bad []string
	for _, i := range issues {
		bad = append(bad, i.Variable)
		if i.Instance != "127.0.0.1:3306" || i.Reason == "" {
			t.Errorf("issue without instance or reason: %+v", i)
		}
	}
	if strings.Join(bad, " ") != "datadir no_such_var timestamp" {
		t.Fatalf("issues: %v", issues)
	}
	err := &VarsRejectedError{Issues: issues}
	if !errors.Is(err, ErrVarsRejected) || !strings.Contains(err.Error(), "nothing was sent") {
		t.Fatal(err)
	}
}

func TestParseDesiredVars(t *testing.T) {
	good := `
variables:
  max_connections: 500
  slow_query_log: true
  Long_Query_Time: 2s
  key_buffer_size: 64M
groups:
  replicas:
    instances: [127.0.0.1:3307, "localhost:3308"]
    variables:
      max_connections: 1000
`
	d, err := ParseDesiredVars(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if v := d.For("127.0.0.1:3306"); v["max_connections"] != "500" || v["slow_query_log"] != "true" || v["long_query_time"] != "2s" {
		t.Fatalf("For primary: %v", v)
	}
	if v := d.For("127.0.0.1:3308"); v["max_connections"] != "1000" || v["key_buffer_size"] != "64M" {
		t.Fatalf("For replica (localhost in the file): %v", v)
	}
	if n := d.Names(); strings.Join(n, ",") != "key_buffer_size,long_query_time,max_connections,slow_query_log" {
		t.Fatalf("Names: %v", n)
	}
	for _, c := range []struct{ name, doc, err string }{
		{"unknown top key", "variables: {a: 1}\nvariabels: {}\n", "not found"},
		{"unknown group key", "groups: {g: {instances: [a:1], variables: {a: 1}, extra: 1}}\n", "not found"},
		{"empty", "", "empty"},
		{"no variables", "variables: {}\n", "no variables"},
		{"bad name", "variables: {\"max connections\": 1}\n", "not a variable name"},
		{"injection in name", "variables: {\"a=1; DROP TABLE x; --\": 1}\n", "not a variable name"},
		{"dash in name", "variables: {max-connections: 1}\n", "not a variable name"},
		{"twice by case", "variables: {a: 1, A: 2}\n", "appears twice"},
		{"multi-line value", "variables: {init_connect: \"a\\nb\"}\n", "one line"},
		{"group without instances", "groups: {g: {variables: {a: 1}}}\n", "no instances"},
		{"group bad instance", "groups: {g: {instances: [nohost], variables: {a: 1}}}\n", "host:port"},
		{"instance in two groups", "groups: {g: {instances: [\"a:1\"], variables: {a: 1}}, h: {instances: [\"a:1\"], variables: {a: 2}}}\n", "groups g and h"},
		{"list value", "variables: {a: [1, 2]}\n", "cannot unmarshal"},
		{"map value", "variables: {a: {b: 1}}\n", "cannot unmarshal"},
		{"null value (no value written)", "variables:\n  init_connect:\n", "init_connect: no value"},
		{"null value (~)", "variables: {max_connections: ~}\n", "max_connections: no value"},
		{"null value in a group", "groups: {g: {instances: [\"a:1\"], variables: {a: null}}}\n", "group g: a: no value"},
		{"a second document", "variables: {a: 1}\n---\nvariables: {b: 2}\n", "more than one document"},
		{"duplicate key", "variables: {a: 1, a: 2}\n", "already defined"},
		{"instance twice in one group", "groups: {g: {instances: [\"localhost:1\", \"127.0.0.1:1\"], variables: {a: 1}}}\n", "listed twice in group g"},
		{"alias bomb", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
			"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n" +
			"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nvariables: {a: 1}\n", "desired variables"},
		{"larger than the bound", "variables: {init_connect: \"" + strings.Repeat("x", 1<<20) + "\"}\n", "larger than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseDesiredVars(strings.NewReader(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("err = %v, want %q", err, c.err)
			}
		})
	}
}

func TestOptionFragmentRoundTrips(t *testing.T) {
	p := &VarsPlan{Plan: &Plan{Summary: "s"}, Instances: []InstanceVars{
		{Instance: "a:1", Changes: []VarChange{{Variable: "init_connect", New: `SET NAMES "x" # y`}, {Variable: "max_connections", New: "500"}}},
		{Instance: "b:1", Changes: []VarChange{{Variable: "init_connect", New: `SET NAMES "x" # y`}, {Variable: "max_connections", New: "600"}}},
	}}
	got := p.OptionFragment()
	if !strings.Contains(got, "init_connect = \"SET NAMES \\\"x\\\" # y\"\n") || !strings.Contains(got, "# max_connections differs by instance: 500 on a:1; 600 on b:1;") {
		t.Fatalf("fragment:\n%s", got)
	}
}

// equivalentSpellings returns other spellings of a canonical value that must normalise to the same thing.
func equivalentSpellings(sv SysVar, canon string, r *rand.Rand) []string {
	switch sv.Type {
	case "BOOLEAN":
		if canon == "ON" {
			return []string{"on", "1", "true", "YES", "True"}
		}
		return []string{"off", "0", "false", "NO", "No"}
	case "BIGINT UNSIGNED", "INT UNSIGNED", "BIGINT", "INT":
		out := []string{" " + canon + " "}
		n, _ := strconv.ParseUint(canon, 10, 64)
		if !secondsVars[sv.Name] {
			for _, s := range []struct {
				suffix string
				shift  uint
			}{{"K", 10}, {"m", 20}, {"G", 30}} {
				if n != 0 && n%(1<<s.shift) == 0 {
					out = append(out, strconv.FormatUint(n>>s.shift, 10)+s.suffix)
				}
			}
		} else if n < 1<<32 {
			out = append(out, strconv.FormatUint(n, 10)+"s")
			if n%60 == 0 {
				out = append(out, strconv.FormatUint(n/60, 10)+"m")
			}
		}
		return out
	case "SET", "ENUM":
		parts := strings.Split(canon, ",")
		r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		for k := range parts {
			if r.Intn(2) == 0 {
				parts[k] = strings.ToLower(parts[k])
			}
		}
		return []string{strings.Join(parts, ", ")}
	}
	return nil
}

// FuzzVarValue: any value that normalises has a canonical form that normalises to itself (a value read back
// shows no drift), the literal is a quoted string or a plain number, and every equivalent spelling of it
// normalises to the same canonical form.
func FuzzVarValue(f *testing.F) {
	for _, s := range []string{"ON", "off", "1", "64M", "1G", "10000", "500", "2s", "1h30m", "0.5", "500ms",
		"mixed", "strict_trans_tables,no_engine_substitution", "mrr=on", "x'; DROP TABLE t; --", "\\", "-0", "1e3"} {
		f.Add(s, uint8(0))
		f.Add(s, uint8(5))
	}
	vars := []SysVar{svSlowLog, svMaxConn, svKeyBuffer, svPacket, svWait, svLongQuery, svBinlogFmt, svSQLMode, svOptSwitch, svInitConn, svAutoinc}
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		sv := vars[int(which)%len(vars)]
		v, err := NormaliseVar(sv, s, sv.Value)
		if err != nil {
			return
		}
		again, err := NormaliseVar(sv, v.Canonical, v.Canonical)
		if err != nil || again.Canonical != v.Canonical {
			t.Fatalf("%s: %q -> %q -> %q (%v): not idempotent", sv.Name, s, v.Canonical, again.Canonical, err)
		}
		obs, err := ObservedVar(sv, v.Canonical)
		if err != nil || obs != v.Canonical {
			t.Fatalf("%s: read back %q observed as %q (%v): drift", sv.Name, v.Canonical, obs, err)
		}
		if !strings.HasPrefix(v.Literal, "'") && strings.TrimLeft(v.Literal, "-0123456789.") != "" {
			t.Fatalf("%s: literal %q is neither quoted nor a number", sv.Name, v.Literal)
		}
		r := rand.New(rand.NewSource(int64(len(s))))
		for _, alt := range equivalentSpellings(sv, v.Canonical, r) {
			w, err := NormaliseVar(sv, alt, sv.Value)
			if err != nil || w.Canonical != v.Canonical {
				t.Fatalf("%s: %q is %q but its equivalent %q is %q (%v)", sv.Name, s, v.Canonical, alt, w.Canonical, err)
			}
		}
	})
}

// FuzzParseDesiredVars: any document either fails with an error or gives names that are identifiers and values
// that are one bounded line, and validating it again changes nothing.
func FuzzParseDesiredVars(f *testing.F) {
	for _, s := range []string{"variables: {max_connections: 500}\n",
		"variables: {a: 1}\ngroups: {g: {instances: ['127.0.0.1:3307', 'localhost:3308'], variables: {a: 2}}}\n",
		"variables: {\"a; DROP\": 1}\n", "groups: {g: {instances: [x], variables: {}}}\n", "variables: [1, 2]\n",
		"variables: {a: &x 1, b: *x}\n", "variables: {init_connect: \"SET NAMES 'utf8mb4'\"}\n",
		"variables: {a: ~, b: null}\n", "variables: {a: 1}\n---\nvariables: {b: 2}\n", "variables: {a: \"\\0\"}\n",
		"groups: {g: {instances: ['localhost:1', '127.0.0.1:1'], variables: {a: 1}}}\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		d, err := ParseDesiredVars(strings.NewReader(doc))
		if err != nil {
			return
		}
		for _, n := range d.Names() {
			if !validVarName(n) || strings.Contains(n, "-") || strings.ToLower(n) != n {
				t.Fatalf("name %q passed", n)
			}
		}
		before := d.For("127.0.0.1:3307")
		if err := d.Validate(); err != nil {
			t.Fatalf("valid once, not twice: %v", err)
		}
		after := d.For("127.0.0.1:3307")
		if len(before) != len(after) {
			t.Fatalf("validating again changed the document: %v -> %v", before, after)
		}
		for n, v := range after {
			if before[n] != v || len(v) > maxVarValueLen || strings.ContainsAny(v, "\n\r\x00") {
				t.Fatalf("%s = %q", n, v)
			}
		}
	})
}

// TestPlanVariablesOneInstanceOneSpelling: the same instance written two ways (localhost:P and 127.0.0.1:P) is
// planned once, not pushed twice in parallel (each push's snapshot would then be the other's new value).
func TestPlanVariablesOneInstanceOneSpelling(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := NewClient(Credentials{User: "u"}, time.Second, nil)
	defer c.Close()
	d := &DesiredVars{Variables: map[string]string{"max_connections": "500"}}
	_, err = PlanVariables(context.Background(), c, []string{fmt.Sprintf("localhost:%d", dead), fmt.Sprintf("127.0.0.1:%d", dead)}, d, VarsOptions{})
	want := fmt.Sprintf("127.0.0.1:%d", dead)
	if !errors.Is(err, ErrUnreachable) || strings.Count(err.Error(), want+" (") != 1 || strings.Contains(err.Error(), "localhost") {
		t.Fatalf("err = %v, want %s named once", err, want)
	}
	if _, err := PlanVariables(context.Background(), c, []string{"no port"}, d, VarsOptions{}); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Fatalf("bad instance: err = %v", err)
	}
}
