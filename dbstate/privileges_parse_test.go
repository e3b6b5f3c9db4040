package dbstate

import (
	"slices"
	"testing"
)

// TestPrivilegesFromGrantLines: what the privilege preflight counts as held, from SHOW GRANTS lines as servers
// print them.
func TestPrivilegesFromGrantLines(t *testing.T) {
	tests := []struct {
		name, line string
		held       []string
	}{
		{name: "10.11 global", line: "GRANT SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO `dbstate`@`%` IDENTIFIED BY PASSWORD '*2F'",
			held: []string{"REPLICATION MASTER ADMIN", "SLAVE MONITOR"}},
		{name: "all", line: "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION", held: []string{"ALL PRIVILEGES"}},
		{name: "bare ALL", line: "grant all on *.* to 'u'@'h'", held: []string{"ALL PRIVILEGES"}},
		{name: "replica alias and underscores", line: "GRANT REPLICA MONITOR, READ ONLY ADMIN ON *.* TO 'u'@'h'",
			held: []string{"READ_ONLY ADMIN", "SLAVE MONITOR"}},
		{name: "select on *.* reads mysql", line: "GRANT SELECT ON *.* TO `u`@`%`", held: []string{"SELECT", "SELECT ON mysql"}},
		{name: "schema level, quoted", line: "GRANT SELECT ON `mysql`.* TO `dbstate`@`%`", held: []string{"SELECT ON mysql"}},
		{name: "all on mysql", line: "GRANT ALL PRIVILEGES ON `mysql`.* TO `dbstate`@`%`", held: []string{"SELECT ON mysql"}},
		{name: "another schema", line: "GRANT SELECT ON `mysql2`.* TO `dbstate`@`%`"},
		{name: "a table of mysql", line: "GRANT SELECT ON `mysql`.`user` TO `dbstate`@`%`"},
		{name: "column list with commas", line: "GRANT SELECT (a, b), INSERT ON `db`.`t` TO `u`@`h`"},
		{name: "role grant", line: "GRANT `r1` TO `u`@`h`"},
		{name: "not a grant", line: "SET DEFAULT ROLE `r1` FOR `u`@`h`"},
		{name: "truncated", line: "GRANT SELECT ON"},
		{name: "unknown privilege: the line counts for nothing", line: "GRANT SUPER, TELEPORT ON *.* TO `u`@`h`"},
		{name: "empty", line: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Privileges{Held: map[string]bool{}}
			addGrantRows(p, []Row{{"g": tt.line}}, nil)
			var held []string
			for h := range p.Held {
				held = append(held, h)
			}
			slices.Sort(held)
			if !slices.Equal(held, tt.held) {
				t.Fatalf("held %q, want %q", held, tt.held)
			}
		})
	}
}

func TestPrivilegesMissing(t *testing.T) {
	p := &Privileges{Held: map[string]bool{}}
	roles := addGrantRows(p, []Row{{"g": "GRANT SUPER, RELOAD ON *.* TO `u`@`%`"}, {"g": "GRANT SELECT ON `mysql`.* TO `u`@`%`"},
		{"g": "GRANT `r1` TO `u`@`%`"}}, nil)
	if !slices.Equal(roles, []string{"r1"}) {
		t.Fatalf("roles %q", roles)
	}
	var missing []string
	for _, m := range p.Missing(append(append([]Privilege(nil), ReadPrivileges...), PrimaryPrivileges...)) {
		missing = append(missing, m.String())
	}
	// SUPER covers SLAVE MONITOR, CONNECTION ADMIN, BINLOG ADMIN, REPLICATION SLAVE ADMIN and SET USER in 10.11, not the rest.
	want := []string{"REPLICATION MASTER ADMIN", "READ_ONLY ADMIN", "PROCESS", "CREATE USER", "EVENT"}
	if !slices.Equal(missing, want) {
		t.Fatalf("missing %v, want %v", missing, want)
	}
	all := &Privileges{Held: map[string]bool{}}
	addGrantRows(all, []Row{{"g": "GRANT ALL PRIVILEGES ON *.* TO `u`@`%`"}}, nil)
	if len(all.Missing(PrimaryPrivileges)) != 0 {
		t.Fatal("ALL PRIVILEGES lacks something")
	}
}
