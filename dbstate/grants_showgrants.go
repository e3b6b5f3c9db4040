package dbstate

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrShowGrants is returned (wrapped) for a SHOW GRANTS line dbstate cannot read.
var ErrShowGrants = errors.New("cannot parse SHOW GRANTS line")

// Kinds of SHOW GRANTS lines.
const (
	LinePrivileges  = "privileges"   // GRANT SELECT ON `db`.* TO `u`@`h` ...
	LineRole        = "role"         // GRANT `r` TO `u`@`h` [WITH ADMIN OPTION]
	LineDefaultRole = "default-role" // SET DEFAULT ROLE `r` FOR `u`@`h`
	LineProxy       = "proxy"        // GRANT PROXY ON ``@`%` TO ...
	LineRoutine     = "routine"      // GRANT EXECUTE ON PROCEDURE `db`.`p` TO ...
)

// GrantLine is one parsed line of SHOW GRANTS.
type GrantLine struct {
	Kind    string
	Grantee AccountKey // a role when the line names no host
	Object  Object     // LinePrivileges
	Privs   Privs      // LinePrivileges; ALL PRIVILEGES is AllPrivileges, expanded by the reader
	// AllPrivileges: the line said ALL PRIVILEGES (its meaning depends on the server and the object).
	AllPrivileges bool
	Role          string // LineRole, LineDefaultRole ("" for SET DEFAULT ROLE NONE)
	AdminOption   bool
	Auth          []AuthMethod // IDENTIFIED BY PASSWORD / VIA ... on the line, if any
	Require       string       // "" when the line says nothing
	Limits        Limits
	HasLimits     bool
}

// BypassesReadOnly reports whether the line grants, on *.*, what writes through read_only in MariaDB 10.11:
// READ_ONLY ADMIN, or ALL PRIVILEGES (which includes it).
func (g *GrantLine) BypassesReadOnly() bool {
	return g.Kind == LinePrivileges && g.Object.IsGlobal() && (g.AllPrivileges || g.Privs.Mask&(1<<readOnlyAdminBit) != 0)
}

// readOnlyAdminBit is READ_ONLY ADMIN's bit in the access mask.
var readOnlyAdminBit = privIdx.byName["READ_ONLY ADMIN"].bit

type tokKind int

const (
	tWord   tokKind = iota // unquoted: keywords, bare names, numbers
	tIdent                 // `quoted` (backquotes)
	tString                // 'quoted' or "quoted" (a name in old servers' output, or a string)
	tPunct                 // , ( ) . @ *
)

type token struct {
	kind tokKind
	text string // unquoted text
}

func (t token) is(word string) bool { return t.kind == tWord && strings.EqualFold(t.text, word) }

// maxGrantLine bounds one SHOW GRANTS line: column lists can make lines long, but not unboundedly.
const maxGrantLine = 1 << 20

func tokenize(s string) ([]token, error) {
	if len(s) > maxGrantLine {
		return nil, fmt.Errorf("%w: line longer than %d bytes", ErrShowGrants, maxGrantLine)
	}
	var out []token
	for k := 0; k < len(s); {
		c := s[k]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			k++
		case c == '`':
			var b strings.Builder
			k++
			for {
				if k >= len(s) {
					return nil, fmt.Errorf("%w: unterminated backquote", ErrShowGrants)
				}
				if s[k] == '`' {
					if k+1 < len(s) && s[k+1] == '`' {
						b.WriteByte('`')
						k += 2
						continue
					}
					k++
					break
				}
				b.WriteByte(s[k])
				k++
			}
			out = append(out, token{tIdent, b.String()})
		case c == '\'' || c == '"':
			var b strings.Builder
			k++
			for {
				if k >= len(s) {
					return nil, fmt.Errorf("%w: unterminated quote", ErrShowGrants)
				}
				d := s[k]
				if d == c {
					if k+1 < len(s) && s[k+1] == c {
						b.WriteByte(c)
						k += 2
						continue
					}
					k++
					break
				}
				if d == '\\' && k+1 < len(s) {
					b.WriteByte(unescape(s[k+1]))
					k += 2
					continue
				}
				b.WriteByte(d)
				k++
			}
			out = append(out, token{tString, b.String()})
		case strings.IndexByte(",().@*", c) >= 0:
			out = append(out, token{tPunct, string(c)})
			k++
		default:
			j := k
			for j < len(s) && isWordByte(s[j], s[k:j]) {
				j++
			}
			if j == k {
				return nil, fmt.Errorf("%w: unexpected %q", ErrShowGrants, c)
			}
			out = append(out, token{tWord, s[k:j]})
			k = j
		}
	}
	return out, nil
}

// isWordByte: letters, digits and _ $ % - : / and non-ASCII; a '.' only inside a number.
func isWordByte(c byte, sofar string) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	case strings.IndexByte("_$%-:/", c) >= 0:
		return true
	case c == '.':
		return sofar != "" && strings.Trim(sofar, "0123456789") == ""
	}
	return false
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case '0':
		return 0
	case 'Z':
		return 0x1a
	}
	return c
}

type lineParser struct {
	toks []token
	pos  int
	line string
}

func (p *lineParser) peek() (token, bool) {
	if p.pos >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.pos], true
}

func (p *lineParser) next() (token, bool) {
	t, ok := p.peek()
	if ok {
		p.pos++
	}
	return t, ok
}

func (p *lineParser) errf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format+": %q", append(append([]any{ErrShowGrants}, args...), truncate(p.line, 200))...)
}

func (p *lineParser) expectWord(w string) error {
	t, ok := p.next()
	if !ok || !t.is(w) {
		return p.errf("want %s", w)
	}
	return nil
}

func (p *lineParser) acceptWord(w string) bool {
	if t, ok := p.peek(); ok && t.is(w) {
		p.pos++
		return true
	}
	return false
}

func (p *lineParser) acceptPunct(c string) bool {
	if t, ok := p.peek(); ok && t.kind == tPunct && t.text == c {
		p.pos++
		return true
	}
	return false
}

// name reads a name: backquoted, quoted, or a bare word.
func (p *lineParser) name() (string, error) {
	t, ok := p.next()
	if !ok || t.kind == tPunct {
		return "", p.errf("want a name")
	}
	return t.text, nil
}

// account reads user[@host]; no host means a role.
func (p *lineParser) account() (AccountKey, error) {
	u, err := p.name()
	if err != nil {
		return AccountKey{}, err
	}
	if !p.acceptPunct("@") {
		return AccountKey{User: u, IsRole: true}, nil
	}
	h, err := p.name()
	if err != nil {
		return AccountKey{}, err
	}
	return AccountKey{User: u, Host: h}, nil
}

// ParseGrantLine parses one line of SHOW GRANTS, in the quoting of MariaDB 10.11 (backquotes, doubled inside)
// and of older servers (single or double quotes, with backslash escapes or doubled quotes), including role rows
// (GRANT `r` TO ...), SET DEFAULT ROLE rows, PROXY and routine grants, and the IDENTIFIED, REQUIRE and WITH
// clauses.
func ParseGrantLine(line string) (*GrantLine, error) {
	toks, err := tokenize(line)
	if err != nil {
		return nil, err
	}
	p := &lineParser{toks: toks, line: line}
	gl := &GrantLine{}
	if p.acceptWord("SET") {
		if err := p.expectWord("DEFAULT"); err != nil {
			return nil, err
		}
		if err := p.expectWord("ROLE"); err != nil {
			return nil, err
		}
		t, ok := p.next()
		if !ok || t.kind == tPunct || t.text == "" {
			return nil, p.errf("want a role")
		}
		if !(t.kind == tWord && strings.EqualFold(t.text, "NONE")) {
			gl.Role = t.text
		}
		if err := p.expectWord("FOR"); err != nil {
			return nil, err
		}
		if gl.Grantee, err = p.account(); err != nil {
			return nil, err
		}
		gl.Kind = LineDefaultRole
		return gl, p.end()
	}
	if err := p.expectWord("GRANT"); err != nil {
		return nil, err
	}
	// Collect the privilege list (or role) up to ON or TO, outside parentheses.
	start, depth := p.pos, 0
	for {
		t, ok := p.peek()
		if !ok {
			return nil, p.errf("want ON or TO")
		}
		if t.kind == tPunct && t.text == "(" {
			depth++
		} else if t.kind == tPunct && t.text == ")" {
			depth--
		} else if depth == 0 && (t.is("ON") || t.is("TO")) {
			break
		}
		p.pos++
	}
	list := toks[start:p.pos]
	if len(list) == 0 {
		return nil, p.errf("no privileges")
	}
	if p.acceptWord("TO") {
		if len(list) != 1 || list[0].kind == tPunct || list[0].text == "" {
			return nil, p.errf("a role grant names one role")
		}
		gl.Kind, gl.Role = LineRole, list[0].text
		if gl.Grantee, err = p.account(); err != nil {
			return nil, err
		}
		if p.acceptWord("WITH") {
			if err := p.expectWord("ADMIN"); err != nil {
				return nil, err
			}
			if err := p.expectWord("OPTION"); err != nil {
				return nil, err
			}
			gl.AdminOption = true
		}
		return gl, p.end()
	}
	_ = p.expectWord("ON")
	gl.Kind = LinePrivileges
	if len(list) == 1 && list[0].is("PROXY") {
		gl.Kind = LineProxy
		if _, err := p.account(); err != nil {
			return nil, err
		}
	} else {
		if t, ok := p.peek(); ok && (t.is("PROCEDURE") || t.is("FUNCTION") || t.is("PACKAGE")) {
			gl.Kind = LineRoutine
			p.pos++
			p.acceptWord("BODY")
		}
		if gl.Object, err = p.object(); err != nil {
			return nil, err
		}
		if err := parsePrivList(gl, list, p); err != nil {
			return nil, err
		}
	}
	if err := p.expectWord("TO"); err != nil {
		return nil, err
	}
	if gl.Grantee, err = p.account(); err != nil {
		return nil, err
	}
	if err := p.tail(gl); err != nil {
		return nil, err
	}
	return gl, p.end()
}

func (p *lineParser) end() error {
	if t, ok := p.peek(); ok {
		return p.errf("unexpected %q", t.text)
	}
	return nil
}

// object reads *.*, db.*, db.table.
func (p *lineParser) object() (Object, error) {
	part := func() (string, error) {
		t, ok := p.next()
		switch {
		case !ok:
			return "", p.errf("want an object")
		case t.kind == tPunct && t.text == "*":
			return "*", nil
		case t.kind == tPunct:
			return "", p.errf("want an object")
		case t.text == "*":
			// `*` quoted is a database or table named *, not the wildcard: refused rather than confused.
			return "", p.errf("an object named * (quoted) is not managed")
		}
		return t.text, nil
	}
	db, err := part()
	if err != nil {
		return Object{}, err
	}
	if !p.acceptPunct(".") {
		return Object{}, p.errf("want db.table")
	}
	tb, err := part()
	if err != nil {
		return Object{}, err
	}
	if db == "*" && tb != "*" {
		return Object{}, p.errf("want *.*")
	}
	return Object{DB: db, Table: tb}, nil
}

// parsePrivList reads "SELECT, INSERT (`a`, `b`), ALL PRIVILEGES".
func parsePrivList(gl *GrantLine, list []token, p *lineParser) error {
	k := 0
	for k < len(list) {
		var words []string
		for k < len(list) && list[k].kind == tWord {
			words = append(words, list[k].text)
			k++
		}
		if len(words) == 0 {
			return p.errf("want a privilege name")
		}
		name := strings.ToUpper(strings.Join(words, " "))
		var cols []string
		if k < len(list) && list[k].kind == tPunct && list[k].text == "(" {
			k++
			for {
				if k >= len(list) || list[k].kind == tPunct {
					return p.errf("want a column name")
				}
				cols = append(cols, list[k].text)
				k++
				if k < len(list) && list[k].kind == tPunct && list[k].text == "," {
					k++
					continue
				}
				if k < len(list) && list[k].kind == tPunct && list[k].text == ")" {
					k++
					break
				}
				return p.errf("want , or ) in a column list")
			}
		}
		switch {
		case len(cols) > 0:
			pr, ok := canonicalPriv(name)
			if !ok || !pr.column {
				return p.errf("privilege %s cannot take columns", name)
			}
			if gl.Privs.Columns == nil {
				gl.Privs.Columns = map[string]uint64{}
			}
			for _, c := range cols {
				gl.Privs.Columns[c] |= 1 << pr.bit
			}
		case name == "ALL" || name == "ALL PRIVILEGES":
			gl.AllPrivileges = true
		case name == "USAGE":
		case name == "GRANT OPTION":
			gl.Privs.GrantOption = true
		default:
			pr, ok := canonicalPriv(name)
			if !ok {
				return p.errf("unknown privilege %s", name)
			}
			gl.Privs.Mask |= 1 << pr.bit
		}
		if k < len(list) {
			if list[k].kind != tPunct || list[k].text != "," {
				return p.errf("want , between privileges")
			}
			k++
			if k == len(list) {
				return p.errf("trailing comma")
			}
		}
	}
	return nil
}

// tail reads IDENTIFIED ..., REQUIRE ..., WITH ... in any order.
func (p *lineParser) tail(gl *GrantLine) error {
	for {
		switch {
		case p.acceptWord("IDENTIFIED"):
			if err := p.identified(gl); err != nil {
				return err
			}
		case p.acceptWord("REQUIRE"):
			if err := p.require(gl); err != nil {
				return err
			}
		case p.acceptWord("WITH"):
			if err := p.with(gl); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

func (p *lineParser) identified(gl *GrantLine) error {
	if p.acceptWord("BY") {
		if !p.acceptWord("PASSWORD") {
			return p.errf("IDENTIFIED BY without PASSWORD")
		}
		t, ok := p.next()
		if !ok || t.kind != tString {
			return p.errf("want a password hash")
		}
		gl.Auth = append(gl.Auth, AuthMethod{Plugin: PluginNative, Secret: t.text})
		return nil
	}
	if !p.acceptWord("VIA") && !p.acceptWord("WITH") {
		return p.errf("want IDENTIFIED BY PASSWORD or IDENTIFIED VIA")
	}
	for {
		plugin, err := p.name()
		if err != nil {
			return err
		}
		m := AuthMethod{Plugin: plugin}
		if p.acceptWord("USING") || p.acceptWord("AS") {
			t, ok := p.next()
			if !ok || t.kind != tString {
				return p.errf("want an authentication string")
			}
			m.Secret = t.text
		}
		gl.Auth = append(gl.Auth, m)
		if !p.acceptWord("OR") {
			return nil
		}
	}
}

func (p *lineParser) require(gl *GrantLine) error {
	switch {
	case p.acceptWord("NONE"):
		gl.Require = RequireNone
	case p.acceptWord("SSL"):
		gl.Require = RequireSSL
	case p.acceptWord("X509"):
		gl.Require = RequireX509
	default:
		n := 0
		for {
			if !(p.acceptWord("ISSUER") || p.acceptWord("SUBJECT") || p.acceptWord("CIPHER")) {
				break
			}
			if t, ok := p.next(); !ok || t.kind != tString {
				return p.errf("want a string after ISSUER, SUBJECT or CIPHER")
			}
			n++
			p.acceptWord("AND")
		}
		if n == 0 {
			return p.errf("want NONE, SSL, X509, ISSUER, SUBJECT or CIPHER after REQUIRE")
		}
		gl.Require = RequireSpecified
	}
	return nil
}

func (p *lineParser) with(gl *GrantLine) error {
	n := 0
	for {
		t, ok := p.peek()
		if !ok || t.kind != tWord {
			break
		}
		if t.is("GRANT") || t.is("ADMIN") {
			p.pos++
			if err := p.expectWord("OPTION"); err != nil {
				return err
			}
			if t.is("GRANT") {
				gl.Privs.GrantOption = true
			} else {
				gl.AdminOption = true
			}
			n++
			continue
		}
		var dst *int64
		switch strings.ToUpper(t.text) {
		case "MAX_QUERIES_PER_HOUR":
			dst = &gl.Limits.MaxQueriesPerHour
		case "MAX_UPDATES_PER_HOUR":
			dst = &gl.Limits.MaxUpdatesPerHour
		case "MAX_CONNECTIONS_PER_HOUR":
			dst = &gl.Limits.MaxConnectionsPerHour
		case "MAX_USER_CONNECTIONS":
			dst = &gl.Limits.MaxUserConnections
		case "MAX_STATEMENT_TIME":
		default:
			if n == 0 {
				return p.errf("unknown WITH option %s", t.text)
			}
			return nil
		}
		p.pos++
		v, ok := p.next()
		if !ok || v.kind != tWord {
			return p.errf("want a number after %s", t.text)
		}
		if dst == nil {
			f, err := strconv.ParseFloat(v.text, 64)
			if err != nil || f < 0 {
				return p.errf("bad MAX_STATEMENT_TIME %q", v.text)
			}
			gl.Limits.MaxStatementTime = f
		} else {
			i, err := strconv.ParseInt(v.text, 10, 64)
			if err != nil {
				return p.errf("bad %s %q", t.text, v.text)
			}
			*dst = i
		}
		gl.HasLimits = true
		n++
	}
	if n == 0 {
		return p.errf("empty WITH")
	}
	return nil
}

// ParseShowGrants builds one account's state from its SHOW GRANTS lines, against a server's privilege list
// (which says what ALL PRIVILEGES means there). Every line must name the same grantee. PROXY and routine grants
// are not managed: they are returned as warnings.
func ParseShowGrants(lines []string, sp ServerPrivileges) (*AccountState, []string, error) {
	var a *AccountState
	var warnings []string
	for _, line := range lines {
		gl, err := ParseGrantLine(line)
		if err != nil {
			return nil, nil, err
		}
		key := gl.Grantee
		if a == nil {
			a = &AccountState{Key: key, Require: RequireNone, Roles: map[string]bool{}, Grants: map[Object]*Privs{}}
			if key.IsRole {
				a.Require = ""
			}
		} else if key != a.Key {
			if a.Key.IsRole && key.IsRole {
				continue // SHOW GRANTS FOR a role goes on with the grants of the roles granted to it
			}
			return nil, nil, fmt.Errorf("%w: grants of %s and %s mixed", ErrShowGrants, a.Key, key)
		}
		switch gl.Kind {
		case LineRole:
			a.Roles[gl.Role] = gl.AdminOption
		case LineDefaultRole:
			a.DefaultRole = gl.Role
		case LineProxy, LineRoutine:
			warnings = append(warnings, fmt.Sprintf("%s: not managed by dbstate: %s", key, truncate(line, 200)))
		case LinePrivileges:
			if len(gl.Auth) > 0 {
				a.Auth = gl.Auth
			}
			if gl.Require != "" {
				a.Require = gl.Require
			}
			if gl.HasLimits {
				a.Limits = gl.Limits
			}
			pr := gl.Privs.clone()
			if gl.AllPrivileges {
				pr.Mask |= sp.levelMask(gl.Object)
			}
			if old := a.Grants[gl.Object]; old != nil {
				mergePrivs(old, pr)
			} else if !pr.empty() {
				a.Grants[gl.Object] = pr
			}
		}
	}
	if a == nil {
		return nil, nil, fmt.Errorf("%w: no lines", ErrShowGrants)
	}
	if !a.Key.IsRole && len(a.Auth) == 0 {
		a.Auth = []AuthMethod{{Plugin: PluginNative}}
	}
	return a, warnings, nil
}

func mergePrivs(dst, src *Privs) {
	dst.Mask |= src.Mask
	dst.GrantOption = dst.GrantOption || src.GrantOption
	for c, m := range src.Columns {
		if dst.Columns == nil {
			dst.Columns = map[string]uint64{}
		}
		dst.Columns[c] |= m
	}
}
