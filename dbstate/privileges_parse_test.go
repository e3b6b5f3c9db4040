package dbstate

import (
	"slices"
	"testing"
)

func TestParsePrivilegeLine(t *testing.T) {
	tests := []struct {
		name, line string
		privs      []string
		on         string
		ok         bool
	}{
		{name: "10.11 global", line: "GRANT SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO `dbstate`@`%` IDENTIFIED BY PASSWORD '*2F'",
			privs: []string{"SLAVE MONITOR", "REPLICATION MASTER ADMIN"}, on: "*.*", ok: true},
		{name: "all", line: "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION", privs: []string{"ALL PRIVILEGES"}, on: "*.*", ok: true},
		{name: "bare ALL", line: "grant all on *.* to 'u'@'h'", privs: []string{"ALL PRIVILEGES"}, on: "*.*", ok: true},
		{name: "replica alias and underscores", line: "GRANT REPLICA MONITOR, READ ONLY ADMIN ON *.* TO 'u'@'h'",
			privs: []string{"SLAVE MONITOR", "READ_ONLY ADMIN"}, on: "*.*", ok: true},
		{name: "schema level, quoted", line: "GRANT SELECT ON `mysql`.* TO `dbstate`@`%`", privs: []string{"SELECT"}, on: "mysql.*", ok: true},
		{name: "column list with commas", line: "GRANT SELECT (a, b), INSERT ON `db`.`t` TO `u`@`h`", privs: []string{"SELECT", "INSERT"}, on: "db.t", ok: true},
		{name: "role grant", line: "GRANT `r1` TO `u`@`h`", ok: false},
		{name: "not a grant", line: "SET DEFAULT ROLE `r1` FOR `u`@`h`", ok: false},
		{name: "truncated", line: "GRANT SELECT ON", ok: false},
		{name: "empty", line: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			privs, on, ok := parsePrivilegeLine(tt.line)
			if ok != tt.ok || (ok && (on != tt.on || !slices.Equal(privs, tt.privs))) {
				t.Fatalf("got %q %q %v, want %q %q %v", privs, on, ok, tt.privs, tt.on, tt.ok)
			}
		})
	}
}

func TestPrivilegesMissing(t *testing.T) {
	p := &Privileges{Held: map[string]bool{}}
	for _, l := range []string{"GRANT SUPER, RELOAD ON *.* TO `u`@`%`", "GRANT SELECT ON `mysql`.* TO `u`@`%`"} {
		p.addGrantLine(l)
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
	all.addGrantLine("GRANT ALL PRIVILEGES ON *.* TO `u`@`%`")
	if len(all.Missing(PrimaryPrivileges)) != 0 {
		t.Fatal("ALL PRIVILEGES lacks something")
	}
}

func FuzzParsePrivilegeLine(f *testing.F) {
	for _, s := range []string{"GRANT SELECT (a, b), INSERT ON `db`.`t` TO `u`@`h`", "GRANT ALL ON *.* TO 'u'@'h'", "GRANT ((( ON", "GRANT ) ON x TO y", "GRANT `r` TO `u`@`h`"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		privs, on, ok := parsePrivilegeLine(s)
		if !ok {
			return
		}
		if on == "" || len(privs) == 0 {
			t.Fatalf("ok with %q %q", privs, on)
		}
		for _, p := range privs {
			if p == "" || len(p) > len(s) {
				t.Fatalf("privilege %q from %q", p, s)
			}
		}
	})
}
