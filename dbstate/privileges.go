package dbstate

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// ErrMissingPrivilege is the reason for refusing a plan whose steps need a privilege that dbstate's account
// lacks on some instance, and the kind of a read that the server denied.
var ErrMissingPrivilege = errors.New("dbstate's account lacks a privilege")

// Privilege is one privilege a plan needs, as MariaDB 10.11 names it in SHOW GRANTS, with the statements that
// need it. Any of Any will do (SUPER still covers some of them).
type Privilege struct {
	Any []string // e.g. "REPLICATION SLAVE ADMIN", "SUPER"; "SELECT ON mysql" for SELECT on the mysql schema
	For string   // what dbstate runs that needs it
}

func (p Privilege) String() string { return p.Any[0] }

// The privileges each kind of work needs, measured on MariaDB 10.11 (the error of each statement without them).
var (
	privSlaveMonitor = Privilege{Any: []string{"SLAVE MONITOR", "SUPER"}, For: "SHOW SLAVE STATUS"}
	privMasterAdmin  = Privilege{Any: []string{"REPLICATION MASTER ADMIN"}, For: "SHOW SLAVE HOSTS"}
	privSlaveAdmin   = Privilege{Any: []string{"REPLICATION SLAVE ADMIN", "SUPER"}, For: "STOP/START SLAVE, CHANGE MASTER, gtid_slave_pos"}
	privReload       = Privilege{Any: []string{"RELOAD"}, For: "RESET SLAVE ALL"}
	privReadOnly     = Privilege{Any: []string{"READ_ONLY ADMIN"}, For: "SET GLOBAL read_only"}
	privProcess      = Privilege{Any: []string{"PROCESS"}, For: "seeing every session in the process list"}
	privConnAdmin    = Privilege{Any: []string{"CONNECTION ADMIN", "SUPER"}, For: "KILL CONNECTION of other users' sessions"}
	privCreateUser   = Privilege{Any: []string{"CREATE USER"}, For: "ALTER USER ... ACCOUNT LOCK/UNLOCK"}
	privBinlogAdmin  = Privilege{Any: []string{"BINLOG ADMIN", "SUPER"}, For: "SET SESSION sql_log_bin=0 (account locks stay local)"}
	privSelectMySQL  = Privilege{Any: []string{"SELECT ON mysql"}, For: "reading mysql.global_priv and SHOW GRANTS FOR other accounts"}
	privEvent        = Privilege{Any: []string{"EVENT"}, For: "ALTER EVENT: events stopped on the old primary, enabled on the new one"}
	privSetUser      = Privilege{Any: []string{"SET USER", "SUPER"}, For: "ALTER DEFINER=... EVENT (an event keeps its definer)"}
	privReplSlave    = Privilege{Any: []string{"REPLICATION SLAVE"}, For: "replicating (the replication account)"}

	// ReadPrivileges are what discovery needs on every instance.
	ReadPrivileges = []Privilege{privSlaveMonitor, privMasterAdmin}
	// MovePrivileges are what moving a replica needs on that replica (besides ReadPrivileges).
	MovePrivileges = []Privilege{privSlaveAdmin}
	// PrimaryPrivileges are what a switchover needs on the old primary (besides ReadPrivileges).
	PrimaryPrivileges = []Privilege{privReadOnly, privProcess, privConnAdmin, privCreateUser, privBinlogAdmin, privSelectMySQL, privSlaveAdmin,
		privEvent, privSetUser}
	// CandidatePrivileges are what a switchover needs on the candidate (besides ReadPrivileges).
	// The account locks of the candidate's fence need what they need on the old primary.
	CandidatePrivileges = []Privilege{privReadOnly, privSlaveAdmin, privReload, privEvent, privSetUser, privProcess, privConnAdmin,
		privCreateUser, privBinlogAdmin, privSelectMySQL}
	// ReplicaFencePrivileges are what the fence needs on the old primary's other replicas during a switchover
	// (besides ReadPrivileges and MovePrivileges): locking accounts there until the promotion.
	ReplicaFencePrivileges = []Privilege{privReadOnly, privProcess, privConnAdmin, privCreateUser, privBinlogAdmin, privSelectMySQL}
)

// Privileges are what one account holds on one instance, from SHOW GRANTS for it and for its enabled role
// (and the roles granted to that role).
type Privileges struct {
	Account string          `json:"account"`
	Held    map[string]bool `json:"held"` // privilege names as Privilege.Any spells them; "ALL PRIVILEGES" for ALL on *.*
}

// Has reports whether p holds any of need's alternatives.
func (p *Privileges) Has(need Privilege) bool {
	if p.Held["ALL PRIVILEGES"] {
		return true
	}
	for _, a := range need.Any {
		if p.Held[a] {
			return true
		}
	}
	return false
}

// Missing returns the needs that p lacks.
func (p *Privileges) Missing(needs []Privilege) []Privilege {
	var out []Privilege
	for _, n := range needs {
		if !p.Has(n) {
			out = append(out, n)
		}
	}
	return out
}

// addGrant adds what one privilege line of SHOW GRANTS grants to held: privileges on *.* by the names
// Privilege.Any uses, and SELECT on the mysql schema (SELECT on *.* or on mysql.* counts as "SELECT ON mysql").
func (p *Privileges) addGrant(g *GrantLine) {
	if g.Kind != LinePrivileges {
		return
	}
	switch {
	case g.Object.IsGlobal():
		if g.AllPrivileges {
			p.Held["ALL PRIVILEGES"] = true
		}
		for bit, pr := range privIdx.byBit {
			if pr != nil && g.Privs.Mask&(1<<bit) != 0 {
				p.Held[pr.name] = true
			}
		}
		if p.Held["SELECT"] {
			p.Held["SELECT ON mysql"] = true
		}
	case g.Object.DB == "mysql" && g.Object.Table == "*":
		if g.AllPrivileges || g.Privs.Mask&1 != 0 { // SELECT is bit 0
			p.Held["SELECT ON mysql"] = true
		}
	}
}

// Privileges reads what dbstate's account holds on addr: SHOW GRANTS, then the grants of its enabled role and
// of the roles granted to that (to a depth of 8).
func (c *Client) Privileges(ctx context.Context, addr string) (*Privileges, error) {
	p := &Privileges{Held: map[string]bool{}}
	err := c.statementSession(ctx, addr, false, func(q Querier) error {
		cur, err := queryString(ctx, q, "SELECT CURRENT_USER()")
		if err != nil {
			return err
		}
		p.Account = cur
		role, err := queryString(ctx, q, "SELECT IFNULL(CURRENT_ROLE(), '')")
		if err != nil {
			return err
		}
		rows, err := queryRows(ctx, q, "SHOW GRANTS")
		if err != nil {
			return fmt.Errorf("show grants: %w", err)
		}
		addGrantRows(p, rows, nil) // the roles it lists are granted, not necessarily enabled
		var roles []string
		if role != "" && role != "NONE" {
			roles = []string{role} // only the enabled role counts, and what it was granted
		}
		seen := map[string]bool{}
		for depth := 0; len(roles) > 0 && depth < 8; depth++ {
			var next []string
			for _, r := range roles {
				if seen[r] {
					continue
				}
				seen[r] = true
				rq, err := QuoteString(r)
				if err != nil {
					continue
				}
				rows, err := queryRows(ctx, q, "SHOW GRANTS FOR "+rq)
				if err != nil {
					continue // a role we cannot read adds nothing we could count on
				}
				next = addGrantRows(p, rows, next)
			}
			roles = next
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: read privileges: %w", addr, err)
	}
	return p, nil
}

// LoginPrivileges implements Servers: it logs in to addr as creds (with this client's TLS settings and
// timeout) on a connection of its own, and reads that account's privileges.
func (c *Client) LoginPrivileges(ctx context.Context, addr string, creds Credentials) (*Privileges, error) {
	if creds.TLS == nil {
		creds.TLS = c.creds.TLS
	}
	other, err := NewClientWith(creds, ClientOptions{ConnectTimeout: c.timeout, StatementTimeout: c.stmtTimeout, Logger: c.log})
	if err != nil {
		return nil, err
	}
	defer other.Close()
	return other.Privileges(ctx, addr)
}

// addGrantRows adds the grant lines of SHOW GRANTS rows to p and appends the roles they grant to roles. A line
// that does not parse grants nothing here: a privilege dbstate cannot read is missing, never assumed.
func addGrantRows(p *Privileges, rows []Row, roles []string) []string {
	for _, r := range rows {
		for _, line := range r {
			g, err := ParseGrantLine(line)
			if err != nil {
				continue
			}
			if g.Kind == LineRole {
				roles = append(roles, g.Role)
				continue
			}
			p.addGrant(g)
		}
	}
	return roles
}

// IsDenied reports whether err (from any read or statement, wrapped or not) is the server refusing it for lack
// of a privilege (SELECT on a mysql table, a missing global privilege).
func IsDenied(err error) bool { return isDenied(err) }

// isDenied reports whether err is the server refusing a statement for lack of a privilege.
func isDenied(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1227, // ER_SPECIFIC_ACCESS_DENIED_ERROR: you need (at least one of) the X privilege(s)
		1142, // ER_TABLEACCESS_DENIED_ERROR
		1143, // ER_COLUMNACCESS_DENIED_ERROR
		1044: // ER_DBACCESS_DENIED_ERROR
		return true
	}
	return false
}

// checkPrivileges adds to l one check per instance: dbstate's account holds every privilege in needs[addr].
// It returns the account as the first instance names it (CURRENT_USER()).
func checkPrivileges(ctx context.Context, l *checklist, s Servers, order []string, needs map[string][]Privilege) string {
	account := ""
	for _, addr := range order {
		p, err := s.Privileges(ctx, addr)
		if err != nil {
			l.fail("privileges", ErrUnreachable, err.Error())
			continue
		}
		if account == "" {
			account = p.Account
		}
		missing := p.Missing(needs[addr])
		if len(missing) == 0 {
			names := make([]string, len(needs[addr]))
			for k, n := range needs[addr] {
				names[k] = n.String()
			}
			l.pass("privileges", "%s on %s holds %s", p.Account, addr, strings.Join(names, ", "))
			continue
		}
		parts := make([]string, len(missing))
		for k, m := range missing {
			parts[k] = fmt.Sprintf("%s (for %s)", strings.Join(m.Any, " or "), m.For)
		}
		l.fail("privileges", ErrMissingPrivilege, fmt.Sprintf("%s on %s lacks %s", p.Account, addr, strings.Join(parts, ", ")))
	}
	return account
}
