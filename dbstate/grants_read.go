package dbstate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// globalPriv is the JSON of mysql.global_priv.Priv (MariaDB 10.4 and later). Absent keys mean their defaults.
type globalPriv struct {
	Access               *uint64 `json:"access"`
	Plugin               string  `json:"plugin"`
	AuthenticationString string  `json:"authentication_string"`
	AuthOr               []struct {
		Plugin               string `json:"plugin"`
		AuthenticationString string `json:"authentication_string"`
	} `json:"auth_or"`
	SSLType            int     `json:"ssl_type"`
	MaxQuestions       int64   `json:"max_questions"`
	MaxUpdates         int64   `json:"max_updates"`
	MaxConnections     int64   `json:"max_connections"`
	MaxUserConnections int64   `json:"max_user_connections"`
	MaxStatementTime   float64 `json:"max_statement_time"`
	IsRole             bool    `json:"is_role"`
	DefaultRole        string  `json:"default_role"`
}

// allBits is the access mask of accounts made by mariadb-install-db: every bit, ALL PRIVILEGES WITH GRANT OPTION.
const allBits = ^uint64(0)

// parseGlobalPriv turns one mysql.global_priv row into an account (without db, table and role grants).
func parseGlobalPriv(user, host, priv string, sp ServerPrivileges) (*AccountState, error) {
	var g globalPriv
	if err := json.Unmarshal([]byte(priv), &g); err != nil {
		return nil, fmt.Errorf("%w: mysql.global_priv of %q@%q: %w", ErrParse, user, host, err)
	}
	a := &AccountState{Roles: map[string]bool{}, Grants: map[Object]*Privs{}}
	if g.IsRole {
		a.Key = AccountKey{User: user, IsRole: true}
	} else {
		a.Key = AccountKey{User: user, Host: host}
		top := AuthMethod{Plugin: g.Plugin, Secret: g.AuthenticationString}
		if top.Plugin == "" {
			top.Plugin = PluginNative
		}
		if len(g.AuthOr) == 0 {
			a.Auth = []AuthMethod{normalAuth(top)}
		}
		for _, alt := range g.AuthOr {
			m := AuthMethod{Plugin: alt.Plugin, Secret: alt.AuthenticationString}
			if m.Plugin == "" {
				m = top // {} in auth_or stands for the top-level plugin
			}
			a.Auth = append(a.Auth, normalAuth(m))
		}
		switch g.SSLType {
		case 0:
			a.Require = RequireNone
		case 1:
			a.Require = RequireSSL
		case 2:
			a.Require = RequireX509
		default:
			a.Require = RequireSpecified
		}
		a.Limits = Limits{MaxQueriesPerHour: g.MaxQuestions, MaxUpdatesPerHour: g.MaxUpdates,
			MaxConnectionsPerHour: g.MaxConnections, MaxUserConnections: g.MaxUserConnections, MaxStatementTime: g.MaxStatementTime}
		a.DefaultRole = g.DefaultRole
	}
	if g.IsRole {
		a.DefaultRole = ""
	}
	if g.Access != nil && *g.Access != 0 {
		acc := *g.Access
		p := &Privs{}
		if acc == allBits {
			p.Mask, p.GrantOption = sp.Global, true
		} else {
			p.GrantOption = acc&(1<<grantOptionBit) != 0
			acc &^= 1 << grantOptionBit
			if unknown := acc &^ sp.Global; unknown != 0 {
				return nil, fmt.Errorf("%w: %s has global privilege bits %#x that this server's privilege list (%s) does not name",
					ErrUnsupportedGrants, a.Key, unknown, sp.Version)
			}
			p.Mask = acc
		}
		if !p.empty() {
			a.Grants[Object{DB: "*", Table: "*"}] = p
		}
	}
	return a, nil
}

func normalAuth(m AuthMethod) AuthMethod {
	if m.Plugin == PluginNative && len(m.Secret) == 41 && m.Secret[0] == '*' {
		m.Secret = strings.ToUpper(m.Secret)
	}
	return m
}

// tableSetBits maps mysql.tables_priv's SET values to privilege bits ("Grant" is the grant option, -1).
var tableSetBits = func() map[string]int {
	m := map[string]int{"grant": -1}
	for _, p := range privileges {
		if p.tableSet != "" {
			m[strings.ToLower(p.tableSet)] = int(p.bit)
		}
	}
	return m
}()

// parsePrivSet reads a tables_priv or columns_priv SET value, "Select,Insert,Grant".
func parsePrivSet(s string) (mask uint64, grant bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	for _, f := range strings.Split(s, ",") {
		b, ok := tableSetBits[strings.ToLower(strings.TrimSpace(f))]
		switch {
		case !ok:
			return 0, false, fmt.Errorf("%w: unknown privilege %q", ErrUnsupportedGrants, f)
		case b < 0:
			grant = true
		default:
			mask |= 1 << uint(b)
		}
	}
	return mask, grant, nil
}

// dbPrivColumns are the privilege columns of mysql.db, in the privileges' order, with Grant_priv last.
var dbPrivColumns = func() []string {
	var cols []string
	for _, p := range privileges {
		if p.dbColumn != "" {
			cols = append(cols, p.dbColumn)
		}
	}
	return append(cols, "Grant_priv")
}()

// ReadGrants reads the users, roles and grants of one server in a fixed number of queries (not one per
// account): CURRENT_USER() and the version, SHOW PRIVILEGES, the active authentication plugins, mysql.global_priv (authentication, TLS, limits,
// default role and global privileges, from its JSON), mysql.roles_mapping, mysql.db, mysql.tables_priv and
// mysql.columns_priv. It needs SELECT on those tables and nothing else. Routine and proxy grants are not
// managed; routine grants are reported as warnings.
func ReadGrants(ctx context.Context, q Querier) (*GrantState, error) {
	st := &GrantState{Accounts: map[AccountKey]*AccountState{}}
	rows, err := queryRows(ctx, q, "SELECT CURRENT_USER() AS u, @@version AS v")
	if err != nil || len(rows) != 1 {
		return nil, fmt.Errorf("read grants: current user: %w", err)
	}
	self, err := ParseAccount(rows[0]["u"])
	if err != nil {
		return nil, fmt.Errorf("read grants: %w", err)
	}
	st.Self = AccountKey{User: self.User, Host: self.Host}
	version := rows[0]["v"]
	if !VersionAtLeast(version, 10, 5) {
		return nil, fmt.Errorf("%w: server version %s: dbstate grants needs MariaDB 10.5 or later", ErrUnsupportedGrants, version)
	}
	pr, err := queryRows(ctx, q, "SHOW PRIVILEGES")
	if err != nil {
		return nil, fmt.Errorf("read grants: show privileges: %w", err)
	}
	names := make([]string, 0, len(pr))
	for _, r := range pr {
		names = append(names, r["Privilege"])
	}
	sp, unknown := parseShowPrivileges(version, names)
	st.Privileges = sp
	if len(unknown) > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("server %s knows privileges dbstate does not: %s", version, strings.Join(unknown, ", ")))
	}

	pl, err := queryRows(ctx, q, "SELECT PLUGIN_NAME FROM information_schema.PLUGINS WHERE PLUGIN_TYPE='AUTHENTICATION' AND PLUGIN_STATUS='ACTIVE'")
	if err != nil {
		return nil, fmt.Errorf("read grants: authentication plugins: %w", err)
	}
	st.AuthPlugins = map[string]bool{}
	for _, r := range pl {
		st.AuthPlugins[r["PLUGIN_NAME"]] = true
	}

	gp, err := queryRows(ctx, q, "SELECT User, Host, Priv FROM mysql.global_priv")
	if err != nil {
		return nil, fmt.Errorf("read grants: mysql.global_priv: %w", err)
	}
	roles := map[string]bool{}
	for _, r := range gp {
		a, err := parseGlobalPriv(r["User"], r["Host"], r["Priv"], sp)
		if err != nil {
			return nil, fmt.Errorf("read grants: %w", err)
		}
		if a.Key.IsRole {
			roles[a.Key.User] = true
		}
		st.Accounts[a.Key] = a
	}
	// grantee finds the account of a row of the other tables: a role has an empty host there.
	grantee := func(user, host, table string) *AccountState {
		k := AccountKey{User: user, Host: host}
		if host == "" && roles[user] {
			k = AccountKey{User: user, IsRole: true}
		}
		a := st.Accounts[k]
		if a == nil {
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s has a row for %s, which has no account: ignored", table, printable(k.String())))
		}
		return a
	}

	// starNamed skips a row on a database or table literally named *: read as the wildcard it would become *.* or
	// db.*, and a plan would revoke a global or database privilege that the account does not have.
	starNamed := func(a *AccountState, db, table, tbl string) bool {
		if db != "*" && table != "*" {
			return false
		}
		obj := "`" + printable(db) + "`.*"
		if table != "" {
			obj = "`" + printable(db) + "`.`" + printable(table) + "`"
		}
		st.Warnings = append(st.Warnings, fmt.Sprintf("%s has a row for %s on %s, an object named *: not managed by dbstate, left alone",
			tbl, printable(a.Key.String()), obj))
		return true
	}

	rm, err := queryRows(ctx, q, "SELECT Host, User, Role, Admin_option FROM mysql.roles_mapping")
	if err != nil {
		return nil, fmt.Errorf("read grants: mysql.roles_mapping: %w", err)
	}
	for _, r := range rm {
		if a := grantee(r["User"], r["Host"], "mysql.roles_mapping"); a != nil {
			a.Roles[r["Role"]] = r["Admin_option"] == "Y"
		}
	}

	dbRows, err := queryRows(ctx, q, "SELECT Host, Db, User, "+strings.Join(dbPrivColumns, ", ")+" FROM mysql.db")
	if err != nil {
		return nil, fmt.Errorf("read grants: mysql.db: %w", err)
	}
	for _, r := range dbRows {
		a := grantee(r["User"], r["Host"], "mysql.db")
		if a == nil || starNamed(a, r["Db"], "", "mysql.db") {
			continue
		}
		p := &Privs{GrantOption: r["Grant_priv"] == "Y"}
		for _, pv := range privileges {
			if pv.dbColumn != "" && r[pv.dbColumn] == "Y" {
				p.Mask |= 1 << pv.bit
			}
		}
		if !p.empty() {
			a.Grants[Object{DB: r["Db"], Table: "*"}] = p
		}
	}

	tp, err := queryRows(ctx, q, "SELECT Host, Db, User, Table_name, Table_priv FROM mysql.tables_priv")
	if err != nil {
		return nil, fmt.Errorf("read grants: mysql.tables_priv: %w", err)
	}
	for _, r := range tp {
		a := grantee(r["User"], r["Host"], "mysql.tables_priv")
		if a == nil || starNamed(a, r["Db"], r["Table_name"], "mysql.tables_priv") {
			continue
		}
		m, g, err := parsePrivSet(r["Table_priv"])
		if err != nil {
			return nil, fmt.Errorf("read grants: %s on %s.%s: %w", a.Key, r["Db"], r["Table_name"], err)
		}
		o := Object{DB: r["Db"], Table: r["Table_name"]}
		p := a.Grants[o]
		if p == nil {
			p = &Privs{}
			a.Grants[o] = p
		}
		p.Mask |= m
		p.GrantOption = p.GrantOption || g
	}
	cp, err := queryRows(ctx, q, "SELECT Host, Db, User, Table_name, Column_name, Column_priv FROM mysql.columns_priv")
	if err != nil {
		return nil, fmt.Errorf("read grants: mysql.columns_priv: %w", err)
	}
	for _, r := range cp {
		a := grantee(r["User"], r["Host"], "mysql.columns_priv")
		if a == nil || starNamed(a, r["Db"], r["Table_name"], "mysql.columns_priv") {
			continue
		}
		m, _, err := parsePrivSet(r["Column_priv"])
		if err != nil {
			return nil, fmt.Errorf("read grants: %s on column %s: %w", a.Key, r["Column_name"], err)
		}
		o := Object{DB: r["Db"], Table: r["Table_name"]}
		p := a.Grants[o]
		if p == nil {
			p = &Privs{}
			a.Grants[o] = p
		}
		if p.Columns == nil {
			p.Columns = map[string]uint64{}
		}
		p.Columns[r["Column_name"]] |= m
	}
	for _, a := range st.Accounts {
		for o, p := range a.Grants {
			for c, m := range p.Columns {
				if m == 0 {
					delete(p.Columns, c)
				}
			}
			if p.empty() {
				delete(a.Grants, o)
			}
		}
	}
	procs, err := queryRows(ctx, q, "SELECT Host, User, Db, Routine_name, Routine_type FROM mysql.procs_priv")
	if err != nil {
		return nil, fmt.Errorf("read grants: mysql.procs_priv: %w", err)
	}
	for _, r := range procs {
		st.Warnings = append(st.Warnings, fmt.Sprintf("routine grant on %s %s.%s to %q@%q is not managed by dbstate",
			r["Routine_type"], r["Db"], r["Routine_name"], r["User"], r["Host"]))
	}
	return st, nil
}

// ReadAccountGrants reads one account with SHOW GRANTS FOR (one query), parsed by ParseShowGrants: the other
// source of truth, used to cross-check ReadGrants.
func ReadAccountGrants(ctx context.Context, q Querier, k AccountKey, sp ServerPrivileges) (*AccountState, error) {
	acct, err := k.sql()
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, "SHOW GRANTS FOR "+acct)
	if err != nil {
		return nil, fmt.Errorf("show grants for %s: %w", k, err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	a, _, err := ParseShowGrants(lines, sp)
	return a, err
}
