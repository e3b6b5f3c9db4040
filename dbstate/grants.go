package dbstate

// Users, roles and grants as desired state.
//
// The model has three layers, each a plain value:
//
//   - DesiredGrants is the YAML file as written (ParseDesiredGrants). It names password files, not passwords.
//   - GrantState is the normalised state of one server: accounts (users and roles) with their authentication,
//     TLS requirement, limits, role memberships, default role and privileges as bit sets per object. ReadGrants
//     reads it from a server; DesiredGrants.Normalize builds the desired one against a server's privilege list
//     (what ALL PRIVILEGES means there), hashing passwords on the client.
//   - DiffGrants (pure) compares two GrantStates and returns the statements that make the actual one the
//     desired one. PlanGrants runs it on every instance of a cluster and turns the result into a Plan.

import (
	"errors"
	"fmt"
	"math/bits"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors of the grants model. Callers branch on them with errors.Is.
var (
	// ErrDesiredGrants is returned (wrapped) for a desired-state file that is not valid.
	ErrDesiredGrants = errors.New("invalid desired grants")
	// ErrBadName is returned (wrapped) for a user, host, role, database, table or column name that dbstate
	// refuses to put in a statement.
	ErrBadName = errors.New("invalid name")
	// ErrOwnAccount is returned when a plan would change or drop the account dbstate connects with.
	ErrOwnAccount = errors.New("refusing to change dbstate's own account")
	// ErrUnsupportedGrants is returned when a server's users or grants use something dbstate cannot read.
	ErrUnsupportedGrants = errors.New("unsupported grants")
)

// MariaDB's limits on names (MariaDB 10.5 and later).
const (
	MaxUserNameLen   = 128 // characters
	MaxHostNameLen   = 255
	MaxObjectNameLen = 64 // databases, tables, columns
)

// privilege is one MariaDB privilege: its bit in mysql.global_priv's access mask (the same bit numbers serve for
// the per-database and per-table sets here), its column in mysql.db, its value in mysql.tables_priv.Table_priv,
// and whether it may be granted on columns.
type privilege struct {
	name     string // as SHOW GRANTS prints it
	bit      uint
	dbColumn string // "" when not a database-level privilege
	tableSet string // "" when not a table-level privilege
	column   bool
}

// grantOptionBit is GRANT OPTION's bit in the access mask; dbstate keeps it apart (Privs.GrantOption).
const grantOptionBit = 10

// privileges is MariaDB's privilege list in bit order (sql/privilege.h; checked against a real server by
// TestGrantsOnCluster/privilege_bits). Which of them a server knows comes from its SHOW PRIVILEGES.
var privileges = []privilege{
	{"SELECT", 0, "Select_priv", "Select", true},
	{"INSERT", 1, "Insert_priv", "Insert", true},
	{"UPDATE", 2, "Update_priv", "Update", true},
	{"DELETE", 3, "Delete_priv", "Delete", false},
	{"CREATE", 4, "Create_priv", "Create", false},
	{"DROP", 5, "Drop_priv", "Drop", false},
	{"RELOAD", 6, "", "", false},
	{"SHUTDOWN", 7, "", "", false},
	{"PROCESS", 8, "", "", false},
	{"FILE", 9, "", "", false},
	{"REFERENCES", 11, "References_priv", "References", true},
	{"INDEX", 12, "Index_priv", "Index", false},
	{"ALTER", 13, "Alter_priv", "Alter", false},
	{"SHOW DATABASES", 14, "", "", false},
	{"SUPER", 15, "", "", false},
	{"CREATE TEMPORARY TABLES", 16, "Create_tmp_table_priv", "", false},
	{"LOCK TABLES", 17, "Lock_tables_priv", "", false},
	{"EXECUTE", 18, "Execute_priv", "", false},
	{"REPLICATION SLAVE", 19, "", "", false},
	{"BINLOG MONITOR", 20, "", "", false},
	{"CREATE VIEW", 21, "Create_view_priv", "Create View", false},
	{"SHOW VIEW", 22, "Show_view_priv", "Show view", false},
	{"CREATE ROUTINE", 23, "Create_routine_priv", "", false},
	{"ALTER ROUTINE", 24, "Alter_routine_priv", "", false},
	{"CREATE USER", 25, "", "", false},
	{"EVENT", 26, "Event_priv", "", false},
	{"TRIGGER", 27, "Trigger_priv", "Trigger", false},
	{"CREATE TABLESPACE", 28, "", "", false},
	{"DELETE HISTORY", 29, "Delete_history_priv", "Delete versioning rows", false},
	{"SET USER", 30, "", "", false},
	{"FEDERATED ADMIN", 31, "", "", false},
	{"CONNECTION ADMIN", 32, "", "", false},
	{"READ_ONLY ADMIN", 33, "", "", false},
	{"REPLICATION SLAVE ADMIN", 34, "", "", false},
	{"REPLICATION MASTER ADMIN", 35, "", "", false},
	{"BINLOG ADMIN", 36, "", "", false},
	{"BINLOG REPLAY", 37, "", "", false},
	{"SLAVE MONITOR", 38, "", "", false},
}

// privAliases are other spellings that GRANT accepts, mapped to the name SHOW GRANTS prints.
var privAliases = map[string]string{
	"REPLICATION CLIENT":     "BINLOG MONITOR", // 10.5 renamed it
	"READ ONLY ADMIN":        "READ_ONLY ADMIN",
	"REPLICA MONITOR":        "SLAVE MONITOR",
	"REPLICATION REPLICA":    "REPLICATION SLAVE",
	"DELETE VERSIONING ROWS": "DELETE HISTORY",
}

// privIndex is the privilege list indexed for lookups.
type privIndex struct {
	byName     map[string]*privilege
	byBit      [64]*privilege
	dbMask     uint64 // privileges that exist per database
	tableMask  uint64 // per table
	columnMask uint64 // per column
}

var privIdx = buildPrivIndex()

func buildPrivIndex() *privIndex {
	x := &privIndex{byName: map[string]*privilege{}}
	for k := range privileges {
		p := &privileges[k]
		x.byName[p.name] = p
		x.byBit[p.bit] = p
		if p.dbColumn != "" {
			x.dbMask |= 1 << p.bit
		}
		if p.tableSet != "" {
			x.tableMask |= 1 << p.bit
		}
		if p.column {
			x.columnMask |= 1 << p.bit
		}
	}
	return x
}

// canonicalPriv maps a privilege as written (any case, extra spaces, an alias) to its name and bit.
func canonicalPriv(s string) (*privilege, bool) {
	n := strings.ToUpper(strings.Join(strings.Fields(s), " "))
	if a, ok := privAliases[n]; ok {
		n = a
	}
	p, ok := privIdx.byName[n]
	return p, ok
}

// ServerPrivileges is what a server's privilege list says: the global privileges it knows (in bit order), and
// therefore what ALL PRIVILEGES means on it.
type ServerPrivileges struct {
	Version string `json:"version"`
	// Global is the mask of global privileges the server knows: ALL PRIVILEGES ON *.*.
	Global uint64 `json:"-"`
}

// DefaultServerPrivileges is the privilege list of MariaDB 10.11 (every privilege dbstate knows).
func DefaultServerPrivileges() ServerPrivileges {
	var m uint64
	for _, p := range privileges {
		m |= 1 << p.bit
	}
	return ServerPrivileges{Version: "10.11", Global: m}
}

// parseShowPrivileges builds the privilege list from the Privilege column of SHOW PRIVILEGES ("Read_only admin",
// "Create temporary tables", ...). Names dbstate does not know are returned apart: their grants are read from
// SHOW GRANTS instead of the access mask.
func parseShowPrivileges(version string, names []string) (ServerPrivileges, []string) {
	sp := ServerPrivileges{Version: version}
	var unknown []string
	for _, n := range names {
		switch strings.ToUpper(n) {
		case "USAGE", "PROXY", "GRANT OPTION":
			continue
		}
		if p, ok := canonicalPriv(n); ok {
			sp.Global |= 1 << p.bit
		} else {
			unknown = append(unknown, n)
		}
	}
	return sp, unknown
}

// levelMask is what ALL PRIVILEGES means on an object of this server.
func (sp ServerPrivileges) levelMask(o Object) uint64 {
	switch {
	case o.IsGlobal():
		return sp.Global
	case o.Table == "*":
		return sp.Global & privIdx.dbMask
	default:
		return sp.Global & privIdx.tableMask
	}
}

// Object is what a grant is on: *.* (DB "*"), a database pattern (Table "*") or a table. DB is the pattern as
// stored in mysql.db: "%" and "_" are wildcards there, and "\_" a literal underscore.
type Object struct {
	DB    string `json:"db"`
	Table string `json:"table"`
}

// IsGlobal reports whether o is *.*.
func (o Object) IsGlobal() bool { return o.DB == "*" }

// String is the object as written in the desired-state file: *.*, db.*, db.table, with backquotes around
// names that need them.
func (o Object) String() string {
	if o.IsGlobal() {
		return "*.*"
	}
	t := "*"
	if o.Table != "*" {
		t = displayIdent(o.Table)
	}
	return displayIdent(o.DB) + "." + t
}

// sql is the object as a statement writes it.
func (o Object) sql() (string, error) {
	if o.IsGlobal() {
		return "*.*", nil
	}
	db, err := QuoteIdent(o.DB)
	if err != nil {
		return "", err
	}
	if o.Table == "*" {
		return db + ".*", nil
	}
	t, err := QuoteIdent(o.Table)
	if err != nil {
		return "", err
	}
	return db + "." + t, nil
}

// displayIdent writes a name bare when it is plain ASCII letters, digits, _, $ and \ (a pattern's escape), and
// backquoted otherwise.
func displayIdent(s string) string {
	plain := s != ""
	for _, r := range s {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(`_$\%`, r))) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	return "`" + strings.ReplaceAll(s, "`", "``") + "`"
}

// Privs are the privileges of one account on one object.
type Privs struct {
	Mask        uint64            // privilege bits (see privileges); never GRANT OPTION's
	Columns     map[string]uint64 // per column: SELECT, INSERT, UPDATE, REFERENCES
	GrantOption bool
}

func (p *Privs) empty() bool { return p.Mask == 0 && len(p.Columns) == 0 && !p.GrantOption }

func (p *Privs) clone() *Privs {
	q := &Privs{Mask: p.Mask, GrantOption: p.GrantOption}
	if len(p.Columns) > 0 {
		q.Columns = make(map[string]uint64, len(p.Columns))
		for c, m := range p.Columns {
			q.Columns[c] = m
		}
	}
	return q
}

// PrivilegeNames lists the privileges of an access mask (as in mysql.global_priv), in bit order.
func PrivilegeNames(mask uint64) []string { return privNames(mask) }

// PrivilegeMask is the access-mask bit of a privilege name (any case, aliases accepted); 0 if unknown.
func PrivilegeMask(name string) uint64 {
	if p, ok := canonicalPriv(name); ok {
		return 1 << p.bit
	}
	return 0
}

// privNames lists the privileges of a mask in bit order (the order SHOW GRANTS uses).
func privNames(m uint64) []string {
	var out []string
	for m != 0 {
		b := uint(bits.TrailingZeros64(m))
		m &^= 1 << b
		if p := privIdx.byBit[b]; p != nil {
			out = append(out, p.name)
		}
	}
	return out
}

// AuthMethod is one way an account authenticates: a plugin and its authentication string (a password hash or
// an ed25519 public key). The authentication string never appears in printed or JSON output.
type AuthMethod struct {
	Plugin string `json:"plugin"`
	Secret string `json:"-"`
}

// Plugins dbstate manages.
const (
	PluginNative     = "mysql_native_password"
	PluginED25519    = "ed25519"
	PluginUnixSocket = "unix_socket"
)

// Limits are an account's resource limits; zero means unlimited.
type Limits struct {
	MaxQueriesPerHour     int64   `json:"max_queries_per_hour,omitempty" yaml:"max_queries_per_hour,omitempty"`
	MaxUpdatesPerHour     int64   `json:"max_updates_per_hour,omitempty" yaml:"max_updates_per_hour,omitempty"`
	MaxConnectionsPerHour int64   `json:"max_connections_per_hour,omitempty" yaml:"max_connections_per_hour,omitempty"`
	MaxUserConnections    int64   `json:"max_user_connections,omitempty" yaml:"max_user_connections,omitempty"`
	MaxStatementTime      float64 `json:"max_statement_time,omitempty" yaml:"max_statement_time,omitempty"` // seconds
}

// Require values.
const (
	RequireNone      = "none"
	RequireSSL       = "ssl"
	RequireX509      = "x509"
	RequireSpecified = "specified" // ISSUER, SUBJECT or CIPHER: read, shown, but not managed
)

// AccountKey names a user (Host set) or a role (IsRole, Host empty).
type AccountKey struct {
	User   string
	Host   string
	IsRole bool
}

// String is 'user'@'host' for a user and the bare name for a role, as plans print them.
func (k AccountKey) String() string {
	if k.IsRole {
		return "role " + displayIdent(k.User)
	}
	return "'" + strings.ReplaceAll(k.User, "'", "''") + "'@'" + strings.ReplaceAll(k.Host, "'", "''") + "'"
}

// sql is the account as statements write it: `user`@`host`, or `role`.
func (k AccountKey) sql() (string, error) {
	u, err := QuoteIdent(k.User)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadName, err)
	}
	if k.IsRole {
		return u, nil
	}
	h, err := QuoteIdent(k.Host)
	if err != nil {
		return "", fmt.Errorf("%w: host: %w", ErrBadName, err)
	}
	return u + "@" + h, nil
}

// AccountState is the normalised state of one user or role.
type AccountState struct {
	Key AccountKey
	// Auth are the account's authentication methods, alternatives in order (IDENTIFIED VIA a OR b). Empty for
	// roles.
	Auth    []AuthMethod
	Require string // RequireNone, RequireSSL, RequireX509 or RequireSpecified
	Limits  Limits
	// Roles are the roles granted to the account; true means WITH ADMIN OPTION.
	Roles       map[string]bool
	DefaultRole string
	Grants      map[Object]*Privs
}

// GrantState is the users, roles and grants of one server, or the desired ones.
type GrantState struct {
	Accounts map[AccountKey]*AccountState
	// Privileges is the server's privilege list (for actual state) or the one the desired state was normalised
	// against.
	Privileges ServerPrivileges
	// Self is the account the reading session is logged in as (CURRENT_USER()); set for actual state only.
	Self AccountKey
	// AuthPlugins are the authentication plugins active on the server (actual state only).
	AuthPlugins map[string]bool
	// Prune, Protect: desired state only (see DesiredGrants).
	Prune   bool
	Protect map[AccountKey]bool
	// Warnings are things a reader should know that are not errors (grants dbstate reads but does not manage).
	Warnings []string
}

// sortedKeys returns the accounts in a stable order: roles first (they must exist before users get them), then
// users by name and host.
func (s *GrantState) sortedKeys() []AccountKey {
	keys := make([]AccountKey, 0, len(s.Accounts))
	for k := range s.Accounts {
		keys = append(keys, k)
	}
	sortKeys(keys)
	return keys
}

func sortKeys(keys []AccountKey) {
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.IsRole != b.IsRole {
			return a.IsRole
		}
		if a.User != b.User {
			return a.User < b.User
		}
		return a.Host < b.Host
	})
}

func sortedObjects(m map[Object]*Privs) []Object {
	out := make([]Object, 0, len(m))
	for o := range m {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].DB != out[j].DB {
			return out[i].DB < out[j].DB
		}
		return out[i].Table < out[j].Table
	})
	return out
}

// systemAccount reports whether dbstate never drops an account whatever the file says: root (any host),
// mariadb.sys and mysql@localhost (created by mariadb-install-db for the server's OS user).
func systemAccount(k AccountKey) bool {
	if k.IsRole {
		// MariaDB 10.11 keeps the grants made TO PUBLIC as a role row named PUBLIC; DROP ROLE PUBLIC fails.
		return k.User == "PUBLIC"
	}
	return k.User == "root" || (k.User == "mariadb.sys" && k.Host == "localhost") || (k.User == "mysql" && k.Host == "localhost")
}

// checkUserName refuses names that MariaDB would store differently from what was meant, or that could not be
// printed safely: control characters (newlines, NUL), invalid UTF-8, leading or trailing spaces (CHAR columns
// drop trailing spaces), names longer than MariaDB allows. Quotes, backquotes, backslashes, % and _ are fine:
// QuoteIdent carries them exactly.
func checkUserName(what, s string, maxLen int) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrBadName, what)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrBadName, what, s)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%w: %s %q has a control character", ErrBadName, what, s)
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("%w: %s %q starts or ends with a space", ErrBadName, what, s)
	case utf8.RuneCountInString(s) > maxLen:
		return fmt.Errorf("%w: %s %q is longer than %d characters", ErrBadName, what, truncate(s, 40), maxLen)
	}
	return nil
}

// checkHost accepts host names, IP addresses and netmasks, with the wildcards % and _: letters, digits and
// . - _ : % /. Anything else (quotes, backslashes, spaces) is refused: MariaDB matches hosts as patterns, and
// some statements (SET DEFAULT ROLE in 10.11) mishandle escaped patterns.
func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("%w: empty host (write %% for any host)", ErrBadName)
	}
	if len(h) > MaxHostNameLen {
		return fmt.Errorf("%w: host %q is longer than %d characters", ErrBadName, truncate(h, 40), MaxHostNameLen)
	}
	for _, r := range h {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".-_:%/", r))) {
			return fmt.Errorf("%w: host %q: %q is not allowed (letters, digits and . - _ : %% / only)", ErrBadName, h, r)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
