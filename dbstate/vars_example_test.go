package dbstate_test

import (
	"fmt"
	"strings"

	"github.com/evenkeel/evenkeel/dbstate"
)

// Desired values are compared with the server's in canonical form: the spelling in the file does not matter.
func ExampleNormaliseVar() {
	keyBuffer := dbstate.SysVar{Name: "key_buffer_size", Type: "BIGINT UNSIGNED", Scope: "GLOBAL",
		Min: "0", Max: "18446744073709551615", Block: "4096", Value: "16777216"}
	for _, v := range []string{"16M", "16777216", "10000"} {
		n, err := dbstate.NormaliseVar(keyBuffer, v, keyBuffer.Value)
		fmt.Printf("%s -> %s %v %q\n", v, n.Canonical, err, n.Warning)
	}
	mode := dbstate.SysVar{Name: "sql_mode", Type: "SET", Scope: "SESSION",
		EnumValues: []string{"ANSI_QUOTES", "STRICT_TRANS_TABLES", "NO_ENGINE_SUBSTITUTION"}}
	n, _ := dbstate.NormaliseVar(mode, "no_engine_substitution, strict_trans_tables", "")
	fmt.Println(n.Canonical, n.Literal)
	// Output:
	// 16M -> 16777216 <nil> ""
	// 16777216 -> 16777216 <nil> ""
	// 10000 -> 8192 <nil> "the server rounds 10000 to 8192 (a multiple of the block size 4096); 8192 is what it will hold"
	// STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'
}

// DiffVars is the pure core of dbstate vars plan: desired values against an instance's SYSTEM_VARIABLES rows.
func ExampleDiffVars() {
	d, _ := dbstate.ParseDesiredVars(strings.NewReader("variables: {slow_query_log: yes, wait_timeout: 8h, datadir: /srv}\n"))
	server := map[string]dbstate.SysVar{
		"slow_query_log": {Name: "slow_query_log", Type: "BOOLEAN", Scope: "SESSION", Value: "OFF"},
		"wait_timeout":   {Name: "wait_timeout", Type: "BIGINT UNSIGNED", Scope: "SESSION", Min: "1", Max: "31536000", Block: "1", Value: "28800"},
		"datadir":        {Name: "datadir", Type: "VARCHAR", Scope: "GLOBAL", ReadOnly: true, Value: "/var/lib/mysql/"},
	}
	changes, issues := dbstate.DiffVars("127.0.0.1:3306", d.For("127.0.0.1:3306"), server)
	for _, c := range changes {
		fmt.Println(strings.TrimSpace(fmt.Sprint(c.Variable, " changed: ", c.Changed, " ", c.Statement)))
	}
	for _, i := range issues {
		fmt.Println(i)
	}
	// Output:
	// slow_query_log changed: true SET GLOBAL slow_query_log = 'ON'
	// wait_timeout changed: false
	// 127.0.0.1:3306: datadir: not dynamic (READ_ONLY): set it in the server's configuration and restart
}
