package dbstate

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Redacted is what Desired writes in place of an authentication string when asked to redact.
const Redacted = "<redacted>"

// Desired writes the state in the desired-state format, so that "show" output used as the desired file gives an
// empty plan. Passwords are written as their hashes (password_hash, ed25519_key): the file is then as sensitive
// as the server's mysql.global_priv. With redact, hashes are replaced by Redacted (for JSON and logs; such a
// file does not parse back). Accounts the format cannot express (an anonymous user, REQUIRE ISSUER/SUBJECT/
// CIPHER, another authentication plugin, a name dbstate refuses) are left out and named in the warnings: with
// prune false, a plan leaves them alone.
func (s *GrantState) Desired(redact bool) (*DesiredGrants, []string) {
	d := &DesiredGrants{}
	var warnings []string
	skipped := map[string]bool{}
	for _, k := range s.sortedKeys() { // roles first
		a := s.Accounts[k]
		roles, admin := splitRoles(a.Roles)
		grants := exportGrants(a.Grants, s.Privileges)
		// Each account is checked alone, with stubs of the roles it names.
		var stubs []DesiredRole
		for _, r := range append(append([]string(nil), roles...), admin...) {
			if skipped[r] {
				stubs = nil
				break
			}
			stubs = append(stubs, DesiredRole{Name: r})
		}
		if k.IsRole {
			r := DesiredRole{Name: k.User, Roles: roles, AdminRoles: admin, Grants: grants}
			if err := checkExported(k, &DesiredGrants{Roles: append(stubs, r)}, len(stubs) == len(roles)+len(admin)); err != nil {
				skipped[k.User] = true
				warnings = append(warnings, fmt.Sprintf("%s left out: %v", k, err))
				continue
			}
			d.Roles = append(d.Roles, r)
			continue
		}
		u := DesiredUser{Name: k.User, Host: k.Host, Auth: exportAuth(a.Auth, false), Limits: a.Limits,
			Roles: roles, AdminRoles: admin, DefaultRole: a.DefaultRole, Grants: grants}
		if a.Require != RequireNone {
			u.Require = a.Require
		}
		if p := unmanagedPlugin(a.Auth); p != "" {
			warnings = append(warnings, fmt.Sprintf("%s left out: authentication plugin %s is not managed by dbstate", k, p))
			continue
		}
		if err := checkExported(k, &DesiredGrants{Roles: stubs, Users: []DesiredUser{u}}, len(stubs) == len(roles)+len(admin)); err != nil {
			warnings = append(warnings, fmt.Sprintf("%s left out: %v", k, err))
			continue
		}
		if redact {
			u.Auth = exportAuth(a.Auth, true)
		}
		d.Users = append(d.Users, u)
	}
	return d, warnings
}

// checkExported validates one exported account; rolesOK is false when a role it names was left out.
func checkExported(k AccountKey, d *DesiredGrants, rolesOK bool) error {
	if !rolesOK {
		return fmt.Errorf("it has a role that was left out")
	}
	if err := d.Validate(); err != nil {
		return errors.Unwrap(err) // drop the "invalid desired grants" prefix; the message names the problem
	}
	return nil
}

func splitRoles(m map[string]bool) (roles, admin []string) {
	for r, a := range m {
		if a {
			admin = append(admin, r)
		} else {
			roles = append(roles, r)
		}
	}
	sort.Strings(roles)
	sort.Strings(admin)
	return roles, admin
}

func exportAuth(ms []AuthMethod, redact bool) DesiredAuth {
	one := func(m AuthMethod) DesiredAuth {
		sec := m.Secret
		if redact && sec != "" {
			sec = Redacted
		}
		switch {
		case m.Plugin == PluginNative && m.Secret == "":
			return DesiredAuth{None: true}
		case m.Plugin == PluginNative:
			return DesiredAuth{PasswordHash: sec}
		case m.Plugin == PluginED25519:
			return DesiredAuth{ED25519Key: sec}
		case m.Plugin == PluginUnixSocket:
			return DesiredAuth{UnixSocket: true}
		}
		return DesiredAuth{} // unmanagedPlugin keeps such accounts out

	}
	if len(ms) == 0 {
		return DesiredAuth{None: true}
	}
	top := one(ms[0])
	for _, m := range ms[1:] {
		top.Or = append(top.Or, one(m))
	}
	return top
}

func unmanagedPlugin(ms []AuthMethod) string {
	for _, m := range ms {
		switch m.Plugin {
		case PluginNative, PluginED25519, PluginUnixSocket:
		default:
			return m.Plugin
		}
	}
	return ""
}

func exportGrants(gs map[Object]*Privs, sp ServerPrivileges) []DesiredGrant {
	var out []DesiredGrant
	for _, o := range sortedObjects(gs) {
		p := gs[o]
		var names []string
		if all := sp.levelMask(o); all != 0 && p.Mask == all {
			names = []string{"ALL PRIVILEGES"}
		} else {
			names = privNames(p.Mask)
		}
		cols, err := columnPrivs(p)
		if err != nil {
			// A column name QuoteIdent refuses (not UTF-8): written so that the parser names it.
			cols = []string{"unsupported column name " + strconv.Quote(err.Error())}
		}
		names = append(names, cols...)
		if len(names) == 0 {
			names = []string{"USAGE"}
		}
		out = append(out, DesiredGrant{Privileges: names, On: o.String(), WithGrantOption: p.GrantOption})
	}
	return out
}

// MarshalDesiredGrants writes a desired-state file (YAML) with a header comment.
func MarshalDesiredGrants(d *DesiredGrants, header string) ([]byte, error) {
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimRight(header, "\n"), "\n") {
		if l != "" {
			fmt.Fprintf(&b, "# %s\n", l)
		}
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
