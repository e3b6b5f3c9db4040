package dbstate

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // mysql_native_password is SHA1(SHA1(password)); dbstate computes it, it does not choose it
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"filippo.io/edwards25519"
	"go.yaml.in/yaml/v3"
)

// DesiredGrants is a desired-state file of users, roles and grants, as written. It is self-contained: it names
// the files that hold passwords, and the caller decides how a path is read (see Normalize). Everything an
// account has that the file does not say is removed: a user without limits gets its limits reset, a grant not
// listed is revoked. Accounts that the file does not list are left alone unless Prune is set.
type DesiredGrants struct {
	// Prune drops accounts (users and roles) that the file does not list. Default false. root (any host),
	// mariadb.sys@localhost, mysql@localhost, dbstate's own account and the Protect accounts are never dropped.
	Prune bool `yaml:"prune,omitempty" json:"prune,omitempty"`
	// Protect lists accounts that are never dropped and never changed unless listed: "user@host", or a role name.
	Protect []string      `yaml:"protect,omitempty" json:"protect,omitempty"`
	Roles   []DesiredRole `yaml:"roles,omitempty" json:"roles,omitempty"`
	Users   []DesiredUser `yaml:"users,omitempty" json:"users,omitempty"`
}

// DesiredRole is one role.
type DesiredRole struct {
	Name string `yaml:"name" json:"name"`
	// Roles are roles granted to this role; AdminRoles the ones granted WITH ADMIN OPTION.
	Roles      []string       `yaml:"roles,omitempty" json:"roles,omitempty"`
	AdminRoles []string       `yaml:"admin_roles,omitempty" json:"admin_roles,omitempty"`
	Grants     []DesiredGrant `yaml:"grants,omitempty" json:"grants,omitempty"`
}

// DesiredUser is one user account, name@host.
type DesiredUser struct {
	Name string      `yaml:"name" json:"name"`
	Host string      `yaml:"host" json:"host"`
	Auth DesiredAuth `yaml:"auth" json:"auth"`
	// Require is none (default), ssl or x509.
	Require string `yaml:"require,omitempty" json:"require,omitempty"`
	Limits  Limits `yaml:"limits,omitempty" json:"limits,omitzero"`
	// Roles are the roles granted to the user; AdminRoles the ones granted WITH ADMIN OPTION.
	Roles      []string `yaml:"roles,omitempty" json:"roles,omitempty"`
	AdminRoles []string `yaml:"admin_roles,omitempty" json:"admin_roles,omitempty"`
	// DefaultRole is the role enabled at login; it must be one of Roles or AdminRoles. Empty means none.
	DefaultRole string         `yaml:"default_role,omitempty" json:"default_role,omitempty"`
	Grants      []DesiredGrant `yaml:"grants,omitempty" json:"grants,omitempty"`
}

// DesiredAuth is how a user logs in: exactly one of the fields, and optionally Or, alternatives tried in order
// (IDENTIFIED VIA a OR b). Passwords are read from files and hashed on the client; plans compare hashes.
type DesiredAuth struct {
	// PasswordFile: mysql_native_password with the password on the file's first line.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// PasswordHash: mysql_native_password with this hash, "*" and 40 hex digits (what PASSWORD('...') returns),
	// or "invalid" (no password matches; mariadb-install-db uses it for root).
	PasswordHash string `yaml:"password_hash,omitempty" json:"password_hash,omitempty"`
	// ED25519PasswordFile: the ed25519 plugin, with the password on the file's first line.
	ED25519PasswordFile string `yaml:"ed25519_password_file,omitempty" json:"ed25519_password_file,omitempty"`
	// ED25519Key: the ed25519 plugin with this public key (base64, 43 characters), what the server stores.
	ED25519Key string `yaml:"ed25519_key,omitempty" json:"ed25519_key,omitempty"`
	// UnixSocket: the unix_socket plugin (the OS user of the client must be the account's name).
	UnixSocket bool `yaml:"unix_socket,omitempty" json:"unix_socket,omitempty"`
	// None: no password at all.
	None bool          `yaml:"none,omitempty" json:"none,omitempty"`
	Or   []DesiredAuth `yaml:"or,omitempty" json:"or,omitempty"`
}

// DesiredGrant is privileges on one object.
type DesiredGrant struct {
	// Privileges as GRANT writes them: SELECT, "CREATE TEMPORARY TABLES", "ALL PRIVILEGES", and with columns
	// "SELECT (id, name)" (table objects only). Case and aliases (REPLICATION CLIENT, READ ONLY ADMIN) do not
	// matter; USAGE means nothing.
	Privileges []string `yaml:"privileges,flow" json:"privileges"`
	// On is *.*, db.* or db.table. Backquote names with dots or spaces: `my.db`.*. In database names % and _ are
	// wildcards; write \_ for a literal underscore.
	On              string `yaml:"on" json:"on"`
	WithGrantOption bool   `yaml:"with_grant_option,omitempty" json:"with_grant_option,omitempty"`
}

// maxDesiredSize bounds a desired-state file (20,000 accounts take about 4 MB).
const maxDesiredSize = 64 << 20

// ReadDesiredGrants reads a desired-state file from r (at most 64 MiB: a path such as /dev/zero is refused, not
// read forever) and parses it as ParseDesiredGrants does.
func ReadDesiredGrants(r io.Reader) (*DesiredGrants, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDesiredSize+1))
	if err != nil {
		return nil, err
	}
	return ParseDesiredGrants(data)
}

// ParseDesiredGrants decodes a desired-state file. Unknown keys, several YAML documents and structural errors
// (see Validate) are refused with ErrDesiredGrants.
func ParseDesiredGrants(data []byte) (*DesiredGrants, error) {
	if len(data) > maxDesiredSize {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrDesiredGrants, maxDesiredSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	d := &DesiredGrants{}
	if err := dec.Decode(d); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %w", ErrDesiredGrants, err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: more than one YAML document", ErrDesiredGrants)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// Validate checks the file without reading password files: names, hosts, privileges (against the privilege
// list of MariaDB 10.11), objects, roles that are granted but not declared, duplicate accounts.
func (d *DesiredGrants) Validate() error {
	_, err := d.normalize(DefaultServerPrivileges(), nil)
	return err
}

// Normalize builds the desired GrantState against a server's privilege list: ALL PRIVILEGES is expanded to what
// it means there, names are put in the server's form (host names in lower case), and passwords are read with
// readFile (the path as written in the file) and hashed. Secrets never appear in errors.
func (d *DesiredGrants) Normalize(sp ServerPrivileges, readFile func(path string) (string, error)) (*GrantState, error) {
	if readFile == nil {
		return nil, fmt.Errorf("%w: no way to read password files", ErrDesiredGrants)
	}
	return d.normalize(sp, readFile)
}

// normalize is Normalize; with readFile nil, password files are not read (their hashes stay empty).
func (d *DesiredGrants) normalize(sp ServerPrivileges, readFile func(string) (string, error)) (*GrantState, error) {
	st := &GrantState{Accounts: map[AccountKey]*AccountState{}, Privileges: sp, Prune: d.Prune, Protect: map[AccountKey]bool{}}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrDesiredGrants}, args...)...)
	}
	for _, p := range d.Protect {
		k, err := parseAccountName(p)
		if err != nil {
			return nil, bad("protect %q: %w", p, err)
		}
		st.Protect[k] = true
	}
	declared := map[string]bool{}
	for _, r := range d.Roles {
		declared[r.Name] = true
	}
	roleSet := func(who string, roles, admin []string) (map[string]bool, error) {
		out := map[string]bool{}
		for _, list := range []struct {
			names []string
			admin bool
		}{{roles, false}, {admin, true}} {
			for _, r := range list.names {
				if err := checkUserName("role name", r, MaxUserNameLen); err != nil {
					return nil, bad("%s: %w", who, err)
				}
				if !declared[r] {
					return nil, bad("%s: role %q is not declared under roles", who, r)
				}
				if _, dup := out[r]; dup {
					return nil, bad("%s: role %q listed twice", who, r)
				}
				out[r] = list.admin
			}
		}
		return out, nil
	}
	for _, r := range d.Roles {
		who := fmt.Sprintf("role %q", r.Name)
		if err := checkUserName("role name", r.Name, MaxUserNameLen); err != nil {
			return nil, bad("%w", err)
		}
		if strings.EqualFold(r.Name, "NONE") || strings.EqualFold(r.Name, "PUBLIC") {
			return nil, bad("%s: the name is reserved", who)
		}
		k := AccountKey{User: r.Name, IsRole: true}
		if st.Accounts[k] != nil {
			return nil, bad("%s declared twice", who)
		}
		a := &AccountState{Key: k, Grants: map[Object]*Privs{}}
		var err error
		if a.Roles, err = roleSet(who, r.Roles, r.AdminRoles); err != nil {
			return nil, err
		}
		if _, self := a.Roles[r.Name]; self {
			return nil, bad("%s is granted to itself", who)
		}
		if err := addDesiredGrants(a, r.Grants, sp, who, &st.Warnings); err != nil {
			return nil, err
		}
		st.Accounts[k] = a
	}
	if err := roleCycle(st); err != nil {
		return nil, bad("%w", err)
	}
	for _, u := range d.Users {
		if err := checkUserName("user name", u.Name, MaxUserNameLen); err != nil {
			return nil, bad("%w", err)
		}
		if err := checkHost(u.Host); err != nil {
			return nil, bad("user %q: %w", u.Name, err)
		}
		k := AccountKey{User: u.Name, Host: strings.ToLower(u.Host)}
		who := k.String()
		if st.Accounts[k] != nil {
			return nil, bad("%s listed twice", who)
		}
		a := &AccountState{Key: k, Grants: map[Object]*Privs{}, Limits: u.Limits}
		var err error
		if a.Auth, err = desiredAuth(u.Auth, readFile, true); err != nil {
			return nil, bad("%s: auth: %w", who, err)
		}
		switch strings.ToLower(u.Require) {
		case "", RequireNone:
			a.Require = RequireNone
		case RequireSSL, RequireX509:
			a.Require = strings.ToLower(u.Require)
		default:
			return nil, bad("%s: require %q: want none, ssl or x509", who, u.Require)
		}
		if err := checkLimits(u.Limits); err != nil {
			return nil, bad("%s: %w", who, err)
		}
		if a.Roles, err = roleSet(who, u.Roles, u.AdminRoles); err != nil {
			return nil, err
		}
		if u.DefaultRole != "" {
			if _, ok := a.Roles[u.DefaultRole]; !ok {
				return nil, bad("%s: default_role %q is not one of its roles", who, u.DefaultRole)
			}
			if err := checkDefaultRoleNames(u.Name, u.DefaultRole); err != nil {
				return nil, bad("%s: %w", who, err)
			}
			a.DefaultRole = u.DefaultRole
		}
		if err := addDesiredGrants(a, u.Grants, sp, who, &st.Warnings); err != nil {
			return nil, err
		}
		st.Accounts[k] = a
	}
	return st, nil
}

// roleCycle refuses roles granted to each other in a cycle (r1 to r2 and r2 to r1, or longer): MariaDB refuses
// the GRANT that closes it ("Cannot grant role"), so an apply would stop midway.
func roleCycle(st *GrantState) error {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(r string) error
	visit = func(r string) error {
		switch state[r] {
		case active:
			k := slices.Index(path, r)
			return fmt.Errorf("roles granted in a cycle: %s", strings.Join(append(path[k:], r), " -> "))
		case done:
			return nil
		}
		state[r] = active
		path = append(path, r)
		a := st.Accounts[AccountKey{User: r, IsRole: true}]
		if a != nil {
			for _, sub := range slices.Sorted(maps.Keys(a.Roles)) {
				if err := visit(sub); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[r] = done
		return nil
	}
	for _, k := range st.sortedKeys() {
		if k.IsRole {
			if err := visit(k.User); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkLimits(l Limits) error {
	for _, v := range []struct {
		name string
		n    int64
	}{{"max_queries_per_hour", l.MaxQueriesPerHour}, {"max_updates_per_hour", l.MaxUpdatesPerHour},
		{"max_connections_per_hour", l.MaxConnectionsPerHour}, {"max_user_connections", l.MaxUserConnections}} {
		if v.n < 0 || v.n > math.MaxUint32 {
			return fmt.Errorf("limits: %s %d: want 0 (unlimited) to %d", v.name, v.n, uint32(math.MaxUint32))
		}
	}
	if l.MaxStatementTime < 0 || math.IsNaN(l.MaxStatementTime) || l.MaxStatementTime > 1e9 {
		return fmt.Errorf("limits: max_statement_time %v: want seconds, 0 for unlimited", l.MaxStatementTime)
	}
	return nil
}

// desiredAuth turns one auth entry (and its alternatives) into methods. readFile nil skips reading files.
func desiredAuth(a DesiredAuth, readFile func(string) (string, error), top bool) ([]AuthMethod, error) {
	var m []AuthMethod
	n := 0
	set := func(meth AuthMethod) { n++; m = append(m, meth) }
	readPw := func(path string) (string, error) {
		if readFile == nil {
			return "", nil
		}
		pw, err := readFile(path)
		if err != nil {
			return "", fmt.Errorf("password file %s: %w", path, err)
		}
		if pw == "" {
			return "", fmt.Errorf("password file %s is empty (write none: true for an account without a password)", path)
		}
		return pw, nil
	}
	if a.PasswordFile != "" {
		pw, err := readPw(a.PasswordFile)
		if err != nil {
			return nil, err
		}
		h := ""
		if pw != "" {
			h = NativePasswordHash(pw)
		}
		set(AuthMethod{Plugin: PluginNative, Secret: h})
	}
	if a.PasswordHash != "" {
		h, err := checkNativeHash(a.PasswordHash)
		if err != nil {
			return nil, err
		}
		set(AuthMethod{Plugin: PluginNative, Secret: h})
	}
	if a.ED25519PasswordFile != "" {
		pw, err := readPw(a.ED25519PasswordFile)
		if err != nil {
			return nil, err
		}
		k := ""
		if pw != "" {
			k = ED25519PublicKey(pw)
		}
		set(AuthMethod{Plugin: PluginED25519, Secret: k})
	}
	if a.ED25519Key != "" {
		if b, err := base64.RawStdEncoding.DecodeString(a.ED25519Key); err != nil || len(b) != 32 {
			return nil, errors.New("ed25519_key: want the 43-character base64 public key the server stores")
		}
		set(AuthMethod{Plugin: PluginED25519, Secret: a.ED25519Key})
	}
	if a.UnixSocket {
		set(AuthMethod{Plugin: PluginUnixSocket})
	}
	if a.None {
		set(AuthMethod{Plugin: PluginNative})
	}
	if n != 1 {
		return nil, fmt.Errorf("want exactly one of password_file, password_hash, ed25519_password_file, ed25519_key, unix_socket, none (got %d)", n)
	}
	if len(a.Or) > 0 && !top {
		return nil, errors.New("or: alternatives cannot have alternatives")
	}
	for _, alt := range a.Or {
		more, err := desiredAuth(alt, readFile, false)
		if err != nil {
			return nil, fmt.Errorf("or: %w", err)
		}
		m = append(m, more...)
	}
	return m, nil
}

func checkNativeHash(h string) (string, error) {
	if h == "invalid" {
		return h, nil
	}
	if len(h) == 41 && h[0] == '*' {
		if _, err := hex.DecodeString(h[1:]); err == nil {
			return strings.ToUpper(h), nil
		}
	}
	return "", errors.New(`password_hash: want "*" and 40 hex digits (PASSWORD('...')), or "invalid"`)
}

// NativePasswordHash is the mysql_native_password hash of a password: "*" and the upper-case hex of
// SHA1(SHA1(password)), what PASSWORD() returns.
func NativePasswordHash(pw string) string {
	a := sha1.Sum([]byte(pw)) //nolint:gosec // the plugin's definition
	b := sha1.Sum(a[:])       //nolint:gosec
	return "*" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// ED25519PublicKey is what MariaDB's ed25519 plugin stores for a password: the Ed25519 public key whose secret
// scalar is the clamped first half of SHA-512(password), in base64 without padding (what
// PASSWORD('...') returns under the plugin, checked against a real server by the tests).
func ED25519PublicKey(pw string) string {
	h := sha512.Sum512([]byte(pw))
	s, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic(err) // 32 bytes always fit
	}
	return base64.RawStdEncoding.EncodeToString(new(edwards25519.Point).ScalarBaseMult(s).Bytes())
}

// parseAccountName reads "user@host" (split at the last @) or a bare role name.
func parseAccountName(s string) (AccountKey, error) {
	k := strings.LastIndexByte(s, '@')
	if k < 0 {
		if err := checkUserName("role name", s, MaxUserNameLen); err != nil {
			return AccountKey{}, err
		}
		return AccountKey{User: s, IsRole: true}, nil
	}
	u, h := s[:k], s[k+1:]
	if err := checkUserName("user name", u, MaxUserNameLen); err != nil {
		return AccountKey{}, err
	}
	if err := checkHost(h); err != nil {
		return AccountKey{}, err
	}
	return AccountKey{User: u, Host: strings.ToLower(h)}, nil
}

// addDesiredGrants merges grants into a.Grants (several entries on one object add up).
func addDesiredGrants(a *AccountState, gs []DesiredGrant, sp ServerPrivileges, who string, warnings *[]string) error {
	for _, g := range gs {
		o, err := ParseObject(g.On)
		if err != nil {
			return fmt.Errorf("%w: %s: on %q: %w", ErrDesiredGrants, who, g.On, err)
		}
		if !o.IsGlobal() && hasUnescapedUnderscore(o.DB) {
			*warnings = append(*warnings, fmt.Sprintf("%s: on %s: _ is a wildcard in a database name (it matches any character); write \\_ for a literal underscore", who, o))
		}
		p := a.Grants[o]
		if p == nil {
			p = &Privs{}
		}
		p.GrantOption = p.GrantOption || g.WithGrantOption
		if len(g.Privileges) == 0 {
			return fmt.Errorf("%w: %s: on %s: no privileges (write USAGE for none)", ErrDesiredGrants, who, o)
		}
		for _, ps := range g.Privileges {
			if err := addPrivilege(p, o, ps, sp); err != nil {
				return fmt.Errorf("%w: %s: on %s: %w", ErrDesiredGrants, who, o, err)
			}
		}
		a.Grants[o] = p
	}
	for o, p := range a.Grants {
		if p.empty() {
			delete(a.Grants, o)
		}
	}
	return nil
}

func hasUnescapedUnderscore(db string) bool {
	for k := 0; k < len(db); k++ {
		switch db[k] {
		case '\\':
			k++
		case '_':
			return true
		}
	}
	return false
}

// addPrivilege adds one privilege as written ("SELECT", "ALL PRIVILEGES", "SELECT (a, `b c`)") to p.
func addPrivilege(p *Privs, o Object, s string, sp ServerPrivileges) error {
	name, cols, hasCols := strings.Cut(s, "(")
	name = strings.ToUpper(strings.Join(strings.Fields(name), " "))
	if hasCols {
		if o.IsGlobal() || o.Table == "*" {
			return fmt.Errorf("privilege %q: column lists need a table (db.table)", s)
		}
		rest, ok := strings.CutSuffix(strings.TrimSpace(cols), ")")
		if !ok {
			return fmt.Errorf("privilege %q: want NAME (col, ...)", s)
		}
		pr, ok := canonicalPriv(name)
		if !ok || !pr.column {
			return fmt.Errorf("privilege %q: only SELECT, INSERT, UPDATE and REFERENCES take columns", s)
		}
		names, err := splitColumns(rest)
		if err != nil {
			return fmt.Errorf("privilege %q: %w", s, err)
		}
		if p.Columns == nil {
			p.Columns = map[string]uint64{}
		}
		for _, c := range names {
			p.Columns[c] |= 1 << pr.bit
		}
		return nil
	}
	switch name {
	case "USAGE":
		return nil
	case "ALL", "ALL PRIVILEGES":
		p.Mask |= sp.levelMask(o)
		return nil
	case "GRANT OPTION":
		p.GrantOption = true
		return nil
	}
	pr, ok := canonicalPriv(name)
	if !ok {
		return fmt.Errorf("unknown privilege %q", s)
	}
	if sp.Global&(1<<pr.bit) == 0 {
		return fmt.Errorf("privilege %s is not known to server version %s", pr.name, sp.Version)
	}
	if sp.levelMask(o)&(1<<pr.bit) == 0 {
		return fmt.Errorf("privilege %s cannot be granted on %s", pr.name, levelName(o))
	}
	p.Mask |= 1 << pr.bit
	return nil
}

func levelName(o Object) string {
	switch {
	case o.IsGlobal():
		return "*.*"
	case o.Table == "*":
		return "a database (db.*)"
	}
	return "a table (db.table)"
}

// splitColumns reads "a, `b c`, d".
func splitColumns(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	rest := strings.TrimSpace(s)
	for {
		var name string
		var err error
		name, rest, err = readName(rest, ",")
		if err != nil {
			return nil, err
		}
		if err := checkObjectName("column", name); err != nil {
			return nil, err
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return out, nil
		}
		rest = strings.TrimSpace(rest[1:]) // the comma
	}
}

// readName reads a bare or backquoted name at the start of s, up to one of the stop characters (not included).
func readName(s, stop string) (name, rest string, err error) {
	if strings.HasPrefix(s, "`") {
		var b strings.Builder
		for k := 1; k < len(s); k++ {
			if s[k] == '`' {
				if k+1 < len(s) && s[k+1] == '`' {
					b.WriteByte('`')
					k++
					continue
				}
				return b.String(), strings.TrimLeft(s[k+1:], " "), nil
			}
			b.WriteByte(s[k])
		}
		return "", "", errors.New("unterminated backquote")
	}
	end := strings.IndexAny(s, stop)
	if end < 0 {
		end = len(s)
	}
	name = strings.TrimSpace(s[:end])
	if strings.ContainsAny(name, "`'\" ") {
		return "", "", fmt.Errorf("name %q: backquote names with quotes or spaces", name)
	}
	return name, s[end:], nil
}

// ParseObject reads what a grant is on: *.*, db.* or db.table, names bare or backquoted.
func ParseObject(s string) (Object, error) {
	s = strings.TrimSpace(s)
	if s == "*.*" {
		return Object{DB: "*", Table: "*"}, nil
	}
	db, rest, err := readName(s, ".")
	if err != nil {
		return Object{}, err
	}
	if !strings.HasPrefix(rest, ".") {
		return Object{}, errors.New("want *.*, db.* or db.table")
	}
	rest = strings.TrimSpace(rest[1:])
	if db == "*" {
		return Object{}, errors.New("want *.*, db.* or db.table")
	}
	if err := checkObjectName("database", db); err != nil {
		return Object{}, err
	}
	if rest == "*" {
		return Object{DB: db, Table: "*"}, nil
	}
	table, tail, err := readName(rest, "")
	if err != nil {
		return Object{}, err
	}
	if strings.TrimSpace(tail) != "" {
		return Object{}, fmt.Errorf("unexpected %q after the table name", tail)
	}
	if err := checkObjectName("table", table); err != nil {
		return Object{}, err
	}
	return Object{DB: db, Table: table}, nil
}

// checkObjectName refuses database, table and column names MariaDB would not store as written.
func checkObjectName(what, s string) error {
	if s == "*" {
		return fmt.Errorf("%w: %s name *", ErrBadName, what)
	}
	return checkUserName(what+" name", s, MaxObjectNameLen)
}

// checkDefaultRoleNames refuses a default role when the user or role name has a single quote or a backslash:
// MariaDB 10.11 writes SET DEFAULT ROLE to the binary log with both names in single quotes without escaping
// them, and every replica then stops on a syntax error (seen on 10.11.19).
//
// A replica also stopped ("Invalid role specification") on SET DEFAULT ROLE for a 128-character user name, so
// default roles are refused for user names longer than 64 characters.
func checkDefaultRoleNames(user, role string) error {
	if utf8.RuneCountInString(user) > 64 {
		return fmt.Errorf("%w: default_role: user name longer than 64 characters: replicas fail on SET DEFAULT ROLE for it", ErrBadName)
	}
	for _, n := range []string{user, role} {
		if strings.ContainsAny(n, `'\`) {
			return fmt.Errorf("%w: default_role: %q has a quote or a backslash, which MariaDB writes to the binary log "+
				"unescaped in SET DEFAULT ROLE (replicas would stop); rename it or drop default_role", ErrBadName, n)
		}
	}
	return nil
}
