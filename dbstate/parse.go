package dbstate

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ErrParse is returned (wrapped) when server output or an option file cannot be understood.
var ErrParse = errors.New("cannot parse")

// Row is one result row by column name. A NULL is absent from the map.
type Row map[string]string

// ReplicaStatus is the part of SHOW SLAVE STATUS that dbstate uses, mapped by column name.
type ReplicaStatus struct {
	MasterHost string `json:"master_host"`
	MasterPort int    `json:"master_port"`
	MasterUser string `json:"master_user"`
	IORunning  string `json:"io_running"` // Yes, No, Connecting, Preparing
	SQLRunning string `json:"sql_running"`
	// SecondsBehind is Seconds_Behind_Master; nil when the server reports NULL (SQL thread stopped, IO not connected).
	SecondsBehind *int64 `json:"seconds_behind_master"`
	SQLDelay      int64  `json:"sql_delay"`
	LastIOErrno   int    `json:"last_io_errno,omitempty"`
	LastIOError   string `json:"last_io_error,omitempty"`
	LastSQLErrno  int    `json:"last_sql_errno,omitempty"`
	LastSQLError  string `json:"last_sql_error,omitempty"`
	UsingGTID     string `json:"using_gtid"` // No, Slave_Pos, Current_Pos
	MasterID      uint32 `json:"master_server_id"`
	// Filters are the replication filters in effect, by column (Replicate_Do_DB, Replicate_Ignore_Table, ...,
	// Replicate_Do_Domain_Ids, Replicate_Ignore_Server_Ids): a replica with any of them is not a full copy.
	Filters map[string]string `json:"filters,omitempty"`
}

// filterColumns are the SHOW SLAVE STATUS columns of MariaDB 10.11 that filter what a replica applies.
var filterColumns = []string{"Replicate_Do_DB", "Replicate_Ignore_DB", "Replicate_Do_Table", "Replicate_Ignore_Table",
	"Replicate_Wild_Do_Table", "Replicate_Wild_Ignore_Table", "Replicate_Rewrite_DB", "Replicate_Ignore_Server_Ids",
	"Replicate_Do_Domain_Ids", "Replicate_Ignore_Domain_Ids"}

// FilterString names the filters in effect, "" when there is none.
func (r *ReplicaStatus) FilterString() string {
	var parts []string
	for _, c := range filterColumns {
		if v, ok := r.Filters[c]; ok {
			parts = append(parts, c+"="+v)
		}
	}
	return strings.Join(parts, " ")
}

// Delayed reports whether the replica applies with an intended delay (MASTER_DELAY, SQL_Delay > 0).
func (r *ReplicaStatus) Delayed() bool { return r.SQLDelay > 0 }

// Lag is how far the replica is behind beyond its intended delay: Seconds_Behind_Master, which counts the
// MASTER_DELAY too, minus SQL_Delay, never below zero. ok is false when the server reports NULL.
func (r *ReplicaStatus) Lag() (lag time.Duration, ok bool) {
	if r.SecondsBehind == nil {
		return 0, false
	}
	return time.Duration(max(*r.SecondsBehind-r.SQLDelay, 0)) * time.Second, true
}

// LagString is Lag for people: "3s", or "NULL".
func (r *ReplicaStatus) LagString() string {
	lag, ok := r.Lag()
	if !ok {
		return "NULL"
	}
	return lag.String()
}

// MasterAddr is "host:port" of the master, with localhost written as 127.0.0.1.
func (r *ReplicaStatus) MasterAddr() string { return NormalizeAddr(r.MasterHost, r.MasterPort) }

// Healthy reports whether both threads run without errors.
func (r *ReplicaStatus) Healthy() bool {
	return r.IORunning == "Yes" && r.SQLRunning == "Yes" && r.LastIOErrno == 0 && r.LastSQLErrno == 0
}

// NormalizeAddr joins host and port, writing localhost as 127.0.0.1, so that one instance has one key.
func NormalizeAddr(host string, port int) string {
	if host == "localhost" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func atoiField(r Row, col string, bits int) (int64, error) {
	v, ok := r[col]
	if !ok || v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%w %s %q: not a number", ErrParse, col, v)
	}
	return n, nil
}

// ParseReplicaStatus maps one SHOW SLAVE STATUS row by column name. It needs Master_Host, Master_Port,
// Slave_IO_Running and Slave_SQL_Running; the other columns are optional.
func ParseReplicaStatus(r Row) (*ReplicaStatus, error) {
	for _, c := range []string{"Master_Host", "Master_Port", "Slave_IO_Running", "Slave_SQL_Running"} {
		if _, ok := r[c]; !ok {
			return nil, fmt.Errorf("%w SHOW SLAVE STATUS: no column %s", ErrParse, c)
		}
	}
	s := &ReplicaStatus{
		MasterHost: r["Master_Host"], MasterUser: r["Master_User"],
		IORunning: r["Slave_IO_Running"], SQLRunning: r["Slave_SQL_Running"],
		LastIOError: r["Last_IO_Error"], LastSQLError: r["Last_SQL_Error"], UsingGTID: r["Using_Gtid"],
	}
	port, err := atoiField(r, "Master_Port", 32)
	if err != nil {
		return nil, err
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w Master_Port %d: out of range", ErrParse, port)
	}
	s.MasterPort = int(port)
	if v, ok := r["Seconds_Behind_Master"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w Seconds_Behind_Master %q", ErrParse, v)
		}
		s.SecondsBehind = &n
	}
	if s.SQLDelay, err = atoiField(r, "SQL_Delay", 64); err != nil {
		return nil, err
	}
	n, err := atoiField(r, "Last_IO_Errno", 32)
	if err != nil {
		return nil, err
	}
	s.LastIOErrno = int(n)
	if n, err = atoiField(r, "Last_SQL_Errno", 32); err != nil {
		return nil, err
	}
	s.LastSQLErrno = int(n)
	for _, c := range filterColumns {
		if v := strings.TrimSpace(r[c]); v != "" {
			if s.Filters == nil {
				s.Filters = map[string]string{}
			}
			if len(v) > 512 {
				v = v[:512] + "..."
			}
			s.Filters[c] = v
		}
	}
	if v := r["Master_Server_Id"]; v != "" {
		id, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w Master_Server_Id %q", ErrParse, v)
		}
		s.MasterID = uint32(id)
	}
	return s, nil
}

// ReplicaHost is one row of SHOW SLAVE HOSTS: a replica that registered with report_host and report_port.
type ReplicaHost struct {
	ServerID uint32 `json:"server_id"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
}

// Addr is the replica's normalized host:port.
func (h ReplicaHost) Addr() string { return NormalizeAddr(h.Host, h.Port) }

// ParseReplicaHosts maps SHOW SLAVE HOSTS rows by column name. Rows without a host (no report_host) are
// returned with an empty Host; callers cannot reach those replicas from here.
func ParseReplicaHosts(rows []Row) ([]ReplicaHost, error) {
	var out []ReplicaHost
	for _, r := range rows {
		id, err := strconv.ParseUint(strings.TrimSpace(r["Server_id"]), 10, 32)
		if err != nil {
			return nil, fmt.Errorf("%w SHOW SLAVE HOSTS Server_id %q", ErrParse, r["Server_id"])
		}
		port, err := strconv.Atoi(strings.TrimSpace(r["Port"]))
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("%w SHOW SLAVE HOSTS Port %q", ErrParse, r["Port"])
		}
		out = append(out, ReplicaHost{ServerID: uint32(id), Host: r["Host"], Port: port})
	}
	return out, nil
}

// ParseBool reads a server boolean: ON/OFF, 1/0, YES/NO, TRUE/FALSE, in any case.
func ParseBool(s string) (bool, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "ON", "1", "YES", "TRUE":
		return true, nil
	case "OFF", "0", "NO", "FALSE", "":
		return false, nil
	}
	return false, fmt.Errorf("%w boolean %q", ErrParse, s)
}

// Vars are the server variables that dbstate reads from each instance.
type Vars struct {
	ServerID        uint32   `json:"server_id"`
	Version         string   `json:"version"`
	ReadOnly        bool     `json:"read_only"`
	BinlogFormat    string   `json:"binlog_format"`
	LogBin          bool     `json:"log_bin"`
	LogSlaveUpdates bool     `json:"log_slave_updates"`
	GTIDStrictMode  bool     `json:"gtid_strict_mode"`
	GTIDDomainID    uint32   `json:"gtid_domain_id"`
	GTIDBinlogPos   Position `json:"gtid_binlog_pos"`
	GTIDSlavePos    Position `json:"gtid_slave_pos"`
	GTIDCurrentPos  Position `json:"gtid_current_pos"`
	ReportHost      string   `json:"report_host"`
	Port            int      `json:"port"`
}

// varsQuery reads Vars in one round trip; ParseVars maps its row.
const varsQuery = "SELECT @@server_id AS server_id, @@version AS version, @@read_only AS read_only, " +
	"@@GLOBAL.binlog_format AS binlog_format, @@log_bin AS log_bin, @@log_slave_updates AS log_slave_updates, " +
	"@@gtid_strict_mode AS gtid_strict_mode, @@gtid_domain_id AS gtid_domain_id, " +
	"@@gtid_binlog_pos AS gtid_binlog_pos, @@gtid_slave_pos AS gtid_slave_pos, " +
	"@@gtid_current_pos AS gtid_current_pos, @@report_host AS report_host, @@port AS port"

// ParseVars maps the row of varsQuery.
func ParseVars(r Row) (*Vars, error) {
	v := &Vars{Version: r["version"], BinlogFormat: strings.ToUpper(r["binlog_format"]), ReportHost: r["report_host"]}
	id, err := strconv.ParseUint(strings.TrimSpace(r["server_id"]), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w server_id %q", ErrParse, r["server_id"])
	}
	v.ServerID = uint32(id)
	dom, err := strconv.ParseUint(strings.TrimSpace(r["gtid_domain_id"]), 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w gtid_domain_id %q", ErrParse, r["gtid_domain_id"])
	}
	v.GTIDDomainID = uint32(dom)
	port, err := strconv.Atoi(strings.TrimSpace(r["port"]))
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("%w port %q", ErrParse, r["port"])
	}
	v.Port = port
	for _, b := range []struct {
		col string
		dst *bool
	}{{"read_only", &v.ReadOnly}, {"log_bin", &v.LogBin}, {"log_slave_updates", &v.LogSlaveUpdates}, {"gtid_strict_mode", &v.GTIDStrictMode}} {
		if *b.dst, err = ParseBool(r[b.col]); err != nil {
			return nil, fmt.Errorf("%s: %w", b.col, err)
		}
	}
	for _, p := range []struct {
		col string
		dst *Position
	}{{"gtid_binlog_pos", &v.GTIDBinlogPos}, {"gtid_slave_pos", &v.GTIDSlavePos}, {"gtid_current_pos", &v.GTIDCurrentPos}} {
		if *p.dst, err = ParsePosition(r[p.col]); err != nil {
			return nil, fmt.Errorf("%s: %w", p.col, err)
		}
	}
	return v, nil
}

// VersionAtLeast reports whether a server version string ("10.11.19-MariaDB-0+deb12u1-log") is at least
// major.minor.
func VersionAtLeast(version string, major, minor int) bool {
	f := strings.SplitN(version, ".", 3)
	if len(f) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(f[0])
	mi, err2 := strconv.Atoi(strings.TrimRightFunc(f[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

func unquoteOption(v string) (string, error) {
	if len(v) == 0 || (v[0] != '"' && v[0] != '\'') {
		// An unquoted value ends at an inline comment.
		if k := strings.Index(v, " #"); k >= 0 {
			v = strings.TrimSpace(v[:k])
		}
		return v, nil
	}
	q := v[0]
	var b strings.Builder
	for k := 1; k < len(v); k++ {
		c := v[k]
		switch {
		case c == '\\' && k+1 < len(v):
			k++
			switch v[k] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(v[k])
			}
		case c == q:
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated quote")
}
