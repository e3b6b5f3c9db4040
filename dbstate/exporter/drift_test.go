package exporter

import (
	"testing"

	"github.com/evenkeel/evenkeel/dbstate"
)

// TestDriftAccounts: the metric counts distinct accounts, not statements, and honours prune as the diff does
// (an unlisted account counts with prune, not without; a protected or system one never).
func TestDriftAccounts(t *testing.T) {
	norm := func(t *testing.T, y string) *dbstate.GrantState {
		t.Helper()
		d, err := dbstate.ParseDesiredGrants([]byte(y))
		if err != nil {
			t.Fatal(err)
		}
		st, err := d.Normalize(dbstate.DefaultServerPrivileges(), func(string) (string, error) { return "pw", nil })
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	const actual = `
roles: [{name: r, grants: [{privileges: [SELECT], on: "a.*"}]}]
users:
  - {name: u, host: "%", auth: {password_file: p}, roles: [r], grants: [{privileges: [SELECT, INSERT], on: "b.*"}]}
  - {name: other, host: "%", auth: {password_file: p}}
  - {name: kept, host: "%", auth: {password_file: p}}
  - {name: root, host: localhost, auth: {password_file: p}}
`
	for _, tt := range []struct {
		name    string
		desired string
		want    int
	}{
		{"in line without prune", `
roles: [{name: r, grants: [{privileges: [SELECT], on: "a.*"}]}]
users: [{name: u, host: "%", auth: {password_file: p}, roles: [r], grants: [{privileges: [SELECT, INSERT], on: "b.*"}]}]
`, 0},
		{"several statements on one account count once", `
roles: [{name: r, grants: [{privileges: [SELECT], on: "a.*"}]}]
users: [{name: u, host: "%", auth: {password_file: p}, grants: [{privileges: [UPDATE], on: "c.*"}]}]
`, 1},
		{"a role and a user", `
roles: [{name: r, grants: [{privileges: [SELECT, SHOW VIEW], on: "a.*"}]}]
users: [{name: u, host: "%", auth: {password_file: p}, roles: [r]}]
`, 2},
		{"prune counts the unlisted accounts, not protected or system ones", `
prune: true
protect: [kept@%]
roles: [{name: r, grants: [{privileges: [SELECT], on: "a.*"}]}]
users: [{name: u, host: "%", auth: {password_file: p}, roles: [r], grants: [{privileges: [SELECT, INSERT], on: "b.*"}]}]
`, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := dbstate.DiffGrants(norm(t, tt.desired), norm(t, actual))
			if err != nil {
				t.Fatal(err)
			}
			if got := DriftAccounts(d); got != tt.want {
				t.Errorf("drift %d, want %d: %v", got, tt.want, d.Changes)
			}
		})
	}
}
