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

func FuzzGlobalGrantBypassesReadOnly(f *testing.F) {
	for _, s := range []string{"GRANT ALL PRIVILEGES ON *.* TO `a`@`%`", "GRANT `r` TO `u`@`h`", "GRANT SELECT ON `db`.* TO 'u'@'h'", "GRANT "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := GlobalGrantBypassesReadOnly(s)
		if got && !strings.Contains(strings.ToUpper(s), "ON") {
			t.Fatalf("%q: a grant without ON cannot be global", s)
		}
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

func FuzzParseRoleGrant(f *testing.F) {
	for _, s := range []string{"GRANT `r1` TO `u`@`%`", "GRANT 'a''b' TO 'u'@'h'", "GRANT USAGE ON *.* TO `u`@`%`", "GRANT `", "GRANT "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		role, ok := ParseRoleGrant(s)
		if ok && role == "" {
			t.Fatalf("%q: empty role accepted", s)
		}
	})
}
