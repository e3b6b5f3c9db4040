package dbstate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParsePosition(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "empty", in: "", want: ""},
		{name: "one", in: "0-1-5", want: "0-1-5"},
		{name: "sorted by domain", in: "2-1-9,0-3-4", want: "0-3-4,2-1-9"},
		{name: "spaces and newline", in: "0-1-5,\n 1-2-3 ", want: "0-1-5,1-2-3"},
		{name: "max values", in: "4294967295-4294967295-18446744073709551615", want: "4294967295-4294967295-18446744073709551615"},
		{name: "duplicate domain", in: "0-1-5,0-2-6", wantErr: true},
		{name: "two parts", in: "0-1", wantErr: true},
		{name: "negative", in: "0--1-5", wantErr: true},
		{name: "domain overflow", in: "4294967296-1-1", wantErr: true},
		{name: "plus sign", in: "+0-1-1", wantErr: true},
		{name: "letters", in: "a-b-c", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParsePosition(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrBadGTID) {
					t.Fatalf("err = %v, want ErrBadGTID", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.String() != tt.want {
				t.Fatalf("got %q, want %q", p, tt.want)
			}
		})
	}
}

func TestPositionContainsAndMerge(t *testing.T) {
	tests := []struct {
		name     string
		p, q     string
		contains bool
		merge    string
	}{
		{name: "equal", p: "0-1-5", q: "0-1-5", contains: true, merge: "0-1-5"},
		{name: "ahead", p: "0-1-6", q: "0-1-5", contains: true, merge: "0-1-6"},
		{name: "behind", p: "0-1-4", q: "0-1-5", contains: false, merge: "0-1-5"},
		{name: "other server same domain", p: "0-2-7", q: "0-1-5", contains: true, merge: "0-2-7"},
		{name: "missing domain", p: "0-1-5", q: "0-1-5,1-1-1", contains: false, merge: "0-1-5,1-1-1"},
		{name: "empty q", p: "0-1-5", q: "", contains: true, merge: "0-1-5"},
		{name: "empty p", p: "", q: "0-1-1", contains: false, merge: "0-1-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, q := MustParsePosition(tt.p), MustParsePosition(tt.q)
			if got := p.Contains(q); got != tt.contains {
				t.Errorf("Contains = %v, want %v", got, tt.contains)
			}
			if got := p.Merge(q).String(); got != tt.merge {
				t.Errorf("Merge = %q, want %q", got, tt.merge)
			}
		})
	}
}

func TestErrant(t *testing.T) {
	tests := []struct {
		name      string
		replica   string
		replicaID uint32
		master    string
		want      string
	}{
		{name: "in sync", replica: "0-1-10", replicaID: 2, master: "0-1-10", want: ""},
		{name: "behind", replica: "0-1-8", replicaID: 2, master: "0-1-10", want: ""},
		{name: "replicated but master read earlier", replica: "0-1-12", replicaID: 2, master: "0-1-10", want: ""},
		{name: "local write ahead", replica: "0-2-11", replicaID: 2, master: "0-1-10", want: "0-2-11"},
		{name: "local write in own domain", replica: "0-1-10,5-2-1", replicaID: 2, master: "0-1-10", want: "5-2-1"},
		{name: "diverged at same seq", replica: "0-3-10", replicaID: 2, master: "0-1-10", want: "0-3-10"},
		{name: "demoted primary, own old writes", replica: "0-2-10", replicaID: 2, master: "0-3-15", want: ""},
		{name: "demoted primary just switched", replica: "0-2-10", replicaID: 2, master: "0-2-10", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Position(Errant(MustParsePosition(tt.replica), tt.replicaID, MustParsePosition(tt.master))).String()
			if got != tt.want {
				t.Fatalf("Errant = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseReplicaStatus(t *testing.T) {
	base := func(extra Row) Row {
		r := Row{"Master_Host": "127.0.0.1", "Master_Port": "3306", "Slave_IO_Running": "Yes", "Slave_SQL_Running": "Yes",
			"Seconds_Behind_Master": "0", "Using_Gtid": "Slave_Pos", "Last_IO_Errno": "0", "Last_SQL_Errno": "0",
			"Master_Server_Id": "1", "SQL_Delay": "0", "Master_User": "repl"}
		for k, v := range extra {
			if v == "<NULL>" {
				delete(r, k)
			} else {
				r[k] = v
			}
		}
		return r
	}
	zero := int64(0)
	tests := []struct {
		name    string
		row     Row
		want    *ReplicaStatus
		wantErr string
	}{
		{name: "healthy", row: base(nil), want: &ReplicaStatus{MasterHost: "127.0.0.1", MasterPort: 3306, MasterUser: "repl",
			IORunning: "Yes", SQLRunning: "Yes", SecondsBehind: &zero, UsingGTID: "Slave_Pos", MasterID: 1}},
		{name: "sql stopped, lag NULL", row: base(Row{"Slave_SQL_Running": "No", "Seconds_Behind_Master": "<NULL>"}),
			want: &ReplicaStatus{MasterHost: "127.0.0.1", MasterPort: 3306, MasterUser: "repl", IORunning: "Yes", SQLRunning: "No",
				UsingGTID: "Slave_Pos", MasterID: 1}},
		{name: "extra unknown columns are ignored", row: base(Row{"Gtid_Slave_Pos": "0-1-5", "Slave_DDL_Groups": "3"}),
			want: &ReplicaStatus{MasterHost: "127.0.0.1", MasterPort: 3306, MasterUser: "repl", IORunning: "Yes", SQLRunning: "Yes",
				SecondsBehind: &zero, UsingGTID: "Slave_Pos", MasterID: 1}},
		{name: "error", row: base(Row{"Last_SQL_Errno": "1062", "Last_SQL_Error": "Duplicate entry", "Slave_SQL_Running": "No"}),
			want: &ReplicaStatus{MasterHost: "127.0.0.1", MasterPort: 3306, MasterUser: "repl", IORunning: "Yes", SQLRunning: "No",
				SecondsBehind: &zero, UsingGTID: "Slave_Pos", MasterID: 1, LastSQLErrno: 1062, LastSQLError: "Duplicate entry"}},
		{name: "missing column", row: base(Row{"Master_Port": "<NULL>"}), wantErr: "no column Master_Port"},
		{name: "bad port", row: base(Row{"Master_Port": "99999"}), wantErr: "out of range"},
		{name: "bad lag", row: base(Row{"Seconds_Behind_Master": "soon"}), wantErr: "Seconds_Behind_Master"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReplicaStatus(tt.row)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrParse) {
					t.Fatalf("err = %v, want ErrParse containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseReplicaHosts(t *testing.T) {
	got, err := ParseReplicaHosts([]Row{{"Server_id": "3", "Host": "localhost", "Port": "3307", "Master_id": "1"}, {"Server_id": "4", "Port": "3308"}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Addr() != "127.0.0.1:3307" || got[1].Host != "" || got[1].ServerID != 4 {
		t.Fatalf("got %+v", got)
	}
	if _, err := ParseReplicaHosts([]Row{{"Server_id": "x", "Port": "1"}}); !errors.Is(err, ErrParse) {
		t.Fatalf("err = %v", err)
	}
}

func TestParseVars(t *testing.T) {
	row := Row{"server_id": "7", "version": "10.11.19-MariaDB-log", "read_only": "1", "binlog_format": "row", "log_bin": "1",
		"log_slave_updates": "ON", "gtid_strict_mode": "0", "gtid_domain_id": "0", "gtid_binlog_pos": "0-7-3",
		"gtid_slave_pos": "", "gtid_current_pos": "0-7-3", "report_host": "db1", "port": "3306"}
	v, err := ParseVars(row)
	if err != nil {
		t.Fatal(err)
	}
	if v.ServerID != 7 || !v.ReadOnly || v.BinlogFormat != "ROW" || !v.LogSlaveUpdates || v.GTIDStrictMode || v.GTIDBinlogPos.String() != "0-7-3" || v.Port != 3306 {
		t.Fatalf("got %+v", v)
	}
	row["read_only"] = "maybe"
	if _, err := ParseVars(row); !errors.Is(err, ErrParse) {
		t.Fatalf("err = %v", err)
	}
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		v      string
		ma, mi int
		want   bool
	}{
		{"10.11.19-MariaDB-0+deb12u1-log", 10, 10, true},
		{"10.5.2-MariaDB", 10, 10, false},
		{"11.4.1-MariaDB", 10, 10, true},
		{"garbage", 10, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.v, func(t *testing.T) {
			if got := VersionAtLeast(tt.v, tt.ma, tt.mi); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}

// TestGrantBypassesReadOnly: which SHOW GRANTS lines the switchover fence counts as writing through read_only,
// and which roles it follows.
func TestGrantBypassesReadOnly(t *testing.T) {
	tests := []struct {
		name string
		line string
		want bool
		role string
	}{
		{name: "all 10.11", line: "GRANT ALL PRIVILEGES ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABC'", want: true},
		{name: "all old quoting", line: "GRANT ALL PRIVILEGES ON *.* TO 'app'@'%' WITH GRANT OPTION", want: true},
		{name: "read only admin as 10.11 prints it", line: "GRANT READ_ONLY ADMIN ON *.* TO `r2`", want: true},
		{name: "read only admin", line: "GRANT SELECT, READ ONLY ADMIN ON *.* TO `ops`@`localhost`", want: true},
		{name: "super only", line: "GRANT SUPER ON *.* TO `ops`@`localhost`", want: false},
		{name: "all on one db", line: "GRANT ALL PRIVILEGES ON `app`.* TO `app`@`%`", want: false},
		{name: "usage", line: "GRANT USAGE ON *.* TO `app`@`%`", want: false},
		{name: "role", line: "GRANT `dba` TO `app`@`%`", role: "dba"},
		{name: "role to role", line: "GRANT `r2` TO `r1`", role: "r2"},
		{name: "single quotes, admin option", line: "GRANT 'dba' TO 'u'@'h' WITH ADMIN OPTION", role: "dba"},
		{name: "doubled quote in role name", line: "GRANT `a``b` TO `u`@`h`", role: "a`b"},
		{name: "bare word role", line: "GRANT r1 TO u", role: "r1"},
		{name: "default role", line: "SET DEFAULT ROLE `dba` FOR `app`@`%`", want: false},
		{name: "lower case", line: "grant all privileges on *.* to app@'%'", want: true},
		{name: "proxy", line: "GRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT OPTION", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGrantLine(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			role := ""
			if g.Kind == LineRole {
				role = g.Role
			}
			if got := g.BypassesReadOnly(); got != tt.want || role != tt.role {
				t.Fatalf("bypass %v role %q, want %v %q", got, role, tt.want, tt.role)
			}
		})
	}
	// The fence fails closed: a line it cannot read is an error, never "harmless".
	for _, line := range []string{"", "GRANT `r1 TO u", "GRANT SUPER, TELEPORT ON *.* TO `u`@`h`", "GRANT ALL ON *.* TO"} {
		if _, err := ParseGrantLine(line); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
}

func TestParseOptionFile(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    OptionFile
		wantErr string
	}{
		{name: "client group", in: "[mysqld]\nuser=mysql\n[client]\nuser = dba\npassword = \"p#ss \\\"q\\\"\"\nhost=db1\nport=3307\n",
			want: OptionFile{User: "dba", Password: `p#ss "q"`, Host: "db1", Port: 3307}},
		{name: "comments, underscores and bare ssl", in: "# x\n[client-mariadb]\n; c\nssl\nssl_ca=/ca.pem\nsocket=/run/s.sock # inline\n",
			want: OptionFile{SSL: true, SSLCA: "/ca.pem", Socket: "/run/s.sock"}},
		{name: "include needs a path", in: "!includedir /etc/mysql/conf.d/\n[client]\nuser=a\n", wantErr: "ReadOptionFile"},
		{name: "typo is an error that names the line", in: "[client]\nuser=a\npasword = abc\n", wantErr: `line 3: unknown option "pasword" in a client group (did you mean "password"?)`},
		{name: "other client options and loose- are accepted", in: "[client]\ndefault-character-set=utf8mb4\nloose-frobnicate=abc\nuser=a\n", want: OptionFile{User: "a"}},
		{name: "unknown keys outside client groups are not ours", in: "[mysqld]\npasword=abc\n", want: OptionFile{}},
		{name: "empty file", in: "", want: OptionFile{}},
		{name: "unknown directive", in: "!frob x\n", wantErr: "unknown directive"},
		{name: "single quotes", in: "[client]\npassword='a b'\n", want: OptionFile{Password: "a b"}},
		{name: "bad port", in: "[client]\nport=x\n", wantErr: "port"},
		{name: "unterminated quote", in: "[client]\npassword='abc\n", wantErr: "unterminated"},
		{name: "unterminated group", in: "[client\n", wantErr: "unterminated group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOptionFile(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "abc") {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *got != tt.want {
				t.Fatalf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestReadOptionFileIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("conf.d/b.cnf", "[client]\nport=3310\n")
	write("conf.d/a.cnf", "[client]\nport=3309\nhost=db2\n")
	write("conf.d/ignored.txt", "[client]\nbogus=1\n")
	write("secret.cnf", "[client]\npassword=\"s3cret\"\n")
	main := write("main.cnf", "[client]\nuser=dba\nhost=db1\n!include secret.cnf\n!includedir "+filepath.Join(dir, "conf.d")+"\n")
	got, err := ReadOptionFile(main)
	if err != nil {
		t.Fatal(err)
	}
	want := OptionFile{User: "dba", Password: "s3cret", Host: "db2", Port: 3310}
	if *got != want {
		t.Fatalf("got %+v, want %+v", *got, want)
	}

	t.Run("empty file", func(t *testing.T) {
		got, err := ReadOptionFile(write("empty.cnf", ""))
		if err != nil || *got != (OptionFile{}) {
			t.Fatalf("got %+v, %v", got, err)
		}
	})
	t.Run("missing include names the file and line", func(t *testing.T) {
		_, err := ReadOptionFile(write("missing.cnf", "[client]\n!include nope.cnf\n"))
		if err == nil || !strings.Contains(err.Error(), "missing.cnf line 2") || !strings.Contains(err.Error(), "nope.cnf") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("include loop is bounded", func(t *testing.T) {
		_, err := ReadOptionFile(write("loop.cnf", "!include loop.cnf\n"))
		if err == nil || !strings.Contains(err.Error(), "nested deeper") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("typo in an included file", func(t *testing.T) {
		write("typo.cnf", "[client]\npasword=s3cret\n")
		_, err := ReadOptionFile(write("top.cnf", "!include typo.cnf\n"))
		if err == nil || !strings.Contains(err.Error(), "typo.cnf line 2") || strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestFencedUsers(t *testing.T) {
	got := FencedUsers([]Session{
		{ID: 1, User: "app", Host: "127.0.0.1:5000", Command: "Query"},
		{ID: 2, User: "app", Host: "localhost:5001", Command: "Sleep"}, // name resolution: the same client
		{ID: 3, User: "root", Host: "localhost", Command: "Sleep"},
		{ID: 4, User: "repl", Host: "10.0.0.2:4000", Command: "Binlog Dump GTID"},
		{ID: 5, User: "system user", Host: "", Command: "Slave_SQL"},
		{ID: 6, User: "dba", Host: "localhost", Command: "Query"}, // the reading session
		{ID: 7, User: "event_scheduler", Host: "localhost", Command: "Daemon"},
		{ID: 8, User: "system user", Host: "", Command: "Daemon"},
		{ID: 9, User: "unauthenticated user", Host: "10.0.0.3:4100", Command: "Connect"}, // in its handshake
		// Clients of accounts named like server threads, and an empty user name (an anonymous account).
		{ID: 10, User: "system user", Host: "127.0.0.1:5002", Command: "Sleep"},
		{ID: 11, User: "event_scheduler", Host: "127.0.0.1:5003", Command: "Query"},
		{ID: 12, User: "unauthenticated user", Host: "127.0.0.1:5004", Command: "Sleep"},
		{ID: 13, User: "", Host: "127.0.0.1:5005", Command: "Sleep"},
	}, 6)
	if want := []string{"", "app", "event_scheduler", "root", "system user", "unauthenticated user"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
