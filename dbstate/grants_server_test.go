package dbstate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate"
	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// grantsBed is one primary with two replicas shared by the grants subtests.
type grantsBed struct {
	tp     *dbtest.Topology
	p      *dbtest.Instance
	rs     []*dbtest.Instance
	c      *dbstate.Client
	target dbstate.GrantsTarget
	dir    string
}

func newGrantsBed(t *testing.T) *grantsBed {
	tp := dbtest.PrimaryWithReplicas(t, 2)
	b := &grantsBed{tp: tp, p: tp.Get("p"), rs: []*dbtest.Instance{tp.Get("r1"), tp.Get("r2")}, c: newClient(t), dir: t.TempDir()}
	for _, in := range tp.Instances {
		in.Exec(t, "INSTALL SONAME 'auth_ed25519'") // not binlogged
	}
	b.p.Exec(t, "CREATE TABLE test.t1 (id INT PRIMARY KEY, name VARCHAR(20), secret INT)")
	for _, r := range b.rs {
		r.WaitCaughtUp(t, b.p)
	}
	topo := discover(t, b.c, b.p.Addr())
	var err error
	if b.target, err = dbstate.GrantsTargetFromTopology(topo); err != nil {
		t.Fatal(err)
	}
	for name, pw := range map[string]string{"app.pw": appPassword, "ed.pw": "ed-s3cret", "batch.pw": "b4tch-pw"} {
		if err := os.WriteFile(filepath.Join(b.dir, name), []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func (b *grantsBed) readFile(p string) (string, error) {
	return dbstate.ReadPasswordFile(filepath.Join(b.dir, p))
}

func (b *grantsBed) plan(t *testing.T, d *dbstate.DesiredGrants) *dbstate.GrantsPlan {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := dbstate.PlanGrants(ctx, b.c, b.target, d, dbstate.GrantsOptions{ReadFile: b.readFile})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *grantsBed) apply(t *testing.T, d *dbstate.DesiredGrants) *dbstate.GrantsPlan {
	t.Helper()
	p := b.plan(t, d)
	var audit strings.Builder
	res, err := p.Execute(context.Background(), dbstate.ExecOptions{Audit: &audit})
	if err != nil {
		t.Fatalf("%v\n%+v", err, res)
	}
	if !res.Verified {
		t.Fatal("not verified")
	}
	var text strings.Builder
	p.WriteText(&text)
	assertNoSecrets(t, "audit log", audit.String())
	assertNoHashes(t, "audit log", audit.String())
	assertNoHashes(t, "plan", text.String())
	return p
}

func (b *grantsBed) assertEmpty(t *testing.T, d *dbstate.DesiredGrants) {
	t.Helper()
	p := b.plan(t, d)
	if !p.Empty() {
		var s strings.Builder
		p.WriteText(&s)
		t.Fatalf("plan not empty:\n%s", s.String())
	}
}

// assertNoErrant checks that no replica has a transaction the primary lacks.
func (b *grantsBed) assertNoErrant(t *testing.T) {
	t.Helper()
	mpos := dbstate.MustParsePosition(b.p.QueryString(t, "SELECT @@gtid_current_pos"))
	for _, r := range b.rs {
		r.WaitCaughtUp(t, b.p)
		rpos := dbstate.MustParsePosition(r.QueryString(t, "SELECT @@gtid_binlog_pos"))
		if e := dbstate.Errant(rpos, uint32(r.ServerID), mpos); len(e) > 0 {
			t.Fatalf("%s has errant GTIDs %v", r.Name, e)
		}
	}
}

// localExec runs statements as root on one instance with sql_log_bin=0 on one session: drift made by hand.
func localExec(t *testing.T, in *dbtest.Instance, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := in.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, s := range append([]string{"SET SESSION sql_log_bin=0"}, append(stmts, "SET SESSION sql_log_bin=1")...) {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %s: %v", in.Name, s, err)
		}
	}
}

func assertNoHashes(t *testing.T, what, s string) {
	t.Helper()
	for _, h := range []string{dbstate.NativePasswordHash(appPassword), dbstate.ED25519PublicKey("ed-s3cret"), dbstate.NativePasswordHash("b4tch-pw"), "D821809F681A40A6E379B50D0463EFAE20BDD122", "ed-s3cret", "b4tch-pw"} {
		if strings.Contains(s, h) || strings.Contains(s, strings.TrimPrefix(h, "*")) {
			t.Fatalf("%s contains a password or hash:\n%s", what, s)
		}
	}
}

// fullDesired exercises every feature of the desired-state file.
const fullDesired = `
prune: true
protect: [dbstate@127.0.0.1, dbstate@localhost, repl@127.0.0.1, keepme@localhost]
roles:
  - name: app_read
    grants:
      - {privileges: [SELECT, SHOW VIEW], on: "test.*"}
  - name: app_write
    roles: [app_read]
    grants:
      - {privileges: [INSERT, UPDATE, DELETE], on: "test.*"}
  - name: ops
    grants:
      - {privileges: [PROCESS, REPLICATION CLIENT, READ ONLY ADMIN], on: "*.*"}
users:
  - name: app
    host: 10.0.%
    auth: {password_file: app.pw}
    require: ssl
    limits: {max_user_connections: 50, max_statement_time: 30.5, max_queries_per_hour: 1000, max_updates_per_hour: 500, max_connections_per_hour: 100}
    roles: [app_write]
    admin_roles: [app_read]
    default_role: app_write
    grants:
      - {privileges: ["SELECT (id, name)", "UPDATE (name)"], on: test.t1}
  - name: reporting
    host: "%"
    auth: {password_hash: "*D821809F681A40A6E379B50D0463EFAE20BDD122"}
    require: x509
    grants:
      - {privileges: [SELECT], on: 'rep\_db.*'}
      - {privileges: [SELECT, INSERT], on: 'tmp%.*', with_grant_option: true}
  - name: edgy
    host: localhost
    auth: {ed25519_password_file: ed.pw}
    roles: [ops]
  - name: socky
    host: localhost
    auth: {unix_socket: true, or: [{password_file: batch.pw}]}
  - name: nopw
    host: 192.168.1.0/255.255.255.0
    auth: {none: true}
  - name: admin
    host: localhost
    auth: {password_hash: invalid, or: [{unix_socket: true}]}
    grants:
      - {privileges: [ALL PRIVILEGES], on: "*.*", with_grant_option: true}
      - {privileges: [ALL], on: "test.*"}
`

func mustDesired(t *testing.T, y string) *dbstate.DesiredGrants {
	t.Helper()
	d, err := dbstate.ParseDesiredGrants([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGrantsOnCluster runs the grants loop on one primary with two replicas: apply then an empty plan, show
// then an empty plan, drift repaired on the drifted replica only without errant GTIDs, prune, hostile names
// (checked against the general log) and a failure midway.
func TestGrantsOnCluster(t *testing.T) {
	b := newGrantsBed(t)
	b.p.Exec(t, "CREATE USER keepme@localhost", "CREATE USER dropme@'%'")
	for _, r := range b.rs {
		r.WaitCaughtUp(t, b.p)
	}
	full := mustDesired(t, fullDesired)

	t.Run("privilege bits", func(t *testing.T) {
		// The access-mask bit of every privilege, as this server stores it, is the one ReadGrants decodes.
		st, err := dbstate.ReadGrants(context.Background(), b.p.DB())
		if err != nil {
			t.Fatal(err)
		}
		if st.Privileges.Global != dbstate.DefaultServerPrivileges().Global || len(st.Warnings) != 0 {
			t.Fatalf("SHOW PRIVILEGES of %s: %x, warnings %v", st.Privileges.Version, st.Privileges.Global, st.Warnings)
		}
		localExec(t, b.p, "CREATE USER bits@x")
		defer localExec(t, b.p, "DROP USER bits@x")
		for _, name := range dbstate.PrivilegeNames(st.Privileges.Global) {
			localExec(t, b.p, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM bits@x", "GRANT "+name+" ON *.* TO bits@x")
			got := b.p.QueryString(t, "SELECT JSON_VALUE(Priv, '$.access') FROM mysql.global_priv WHERE User='bits'")
			want := dbstate.PrivilegeMask(name)
			if got != fmt.Sprint(want) {
				t.Errorf("%s: access %s, want %d", name, got, want)
			}
		}
	})

	t.Run("apply then plan is empty", func(t *testing.T) {
		p := b.apply(t, full)
		for _, c := range p.Changes {
			if c.Scope != dbstate.ScopeReplicated {
				t.Errorf("%s: scope %s, want replicated (every instance lacked it)", c.SQL, c.Scope)
			}
		}
		if !slices.ContainsFunc(p.Changes, func(c dbstate.PlannedGrantChange) bool { return strings.HasPrefix(c.SQL, "DROP USER `dropme`") }) {
			t.Error("prune did not drop dropme@%")
		}
		b.assertEmpty(t, full)
		b.assertNoErrant(t)
		// Both sources agree on every account: the tables ReadGrants reads and SHOW GRANTS.
		st, err := dbstate.ReadGrants(context.Background(), b.p.DB())
		if err != nil {
			t.Fatal(err)
		}
		for k, a := range st.Accounts {
			if k.User == "root" {
				continue // root@<hostname>: SHOW GRANTS cannot find it under skip_name_resolve
			}
			sg, err := dbstate.ReadAccountGrants(context.Background(), b.p.DB(), k, st.Privileges)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if !reflect.DeepEqual(sg, a) {
				t.Errorf("%s: SHOW GRANTS %+v, tables %+v", k, sg, a)
			}
		}
		// ed25519 computed on the client matches what the server computes from the password.
		if got := b.p.QueryString(t, "SELECT JSON_VALUE(Priv, '$.authentication_string') FROM mysql.global_priv WHERE User='edgy'"); got != dbstate.ED25519PublicKey("ed-s3cret") {
			t.Fatalf("ed25519 key %s", got)
		}
	})

	t.Run("show then plan is empty", func(t *testing.T) {
		b.p.Exec(t, "CREATE USER hand@'10.%' IDENTIFIED BY 'h4nd' WITH MAX_USER_CONNECTIONS 3",
			"CREATE ROLE handrole", "GRANT SELECT ON test.* TO handrole", "GRANT handrole TO hand@'10.%'",
			"SET DEFAULT ROLE handrole FOR hand@'10.%'", "GRANT SELECT (name), INSERT ON test.t1 TO hand@'10.%' WITH GRANT OPTION",
			"GRANT ALL ON `hand\\_db`.* TO hand@'10.%'", "CREATE USER tls@'%' REQUIRE SUBJECT '/CN=x'")
		for _, r := range b.rs {
			r.WaitCaughtUp(t, b.p)
		}
		st, err := dbstate.ReadGrants(context.Background(), b.p.DB())
		if err != nil {
			t.Fatal(err)
		}
		shown, left := st.Desired(false)
		if len(left) != 1 || !strings.Contains(left[0], "'tls'@'%'") {
			t.Fatalf("left out: %v", left)
		}
		y, err := dbstate.MarshalDesiredGrants(shown, "shown")
		if err != nil {
			t.Fatal(err)
		}
		d := mustDesired(t, string(y))
		b.assertEmpty(t, d)
		if !strings.Contains(string(y), `hand\_db.*`) || !strings.Contains(string(y), "ALL PRIVILEGES") {
			t.Fatalf("show output:\n%s", y)
		}
		b.p.Exec(t, "DROP USER hand@'10.%'", "DROP ROLE handrole", "DROP USER tls@'%'")
	})

	t.Run("drift on replicas is repaired there only", func(t *testing.T) {
		r1, r2 := b.rs[0], b.rs[1]
		before := b.p.QueryString(t, "SELECT @@gtid_binlog_pos")
		localExec(t, r1, "GRANT DELETE ON test.* TO app@'10.0.%'", "ALTER USER reporting@'%' IDENTIFIED BY 'changed'",
			"SET DEFAULT ROLE NONE FOR app@'10.0.%'")
		localExec(t, r2, "DROP ROLE ops", "DROP USER nopw@'192.168.1.0/255.255.255.0'")
		p := b.plan(t, full)
		if p.Empty() {
			t.Fatal("drift not detected")
		}
		var s strings.Builder
		p.WriteText(&s)
		for _, c := range p.Changes {
			if c.Scope != dbstate.ScopeLocal || slices.Contains(c.Instances, b.p.Addr()) || len(c.Instances) != 1 {
				t.Errorf("%s: scope %s on %v, want local on one replica:\n%s", c.SQL, c.Scope, c.Instances, s.String())
			}
		}
		for _, w := range []string{"REVOKE DELETE ON `test`.* FROM `app`@`10.0.%`", "ALTER USER `reporting`@`%` IDENTIFIED VIA mysql_native_password USING '<redacted>'",
			"SET DEFAULT ROLE `app_write` FOR `app`@`10.0.%`", "CREATE ROLE `ops`", "GRANT `ops` TO `edgy`@`localhost`", "CREATE USER `nopw`@`192.168.1.0/255.255.255.0`"} {
			if !strings.Contains(s.String(), w) {
				t.Errorf("plan lacks %q:\n%s", w, s.String())
			}
		}
		b.apply(t, full)
		b.assertEmpty(t, full)
		b.assertNoErrant(t)
		if after := b.p.QueryString(t, "SELECT @@gtid_binlog_pos"); after != before {
			t.Fatalf("the primary logged something: %s -> %s", before, after)
		}
	})

	t.Run("prune refuses to drop its own account", func(t *testing.T) {
		d := mustDesired(t, strings.Replace(fullDesired, "dbstate@127.0.0.1, ", "", 1))
		_, err := dbstate.PlanGrants(context.Background(), b.c, b.target, d, dbstate.GrantsOptions{ReadFile: b.readFile})
		if !errors.Is(err, dbstate.ErrOwnAccount) {
			t.Fatalf("err = %v, want ErrOwnAccount", err)
		}
		// keepme (protected), root, mariadb.sys survive prune.
		if n := b.p.QueryString(t, "SELECT COUNT(*) FROM mysql.global_priv WHERE (User='keepme' AND Host='localhost') OR User IN ('root', 'mariadb.sys')"); n == "0" {
			t.Fatal("protected accounts dropped")
		}
	})

	t.Run("plan needs only read privileges", func(t *testing.T) {
		b.p.Exec(t, "CREATE USER planner@'127.0.0.1' IDENTIFIED BY 'pl4nner'",
			"GRANT SELECT ON mysql.* TO planner@'127.0.0.1'", "GRANT SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO planner@'127.0.0.1'")
		defer b.p.Exec(t, "DROP USER planner@'127.0.0.1'")
		for _, r := range b.rs {
			r.WaitCaughtUp(t, b.p)
		}
		pc := dbstate.NewClient(dbstate.Credentials{User: "planner", Password: "pl4nner"}, 3*time.Second, nil)
		defer pc.Close()
		topo := discover(t, pc, b.p.Addr())
		target, err := dbstate.GrantsTargetFromTopology(topo)
		if err != nil {
			t.Fatal(err)
		}
		d := mustDesired(t, strings.Replace(fullDesired, "protect: [", "protect: [planner@127.0.0.1, ", 1))
		localExec(t, b.rs[1], "REVOKE SELECT ON test.* FROM app_read")
		p, err := dbstate.PlanGrants(context.Background(), pc, target, d, dbstate.GrantsOptions{ReadFile: b.readFile})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Changes) != 1 || p.Changes[0].SQL != "GRANT SELECT ON `test`.* TO `app_read`" || p.Changes[0].Instances[0] != b.rs[1].Addr() {
			t.Fatalf("changes: %+v", p.Changes)
		}
		localExec(t, b.rs[1], "GRANT SELECT ON test.* TO app_read")
	})

	t.Run("apply needs the documented privileges", func(t *testing.T) {
		b.p.Exec(t, "CREATE USER applier@'127.0.0.1' IDENTIFIED BY '4pplier'",
			"GRANT CREATE USER, BINLOG ADMIN, READ ONLY ADMIN, SLAVE MONITOR, REPLICATION MASTER ADMIN ON *.* TO applier@'127.0.0.1'",
			"GRANT SELECT, UPDATE ON mysql.* TO applier@'127.0.0.1'", "GRANT SELECT, INSERT ON test.* TO applier@'127.0.0.1' WITH GRANT OPTION")
		for _, r := range b.rs {
			r.WaitCaughtUp(t, b.p)
		}
		ac := dbstate.NewClient(dbstate.Credentials{User: "applier", Password: "4pplier"}, 3*time.Second, nil)
		defer ac.Close()
		target, err := dbstate.GrantsTargetFromTopology(discover(t, ac, b.p.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		d := mustDesired(t, `
roles: [{name: minr, grants: [{privileges: [SELECT], on: "test.*"}]}]
users:
  - {name: minu, host: "10.%", auth: {password_file: batch.pw}, roles: [minr], default_role: minr, grants: [{privileges: [INSERT], on: "test.*"}]}
`)
		localExec(t, b.rs[0], "CREATE USER minu@'10.%'") // drift on one replica: repaired there with sql_log_bin=0
		p, err := dbstate.PlanGrants(context.Background(), ac, target, d, dbstate.GrantsOptions{ReadFile: b.readFile})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := p.Execute(context.Background(), dbstate.ExecOptions{}); err != nil {
			t.Fatalf("%v\n%+v", err, res)
		}
		b.assertNoErrant(t)
		b.p.Exec(t, "DROP USER minu@'10.%'", "DROP ROLE minr", "DROP USER applier@'127.0.0.1'")
	})

	t.Run("a global read lock fails the apply in time", func(t *testing.T) {
		d := mustDesired(t, fullDesired+"  - {name: locked, host: '%', auth: {none: true}}\n")
		ctx := context.Background()
		p, err := dbstate.PlanGrants(ctx, b.c, b.target, d, dbstate.GrantsOptions{ReadFile: b.readFile, StatementTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := b.p.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "FLUSH TABLES WITH READ LOCK"); err != nil { // as a backup tool does
			t.Fatal(err)
		}
		res, err := p.Execute(ctx, dbstate.ExecOptions{})
		conn.ExecContext(ctx, "UNLOCK TABLES")
		conn.Close()
		// Interrupted by max_statement_time: the report cannot know whether it ran, and says so.
		if !errors.Is(err, dbstate.ErrGrantsIncomplete) || res.Failed == nil || !res.Unknown || len(res.Applied) != 0 {
			t.Fatalf("err = %v, res = %+v", err, res)
		}
		if !strings.Contains(err.Error(), "max_statement_time exceeded") {
			t.Fatalf("err = %v", err)
		}
		if next := b.plan(t, d); len(next.Changes) != 1 {
			t.Fatalf("after the failure, plan has %d changes, want the one that did not run", len(next.Changes))
		}
		b.apply(t, full)
	})

	t.Run("hostile names", func(t *testing.T) { testHostileNames(t, b) })

	t.Run("failure midway", func(t *testing.T) {
		y := fullDesired + "\n"
		for k := range 6 {
			y += fmt.Sprintf("  - {name: batch%d, host: '%%', auth: {password_file: batch.pw}, grants: [{privileges: [SELECT], on: 'test.*'}]}\n", k)
		}
		d := mustDesired(t, y)
		p := b.plan(t, d)
		n := 0
		var audit strings.Builder
		res, err := p.Execute(context.Background(), dbstate.ExecOptions{Audit: &audit, BeforeStep: func(ctx context.Context, s *dbstate.Step) error {
			if n++; n == 4 {
				// Kill dbstate's sessions on the primary, as a network failure would.
				for _, id := range strings.Fields(b.p.QueryString(t, "SELECT GROUP_CONCAT(ID SEPARATOR ' ') FROM information_schema.PROCESSLIST WHERE USER=?", dbtest.AdminUser)) {
					b.p.Exec(t, "KILL "+id)
				}
			}
			return nil
		}})
		if !errors.Is(err, dbstate.ErrGrantsIncomplete) || res == nil || res.Failed == nil {
			t.Fatalf("err = %v, res = %+v", err, res)
		}
		if len(res.Applied) != 3 {
			t.Fatalf("applied %d, want 3: %+v", len(res.Applied), res)
		}
		assertNoHashes(t, "error", err.Error())
		assertNoHashes(t, "audit", audit.String())
		for _, r := range b.rs {
			r.WaitCaughtUp(t, b.p)
		}
		// The next plan is exactly what the report says was not applied.
		var rest []string
		for _, o := range append([]dbstate.StepOutcome{*res.Failed}, res.NotApplied...) {
			rest = append(rest, o.Instance+" "+strings.TrimSuffix(o.Statement, " (replicates)"))
		}
		var next []string
		for _, c := range b.plan(t, d).Changes {
			next = append(next, c.Instances[0]+" "+c.SQL)
		}
		if !slices.Equal(rest, next) {
			t.Fatalf("report says not applied:\n%s\nnext plan:\n%s", strings.Join(rest, "\n"), strings.Join(next, "\n"))
		}
		b.apply(t, d)
		b.assertEmpty(t, d)
		b.assertNoErrant(t)
	})
}

// testHostileNames applies accounts, roles, databases and columns with hostile names and reads them back;
// names dbstate refuses are refused with ErrBadName. The general log of the primary must hold exactly the
// statements of the plan: nothing was split, joined or changed.
func testHostileNames(t *testing.T, b *grantsBed) {
	b.p.Exec(t, "CREATE TABLE test.`we``ird'tb` (`c'o``l` INT, `c\\2` INT)")
	for _, r := range b.rs {
		r.WaitCaughtUp(t, b.p)
	}
	users := []string{`o'brien`, "back`tick", `back\slash`, `pct%`, `under_score`, `x' OR '1'='1`, "x`; DROP USER root@localhost; --", `ünï`, `tr\'ick`, strings.Repeat("u", 128)}
	d := &dbstate.DesiredGrants{Roles: []dbstate.DesiredRole{{Name: "ro'le`x\\"}, {Name: "dflt`role %_"}}}
	for k, u := range users {
		// MariaDB logs SET DEFAULT ROLE with unescaped names: dbstate refuses default roles for names with ' or \.
		dflt := "dflt`role %_"
		if strings.ContainsAny(u, `'\`) || len(u) > 64 {
			dflt = ""
		}
		d.Users = append(d.Users, dbstate.DesiredUser{Name: u, Host: "10.%", Auth: dbstate.DesiredAuth{None: true},
			Roles: []string{"ro'le`x\\", "dflt`role %_"}, DefaultRole: dflt, Grants: []dbstate.DesiredGrant{
				{Privileges: []string{"SELECT"}, On: fmt.Sprintf("`d'b``%d\\x`.*", k)},
				{Privileges: []string{"INSERT (`c'o``l`, `c\\2`)"}, On: "test.`we``ird'tb`"},
			}})
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	b.p.Exec(t, "SET GLOBAL general_log_file='"+filepath.Join(b.dir, "general.log")+"'", "SET GLOBAL general_log=1")
	p := b.plan(t, d)
	res, err := p.Execute(context.Background(), dbstate.ExecOptions{})
	b.p.Exec(t, "SET GLOBAL general_log=0")
	if err != nil {
		t.Fatalf("%v %+v", err, res)
	}
	b.assertEmpty(t, d)
	st, err := dbstate.ReadGrants(context.Background(), b.p.DB())
	if err != nil {
		t.Fatal(err)
	}
	for k, u := range users {
		a := st.Accounts[dbstate.AccountKey{User: u, Host: "10.%"}]
		if a == nil || (a.DefaultRole == "") != (strings.ContainsAny(u, `'\\`) || len(u) > 64) || len(a.Roles) != 2 || a.Grants[dbstate.Object{DB: fmt.Sprintf("d'b`%d\\x", k), Table: "*"}] == nil {
			t.Fatalf("%q did not round-trip: %+v", u, a)
		}
	}
	// Every statement the general log shows on dbstate's sessions is one of the plan's, byte for byte.
	log, err := os.ReadFile(filepath.Join(b.dir, "general.log"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, c := range p.Changes {
		want = append(want, c.Statement())
	}
	for _, w := range want {
		if !strings.Contains(string(log), "Query\t"+w+"\n") {
			t.Fatalf("general log lacks %q", w)
		}
	}
	for _, line := range strings.Split(string(log), "\n") {
		_, q, ok := strings.Cut(line, "Query\t")
		if !ok {
			continue
		}
		for _, kw := range []string{"CREATE ", "GRANT ", "REVOKE ", "DROP ", "ALTER USER", "SET DEFAULT ROLE"} {
			if strings.HasPrefix(q, kw) && !slices.Contains(want, q) {
				t.Fatalf("the server ran a statement that is not in the plan: %q", q)
			}
		}
	}
	if n := b.p.QueryString(t, "SELECT COUNT(*) FROM mysql.global_priv WHERE User='root' AND Host='localhost'"); n != "1" {
		t.Fatal("root@localhost is gone")
	}
	// Refused names never reach a server.
	for _, bad := range []dbstate.DesiredUser{
		{Name: "new\nline", Host: "h", Auth: dbstate.DesiredAuth{None: true}},
		{Name: "nul\x00", Host: "h", Auth: dbstate.DesiredAuth{None: true}},
		{Name: "bad\xff\xfe", Host: "h", Auth: dbstate.DesiredAuth{None: true}},
		{Name: strings.Repeat("u", 129), Host: "h", Auth: dbstate.DesiredAuth{None: true}},
		{Name: "trailing ", Host: "h", Auth: dbstate.DesiredAuth{None: true}},
		{Name: "o'b", Host: "h", Auth: dbstate.DesiredAuth{None: true}, Roles: []string{"ro'le`x\\"}, DefaultRole: "ro'le`x\\"},
		{Name: "u", Host: "h'; DROP USER root@localhost; --", Auth: dbstate.DesiredAuth{None: true}},
		{Name: "u", Host: `h\%`, Auth: dbstate.DesiredAuth{None: true}},
		{Name: "u", Host: strings.Repeat("h", 256), Auth: dbstate.DesiredAuth{None: true}},
		{Name: "u", Host: "h", Auth: dbstate.DesiredAuth{None: true}, Grants: []dbstate.DesiredGrant{{Privileges: []string{"SELECT"}, On: strings.Repeat("d", 65) + ".*"}}},
		{Name: "u", Host: "h", Auth: dbstate.DesiredAuth{None: true}, Grants: []dbstate.DesiredGrant{{Privileges: []string{"SELECT"}, On: "`d\nb`.*"}}},
	} {
		err := (&dbstate.DesiredGrants{Roles: d.Roles, Users: []dbstate.DesiredUser{bad}}).Validate()
		if !errors.Is(err, dbstate.ErrBadName) && !errors.Is(err, dbstate.ErrDesiredGrants) {
			t.Errorf("%q@%q accepted: %v", bad.Name, bad.Host, err)
		}
	}
	// Clean up for the next subtest: the full desired state prunes them.
}

// TestGrantsIndependentInstances applies one desired state to two servers that do not replicate: each gets its
// own statements, drift on one is repaired on that one only, and the second plan is empty.
func TestGrantsIndependentInstances(t *testing.T) {
	insts := dbtest.Start(t, 2)
	c := newClient(t)
	target := dbstate.GrantsTarget{Independent: []string{insts[0].Addr(), insts[1].Addr()}}
	d := mustDesired(t, `
roles: [{name: r, grants: [{privileges: [SELECT], on: "app.*"}]}]
users:
  - {name: u, host: "10.%", auth: {password_hash: "*D821809F681A40A6E379B50D0463EFAE20BDD122"}, roles: [r], default_role: r}
`)
	ctx := context.Background()
	plan := func() *dbstate.GrantsPlan {
		p, err := dbstate.PlanGrants(ctx, c, target, d, dbstate.GrantsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := plan()
	for _, ch := range p.Changes {
		if ch.Scope != dbstate.ScopeInstance || len(ch.Instances) != 1 {
			t.Fatalf("%s: %s on %v", ch.SQL, ch.Scope, ch.Instances)
		}
	}
	if len(p.Changes) != 2*5 {
		t.Fatalf("%d changes, want 5 per instance", len(p.Changes))
	}
	if _, err := p.Execute(ctx, dbstate.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := plan(); !p.Empty() {
		t.Fatalf("second plan: %+v", p.Changes)
	}
	insts[1].Exec(t, "SET DEFAULT ROLE NONE FOR u@'10.%'")
	p = plan()
	if len(p.Changes) != 1 || p.Changes[0].Instances[0] != insts[1].Addr() || p.Changes[0].SQL != "SET DEFAULT ROLE `r` FOR `u`@`10.%`" {
		t.Fatalf("drift: %+v", p.Changes)
	}
	if _, err := p.Execute(ctx, dbstate.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	if p := plan(); !p.Empty() {
		t.Fatalf("after repair: %+v", p.Changes)
	}
}

// TestGrantsPrunePublicAndReplication: on a real 10.11 server, grants TO PUBLIC show up as a role row that prune
// keeps (DROP ROLE PUBLIC fails), and the plan warns before pruning the replication account.
func TestGrantsPrunePublicAndReplication(t *testing.T) {
	in := dbtest.Start(t, 1)[0]
	c := newClient(t)
	in.Exec(t, "GRANT SELECT ON test.* TO PUBLIC", "CREATE USER IF NOT EXISTS repl@'10.%'", "GRANT REPLICATION SLAVE ON *.* TO repl@'10.%'")
	d := mustDesired(t, "prune: true\nprotect: [dbstate@127.0.0.1]\n") // the account newClient logs in as
	ctx := context.Background()
	target := dbstate.GrantsTarget{Independent: []string{in.Addr()}}
	p, err := dbstate.PlanGrants(ctx, c, target, d, dbstate.GrantsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range p.Changes {
		if strings.Contains(ch.SQL, "PUBLIC") {
			t.Fatalf("prune touches PUBLIC: %s", ch.SQL)
		}
	}
	if !slices.Contains(p.Kept, "role PUBLIC (system account)") {
		t.Errorf("kept: %q", p.Kept)
	}
	if !slices.ContainsFunc(p.Warnings, func(w string) bool { return strings.Contains(w, "prune drops 'repl'@'10.%'") }) {
		t.Errorf("no warning about the replication account: %q", p.Warnings)
	}
	if _, err := p.Execute(ctx, dbstate.ExecOptions{}); err != nil {
		t.Fatal(err)
	}
	if p, err := dbstate.PlanGrants(ctx, c, target, d, dbstate.GrantsOptions{}); err != nil || !p.Empty() {
		t.Fatalf("second plan: %v %+v", err, p)
	}
}

// TestGrantsStarNamedObjects: a database or table literally named * (backquoted) is not the wildcard. Reading it
// as *.* or db.* would make a plan revoke a global or database privilege the account does not have; such rows
// are left alone with a warning.
func TestGrantsStarNamedObjects(t *testing.T) {
	in := dbtest.Start(t, 1)[0]
	in.Exec(t, "CREATE DATABASE IF NOT EXISTS test", "CREATE TABLE test.`*` (c INT)", "CREATE TABLE test.t (c INT)", "CREATE USER u@'%'", "GRANT SELECT ON `*`.* TO u@'%'", "GRANT INSERT ON test.`*` TO u@'%'",
		"GRANT UPDATE (`c`) ON test.`*` TO u@'%'", "GRANT DELETE ON test.t TO u@'%'")
	c := newClient(t)
	db, err := c.DB(in.Addr())
	if err != nil {
		t.Fatal(err)
	}
	st, err := dbstate.ReadGrants(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	a := st.Accounts[dbstate.AccountKey{User: "u", Host: "%"}]
	if a == nil || len(a.Grants) != 1 || a.Grants[dbstate.Object{DB: "test", Table: "t"}] == nil {
		t.Fatalf("grants of u: %+v", a)
	}
	if n := len(slices.DeleteFunc(slices.Clone(st.Warnings), func(w string) bool { return !strings.Contains(w, "named *") })); n != 3 {
		t.Errorf("warnings: %q", st.Warnings)
	}
}

// TestGrantsApplyReplicaStopped: a replica whose replication was stopped by hand makes apply wait no longer than
// WaitTimeout; the error names the replica and the timeout, the result says the statement ran on the primary
// and nothing is verified; once replication runs again the next plan is empty (the replica catches up).
func TestGrantsApplyReplicaStopped(t *testing.T) {
	tp := dbtest.Build(t, "p p>r")
	p, r := tp.Get("p"), tp.Get("r")
	c := newClient(t)
	ctx := context.Background()
	topo := discover(t, c, p.Addr())
	target, err := dbstate.GrantsTargetFromTopology(topo)
	if err != nil {
		t.Fatal(err)
	}
	d := mustDesired(t, "users: [{name: late, host: '10.%', auth: {none: true}}]\n")
	opts := dbstate.GrantsOptions{WaitTimeout: 2 * time.Second}
	plan, err := dbstate.PlanGrants(ctx, c, target, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.StopSQLThread(t)
	res, err := plan.Execute(ctx, dbstate.ExecOptions{})
	if !errors.Is(err, dbstate.ErrWaitTimeout) || !strings.Contains(err.Error(), r.Addr()) {
		t.Fatalf("err = %v, want a wait timeout naming %s", err, r.Addr())
	}
	if res == nil || res.Verified || len(res.Applied) != 1 || res.Applied[0].Instance != p.Addr() {
		t.Fatalf("result: %+v", res)
	}
	r.StartSQLThread(t)
	r.WaitCaughtUp(t, p)
	if again, err := dbstate.PlanGrants(ctx, c, target, d, opts); err != nil || !again.Empty() {
		t.Fatalf("plan after replication resumed: %v %+v", err, again)
	}
}
