package dbstate

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/evenkeel/evenkeel/internal/safetext"
)

// Kinds of GrantChange.
const (
	ChangeCreate      = "create"
	ChangeAlter       = "alter"
	ChangeGrant       = "grant"
	ChangeRevoke      = "revoke"
	ChangeDefaultRole = "default-role"
	ChangeDrop        = "drop"
)

// Ranks order the statements so that each finds what it needs: accounts exist before they get grants, roles
// are granted before they become default roles, drops come last. A plan runs rank by rank and waits for
// replication between ranks.
const (
	rankCreate = iota
	rankAlter
	rankPrivileges
	rankRoles
	rankDefaultRole
	rankDrop
	numRanks
)

// GrantChange is one statement that moves an account towards the desired state. SQL is the statement as it
// may be printed: authentication strings (password hashes, ed25519 keys) are replaced by '<redacted>'. The
// statement that runs is kept unexported, so it reaches neither JSON nor fmt.
type GrantChange struct {
	Account AccountKey `json:"-"`
	Who     string     `json:"account"` // 'user'@'host' or role name
	Kind    string     `json:"kind"`
	SQL     string     `json:"sql"`
	rank    int
	stmt    string
	secrets []string // to scrub from server errors
}

// Statement is the statement to run. It contains password hashes: never print it.
func (c GrantChange) Statement() string { return c.stmt }

// String is the redacted statement.
func (c GrantChange) String() string { return c.SQL }

// GrantDiff is the difference between a desired and an actual state.
type GrantDiff struct {
	Changes []GrantChange
	// Kept are the accounts that prune would have dropped but does not (system and protected accounts).
	Kept []string
	// Warnings are changes worth a second look: prune dropping an account that can replicate (REPLICATION
	// SLAVE on *.*), which stops every replica that connects with it at its next reconnect.
	Warnings []string
}

// DiffGrants is pure: the statements that turn actual into desired, in the order they must run. It refuses
// (ErrOwnAccount) to change or drop actual.Self, the account dbstate is logged in as; the roles that MariaDB
// grants WITH ADMIN OPTION to the creator of a role are ignored on that account. With desired.Prune, accounts
// absent from desired are dropped, except system accounts (root, mariadb.sys, mysql@localhost) and
// desired.Protect.
func DiffGrants(desired, actual *GrantState) (*GrantDiff, error) {
	d := &GrantDiff{}
	for _, k := range desired.sortedKeys() {
		want := desired.Accounts[k]
		have := actual.Accounts[k]
		var cs []GrantChange
		var err error
		if have == nil {
			cs, err = createAccount(want)
		} else {
			if k == actual.Self {
				have = withoutCreatorRoles(have, want)
			}
			cs, err = alterAccount(want, have)
		}
		if err != nil {
			return nil, err
		}
		if len(cs) > 0 && !k.IsRole && k == actual.Self {
			return nil, fmt.Errorf("%w %s: the desired state differs from it (%s); change it by hand or connect as another account",
				ErrOwnAccount, k, cs[0].SQL)
		}
		d.Changes = append(d.Changes, cs...)
	}
	if desired.Prune {
		for _, k := range actual.sortedKeys() {
			if desired.Accounts[k] != nil {
				continue
			}
			switch {
			case desired.Protect[k]:
				d.Kept = append(d.Kept, printable(k.String())+" (protected)")
				continue
			case !k.IsRole && k == actual.Self:
				return nil, fmt.Errorf("%w %s: prune would drop it; list it in the file or under protect", ErrOwnAccount, k)
			case systemAccount(k):
				d.Kept = append(d.Kept, printable(k.String())+" (system account)")
				continue
			}
			if replicationAccount(actual.Accounts[k]) {
				d.Warnings = append(d.Warnings, fmt.Sprintf("prune drops %s, which has REPLICATION SLAVE: a replica that connects with it "+
					"stops at its next reconnect; list it in the file or under protect to keep it", printable(k.String())))
			}
			c, err := dropAccount(k)
			if err != nil {
				// A name from the server that cannot be quoted safely (invalid UTF-8, NUL) is left alone.
				d.Kept = append(d.Kept, printable(k.String())+" (its name cannot be quoted safely: drop it by hand)")
				continue
			}
			d.Changes = append(d.Changes, c)
		}
	}
	sort.SliceStable(d.Changes, func(i, j int) bool { return d.Changes[i].rank < d.Changes[j].rank })
	return d, nil
}

// replicationAccount says whether an account may connect as a replica (REPLICATION SLAVE on *.*).
func replicationAccount(a *AccountState) bool {
	if a == nil || a.Key.IsRole {
		return false
	}
	pr, _ := canonicalPriv("REPLICATION SLAVE")
	g := a.Grants[Object{DB: "*", Table: "*"}]
	return g != nil && g.Mask&(1<<pr.bit) != 0
}

// withoutCreatorRoles drops, from the own account's actual state, the admin-option role rows that want does not
// list: MariaDB adds one for every role the account creates.
func withoutCreatorRoles(have, want *AccountState) *AccountState {
	cp := *have
	cp.Roles = map[string]bool{}
	for r, admin := range have.Roles {
		if _, listed := want.Roles[r]; admin && !listed {
			continue
		}
		cp.Roles[r] = admin
	}
	return &cp
}

// builder builds one change, failing on the first name that cannot be quoted.
type builder struct {
	k    AccountKey
	acct string
	err  error
	out  []GrantChange
}

func newBuilder(k AccountKey) *builder {
	b := &builder{k: k}
	b.acct, b.err = k.sql()
	return b
}

func (b *builder) add(kind string, rank int, stmt, redacted string, secrets ...string) {
	if b.err != nil {
		return
	}
	b.out = append(b.out, GrantChange{Account: b.k, Who: printable(b.k.String()), Kind: kind, rank: rank, stmt: stmt,
		SQL: printable(redacted), secrets: secrets})
}

// printable escapes what a terminal could act on (control and format characters, invalid UTF-8) in a name or
// statement read from a server, so that a plan printed to a terminal or a log shows them instead of acting on
// them. It is the project's one rule for that (safetext.Escape).
func printable(s string) string { return safetext.Escape(s) }

func (b *builder) plain(kind string, rank int, stmt string) { b.add(kind, rank, stmt, stmt) }

func (b *builder) result() ([]GrantChange, error) { return b.out, b.err }

// authClause is IDENTIFIED VIA p1 USING 'x' OR p2 ..., real and redacted.
func authClause(ms []AuthMethod) (real, redacted string, secrets []string, err error) {
	var r, d []string
	for _, m := range ms {
		if !validPlugin(m.Plugin) {
			return "", "", nil, fmt.Errorf("%w: authentication plugin %q", ErrBadName, m.Plugin)
		}
		if m.Plugin == PluginUnixSocket && m.Secret == "" {
			r, d = append(r, m.Plugin), append(d, m.Plugin)
			continue
		}
		q, err := QuoteString(m.Secret)
		if err != nil {
			return "", "", nil, fmt.Errorf("authentication string: %w", ErrInvalidValue) // never show it
		}
		r = append(r, m.Plugin+" USING "+q)
		red := "''"
		if m.Secret != "" {
			red = "'<redacted>'"
			secrets = append(secrets, m.Secret)
		}
		d = append(d, m.Plugin+" USING "+red)
	}
	return "IDENTIFIED VIA " + strings.Join(r, " OR "), "IDENTIFIED VIA " + strings.Join(d, " OR "), secrets, nil
}

func validPlugin(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

func requireClause(r string) string {
	switch r {
	case RequireSSL:
		return "REQUIRE SSL"
	case RequireX509:
		return "REQUIRE X509"
	}
	return "REQUIRE NONE"
}

// limitsClause lists the limits of want that differ from have (all non-zero ones when have is nil).
func limitsClause(want Limits, have *Limits) string {
	var parts []string
	ints := []struct {
		name string
		w    int64
		h    func(*Limits) int64
	}{
		{"MAX_QUERIES_PER_HOUR", want.MaxQueriesPerHour, func(l *Limits) int64 { return l.MaxQueriesPerHour }},
		{"MAX_UPDATES_PER_HOUR", want.MaxUpdatesPerHour, func(l *Limits) int64 { return l.MaxUpdatesPerHour }},
		{"MAX_CONNECTIONS_PER_HOUR", want.MaxConnectionsPerHour, func(l *Limits) int64 { return l.MaxConnectionsPerHour }},
		{"MAX_USER_CONNECTIONS", want.MaxUserConnections, func(l *Limits) int64 { return l.MaxUserConnections }},
	}
	for _, i := range ints {
		if (have == nil && i.w != 0) || (have != nil && i.h(have) != i.w) {
			parts = append(parts, i.name+" "+strconv.FormatInt(i.w, 10))
		}
	}
	w := roundStatementTime(want.MaxStatementTime)
	if (have == nil && w != 0) || (have != nil && roundStatementTime(have.MaxStatementTime) != w) {
		parts = append(parts, "MAX_STATEMENT_TIME "+strconv.FormatFloat(w, 'f', -1, 64))
	}
	if len(parts) == 0 {
		return ""
	}
	return "WITH " + strings.Join(parts, " ")
}

// roundStatementTime rounds to the microseconds the server keeps.
func roundStatementTime(f float64) float64 { return math.Round(f*1e6) / 1e6 }

func createAccount(a *AccountState) ([]GrantChange, error) {
	b := newBuilder(a.Key)
	if a.Key.IsRole {
		b.plain(ChangeCreate, rankCreate, "CREATE ROLE "+b.acct)
	} else {
		real, red, secrets, err := authClause(a.Auth)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.Key, err)
		}
		tail := " " + requireClause(a.Require)
		if l := limitsClause(a.Limits, nil); l != "" {
			tail += " " + l
		}
		b.add(ChangeCreate, rankCreate, "CREATE USER "+b.acct+" "+real+tail, "CREATE USER "+b.acct+" "+red+tail, secrets...)
	}
	empty := &AccountState{Key: a.Key, Auth: a.Auth, Require: a.Require, Limits: a.Limits, Roles: map[string]bool{}, Grants: map[Object]*Privs{}}
	b.grantsAndRoles(a, empty)
	return b.result()
}

func alterAccount(want, have *AccountState) ([]GrantChange, error) {
	b := newBuilder(want.Key)
	if !want.Key.IsRole {
		var parts, redParts, secrets []string
		if !slices.Equal(want.Auth, have.Auth) {
			real, red, s, err := authClause(want.Auth)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", want.Key, err)
			}
			parts, redParts, secrets = append(parts, real), append(redParts, red), s
		}
		if want.Require != have.Require {
			parts, redParts = append(parts, requireClause(want.Require)), append(redParts, requireClause(want.Require))
		}
		if l := limitsClause(want.Limits, &have.Limits); l != "" {
			parts, redParts = append(parts, l), append(redParts, l)
		}
		if len(parts) > 0 {
			b.add(ChangeAlter, rankAlter, "ALTER USER "+b.acct+" "+strings.Join(parts, " "),
				"ALTER USER "+b.acct+" "+strings.Join(redParts, " "), secrets...)
		}
	}
	b.grantsAndRoles(want, have)
	return b.result()
}

func dropAccount(k AccountKey) (GrantChange, error) {
	b := newBuilder(k)
	if k.IsRole {
		b.plain(ChangeDrop, rankDrop, "DROP ROLE "+b.acct)
	} else {
		b.plain(ChangeDrop, rankDrop, "DROP USER "+b.acct)
	}
	cs, err := b.result()
	if err != nil {
		return GrantChange{}, err
	}
	return cs[0], nil
}

// grantsAndRoles adds the GRANT and REVOKE statements for privileges and roles, and SET DEFAULT ROLE.
func (b *builder) grantsAndRoles(want, have *AccountState) {
	objs := map[Object]bool{}
	for o := range want.Grants {
		objs[o] = true
	}
	for o := range have.Grants {
		objs[o] = true
	}
	keys := make(map[Object]*Privs, len(objs))
	for o := range objs {
		keys[o] = nil
	}
	for _, o := range sortedObjects(keys) {
		w, h := want.Grants[o], have.Grants[o]
		if w == nil {
			w = &Privs{}
		}
		if h == nil {
			h = &Privs{}
		}
		b.privileges(o, w, h)
	}
	roles := map[string]bool{}
	for r := range want.Roles {
		roles[r] = true
	}
	for r := range have.Roles {
		roles[r] = true
	}
	names := make([]string, 0, len(roles))
	for r := range roles {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, r := range names {
		wAdmin, wOK := want.Roles[r]
		hAdmin, hOK := have.Roles[r]
		role, err := QuoteIdent(r)
		if err != nil {
			b.err = fmt.Errorf("%w: role %q: %w", ErrBadName, r, err)
			return
		}
		switch {
		case wOK && !hOK:
			s := "GRANT " + role + " TO " + b.acct
			if wAdmin {
				s += " WITH ADMIN OPTION"
			}
			b.plain(ChangeGrant, rankRoles, s)
		case !wOK && hOK:
			b.plain(ChangeRevoke, rankRoles, "REVOKE "+role+" FROM "+b.acct)
		case wAdmin && !hAdmin:
			b.plain(ChangeGrant, rankRoles, "GRANT "+role+" TO "+b.acct+" WITH ADMIN OPTION")
		case !wAdmin && hAdmin:
			b.plain(ChangeRevoke, rankRoles, "REVOKE ADMIN OPTION FOR "+role+" FROM "+b.acct)
		}
	}
	if !want.Key.IsRole && want.DefaultRole != have.DefaultRole {
		r := "NONE"
		if want.DefaultRole != "" {
			var err error
			if r, err = QuoteIdent(want.DefaultRole); err != nil {
				b.err = fmt.Errorf("%w: role %q: %w", ErrBadName, want.DefaultRole, err)
				return
			}
		}
		b.plain(ChangeDefaultRole, rankDefaultRole, "SET DEFAULT ROLE "+r+" FOR "+b.acct)
	}
}

// privileges adds what it takes to go from h to w on one object: a GRANT of what is missing, a REVOKE of what
// is too much, and the grant option.
func (b *builder) privileges(o Object, w, h *Privs) {
	if b.err != nil {
		return
	}
	obj, err := o.sql()
	if err != nil {
		b.err = fmt.Errorf("%w: %s on %s: %w", ErrBadName, b.k, o, err)
		return
	}
	add := &Privs{Mask: w.Mask &^ h.Mask, Columns: map[string]uint64{}}
	del := &Privs{Mask: h.Mask &^ w.Mask, Columns: map[string]uint64{}}
	for c, m := range w.Columns {
		if x := m &^ h.Columns[c]; x != 0 {
			add.Columns[c] = x
		}
	}
	for c, m := range h.Columns {
		if x := m &^ w.Columns[c]; x != 0 {
			del.Columns[c] = x
		}
	}
	if !add.empty() || (w.GrantOption && !h.GrantOption) {
		list, err := privList(add)
		if err != nil {
			b.err = err
			return
		}
		s := "GRANT " + list + " ON " + obj + " TO " + b.acct
		if w.GrantOption && !h.GrantOption {
			s += " WITH GRANT OPTION"
		}
		b.plain(ChangeGrant, rankPrivileges, s)
	}
	if !del.empty() {
		list, err := privList(del)
		if err != nil {
			b.err = err
			return
		}
		b.plain(ChangeRevoke, rankPrivileges, "REVOKE "+list+" ON "+obj+" FROM "+b.acct)
	}
	if h.GrantOption && !w.GrantOption {
		b.plain(ChangeRevoke, rankPrivileges, "REVOKE GRANT OPTION ON "+obj+" FROM "+b.acct)
	}
}

// privList writes "SELECT, INSERT, UPDATE (`a`, `b`)"; USAGE when empty.
func privList(p *Privs) (string, error) {
	cols, err := columnPrivs(p)
	if err != nil {
		return "", err
	}
	parts := append(privNames(p.Mask), cols...)
	if len(parts) == 0 {
		return "USAGE", nil
	}
	return strings.Join(parts, ", "), nil
}

// columnPrivs writes the column privileges of p, one entry per privilege: "SELECT (`a`, `b`)".
func columnPrivs(p *Privs) ([]string, error) {
	cols := make([]string, 0, len(p.Columns))
	for c := range p.Columns {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	var parts []string
	for _, pr := range privileges {
		if !pr.column {
			continue
		}
		var names []string
		for _, c := range cols {
			if p.Columns[c]&(1<<pr.bit) != 0 {
				q, err := QuoteIdent(c)
				if err != nil {
					return nil, fmt.Errorf("%w: column %q: %w", ErrBadName, c, err)
				}
				names = append(names, q)
			}
		}
		if len(names) > 0 {
			parts = append(parts, pr.name+" ("+strings.Join(names, ", ")+")")
		}
	}
	return parts, nil
}
