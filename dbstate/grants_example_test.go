package dbstate_test

import (
	"fmt"

	"github.com/evenkeel/evenkeel/dbstate"
)

// ExampleDiffGrants diffs a desired state with an actual one without a server: here the "actual" state is the
// desired file as it was before an edit. On a server, the actual state comes from ReadGrants(ctx, db).
func ExampleDiffGrants() {
	before, _ := dbstate.ParseDesiredGrants([]byte(`
users:
  - name: app
    host: 10.0.%
    auth: {password_hash: "*D821809F681A40A6E379B50D0463EFAE20BDD122"}
    grants:
      - {privileges: [SELECT, INSERT], on: "shop.*"}
`))
	after, _ := dbstate.ParseDesiredGrants([]byte(`
roles:
  - name: reader
    grants:
      - {privileges: [SELECT], on: "shop.*"}
users:
  - name: app
    host: 10.0.%
    auth: {password_hash: "*D821809F681A40A6E379B50D0463EFAE20BDD122"}
    limits: {max_user_connections: 10}
    roles: [reader]
    default_role: reader
    grants:
      - {privileges: [INSERT, UPDATE], on: "shop.*"}
`))
	sp := dbstate.DefaultServerPrivileges()
	noFiles := func(string) (string, error) { return "", fmt.Errorf("no password files here") }
	actual, _ := before.Normalize(sp, noFiles)
	desired, _ := after.Normalize(sp, noFiles)
	diff, err := dbstate.DiffGrants(desired, actual)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range diff.Changes {
		fmt.Printf("%-12s %s\n", c.Kind, c.SQL)
	}
	// Output:
	// create       CREATE ROLE `reader`
	// alter        ALTER USER `app`@`10.0.%` WITH MAX_USER_CONNECTIONS 10
	// grant        GRANT SELECT ON `shop`.* TO `reader`
	// grant        GRANT UPDATE ON `shop`.* TO `app`@`10.0.%`
	// revoke       REVOKE SELECT ON `shop`.* FROM `app`@`10.0.%`
	// grant        GRANT `reader` TO `app`@`10.0.%`
	// default-role SET DEFAULT ROLE `reader` FOR `app`@`10.0.%`
}
