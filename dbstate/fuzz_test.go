package dbstate

import (
	"strings"
	"testing"
)

func FuzzParsePosition(f *testing.F) {
	for _, s := range []string{"", "0-1-5", "0-1-5,1-2-3", " 2-1-9 ,\n0-3-4", "0-1", "4294967296-1-1", "0-1-5,0-2-6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePosition(s)
		if err != nil {
			return
		}
		// A parsed position prints to text that parses back to the same position.
		q, err := ParsePosition(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("round trip %q -> %q -> %q (%v)", s, p, q, err)
		}
		if !p.Contains(p) || !p.Merge(p).Contains(p) {
			t.Fatalf("%q does not contain itself", p)
		}
		for k := 1; k < len(p); k++ {
			if p[k-1].Domain >= p[k].Domain {
				t.Fatalf("not sorted by domain: %q", p)
			}
		}
	})
}

func FuzzParseReplicaStatus(f *testing.F) {
	f.Add("127.0.0.1", "3306", "Yes", "Yes", "0", "0", "", "Slave_Pos", "1")
	f.Add("h", "-1", "No", "Connecting", "x", "1062", "err", "No", "")
	f.Fuzz(func(t *testing.T, host, port, io, sqlr, lag, errno, errmsg, gtid, mid string) {
		r := Row{"Master_Host": host, "Master_Port": port, "Slave_IO_Running": io, "Slave_SQL_Running": sqlr,
			"Last_SQL_Errno": errno, "Last_SQL_Error": errmsg, "Using_Gtid": gtid, "Master_Server_Id": mid}
		if lag != "NULL" {
			r["Seconds_Behind_Master"] = lag
		}
		s, err := ParseReplicaStatus(r)
		if err != nil {
			return
		}
		if s.MasterPort < 0 || s.MasterPort > 65535 {
			t.Fatalf("port %d accepted", s.MasterPort)
		}
		_ = s.MasterAddr()
		_ = s.Healthy()
	})
}

func FuzzParseVars(f *testing.F) {
	f.Add("7", "1", "ON", "0-7-3", "", "3306")
	f.Fuzz(func(t *testing.T, id, ro, lsu, binlog, slave, port string) {
		_, _ = ParseVars(Row{"server_id": id, "read_only": ro, "log_bin": "1", "log_slave_updates": lsu, "gtid_strict_mode": "1",
			"gtid_domain_id": "0", "gtid_binlog_pos": binlog, "gtid_slave_pos": slave, "gtid_current_pos": binlog, "port": port})
	})
}

func FuzzParseOptionFile(f *testing.F) {
	f.Add("[client]\nuser=a\npassword=\"x\\\"y\"\nport=3306\n")
	f.Add("[client\n")
	f.Add("[client]\nssl=maybe\n")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOptionFile(strings.NewReader(s))
		if err != nil {
			return
		}
		if o.Port < 0 || o.Port > 65535 {
			t.Fatalf("port %d accepted", o.Port)
		}
	})
}

// unquoteSQL reads one MariaDB string literal (without NO_BACKSLASH_ESCAPES) at the start of s and returns its
// value and the rest of s.
func unquoteSQL(s string) (val, rest string, ok bool) {
	if s == "" || s[0] != '\'' {
		return "", s, false
	}
	var b strings.Builder
	for k := 1; k < len(s); k++ {
		switch c := s[k]; {
		case c == '\\' && k+1 < len(s):
			k++
			switch s[k] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 'Z':
				b.WriteByte('\x1a')
			case '0':
				b.WriteByte(0)
			default:
				b.WriteByte(s[k])
			}
		case c == '\'' && k+1 < len(s) && s[k+1] == '\'':
			b.WriteByte('\'')
			k++
		case c == '\'':
			return b.String(), s[k+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", s, false
}

// FuzzChangeMasterSQL checks that any user and password end up in CHANGE MASTER as exactly one literal each,
// with their value intact: nothing can break out of the quotes.
func FuzzChangeMasterSQL(f *testing.F) {
	f.Add("127.0.0.1", 3306, "repl", "pw")
	f.Add("db1", 1, `a'b\`, `x\', MASTER_HOST='evil`)
	f.Add("h", 65535, "u", "line\nbreak\x1a\r")
	f.Fuzz(func(t *testing.T, host string, port int, user, password string) {
		cm := ChangeMaster{Host: host, Port: port, User: user, Password: password}
		stmt, err := cm.SQL()
		if err != nil {
			return
		}
		if red := cm.Redacted(); password != "" && !strings.Contains(red, "MASTER_PASSWORD=<redacted>") {
			t.Fatalf("redacted statement: %s", red)
		}
		want := map[string]string{"MASTER_HOST=": host, "MASTER_USER=": user, "MASTER_PASSWORD=": password}
		rest := strings.TrimPrefix(stmt, "CHANGE MASTER TO ")
		seen := map[string]bool{}
		for rest != "" {
			eq := strings.IndexByte(rest, '=')
			if eq < 0 {
				t.Fatalf("no '=' in %q (statement %q)", rest, stmt)
			}
			key := rest[:eq+1]
			rest = rest[eq+1:]
			if w, ok := want[key]; ok {
				v, r, ok := unquoteSQL(rest)
				if !ok || v != w {
					t.Fatalf("%s literal reads back as %q (ok=%v), want %q; statement %q", key, v, ok, w, stmt)
				}
				seen[key] = true
				rest = r
			} else {
				end := strings.Index(rest, ", ")
				if end < 0 {
					end = len(rest)
				}
				if strings.ContainsAny(rest[:end], "'\\") {
					t.Fatalf("quote outside a literal in %q", stmt)
				}
				rest = rest[end:]
			}
			rest = strings.TrimPrefix(rest, ", ")
		}
		if !seen["MASTER_HOST="] || (user != "" && !seen["MASTER_USER="]) || (password != "" && !seen["MASTER_PASSWORD="]) {
			t.Fatalf("missing literals in %q", stmt)
		}
	})
}

func FuzzParseReplicaHosts(f *testing.F) {
	f.Add("3", "127.0.0.1", "3307")
	f.Add("x", "", "-1")
	f.Fuzz(func(t *testing.T, id, host, port string) {
		hs, err := ParseReplicaHosts([]Row{{"Server_id": id, "Host": host, "Port": port}})
		if err == nil && (hs[0].Port < 0 || hs[0].Port > 65535) {
			t.Fatalf("port %d accepted", hs[0].Port)
		}
	})
}

func FuzzParseAccount(f *testing.F) {
	f.Add("dbstate@127.0.0.1")
	f.Add("a@b@c")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAccount(s)
		if err == nil && a.User+"@"+a.Host != s {
			t.Fatalf("%q -> %+v", s, a)
		}
	})
}
