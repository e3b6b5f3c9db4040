package dbstate

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// TestFenceOwnAccountReserve: once dbstate's own account is locked on an instance, nobody else logs in with it
// there, while dbstate goes on working from the connections it logged in ahead, also when the pool drops every
// connection it is done with (here: no idle connection kept at all, harsher than the pool's idle close), and
// the unlock still has a connection when the rest of the reserve is used up. After the unlock, the account logs
// in again and the reserve is closed.
func TestFenceOwnAccountReserve(t *testing.T) {
	t.Parallel()
	a := dbtest.Build(t, "a").Get("a")
	creds := Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword}
	c := NewClient(creds, 3*time.Second, nil)
	defer c.Close()
	other := NewClient(creds, 3*time.Second, nil) // another process with dbstate's login
	defer other.Close()
	ctx := context.Background()
	fi, err := c.Writers(ctx, a.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.OwnBypasses {
		t.Fatalf("dbtest's admin does not write through read_only: %+v", fi)
	}
	if _, err := c.LockOwnAccount(ctx, a.Addr(), fi.Self); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Vars(ctx, a.Addr()); err == nil || !strings.Contains(err.Error(), "4151") {
		t.Fatalf("another login with the locked account: err = %v, want error 4151 (account locked)", err)
	}
	db, err := c.DB(a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxIdleConns(0) // every connection is closed after use: each read takes one of the reserve
	reads := 0
	for ; reads < 2*ownReserve; reads++ {
		if _, err = c.Vars(ctx, a.Addr()); err != nil {
			break
		}
	}
	// One of the reserve went to the lock itself; the last is kept for the unlock.
	if reads != ownReserve-2 || !strings.Contains(err.Error(), "4151") {
		t.Fatalf("%d reads from the reserve of %d (want %d), then err = %v (want 4151)", reads, ownReserve, ownReserve-2, err)
	}
	if err := c.SetAccountsLocked(ctx, a.Addr(), []Account{{User: "nobody", Host: "%"}, fi.Self}, false, nil); err == nil {
		t.Fatal("unlocking an account that does not exist: want an error")
	}
	// The failed unlock above took the kept connection but unlocked dbstate's own first: the login works again.
	if _, err := other.Vars(ctx, a.Addr()); err != nil {
		t.Fatalf("after the unlock: %v", err)
	}
	if used, held := c.releaseLogins(a.Addr()); used != 0 || held != 0 {
		t.Fatalf("reserve still held after the unlock: used %d of %d", used, held)
	}
	if _, err := c.Vars(ctx, a.Addr()); err != nil {
		t.Fatal(err)
	}
}

// TestLockOwnAccountKillsHandshakes: a connection still in its handshake when dbstate's own account is locked
// shows as "unauthenticated user" and may finish logging in as that account (its password checked before the
// lock took) and then write through read_only. The lock's kill takes it too, whoever it is for: here a raw TCP
// connection that never answers the server's greeting. (Before, only the sessions already named as dbstate's
// user went, and at 500 writes/s one such connection wrote to the old primary after promote's last look.)
func TestLockOwnAccountKillsHandshakes(t *testing.T) {
	t.Parallel()
	a := dbtest.Build(t, "a").Get("a")
	c := NewClient(Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword}, 3*time.Second, nil)
	defer c.Close()
	ctx := context.Background()
	fi, err := c.Writers(ctx, a.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	handshakes := func() string {
		return a.QueryString(t, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'unauthenticated user'")
	}
	deadline := time.Now().Add(10 * time.Second)
	for handshakes() == "0" {
		if time.Now().After(deadline) {
			t.Fatal("the raw connection never showed as 'unauthenticated user'")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.LockOwnAccount(ctx, a.Addr(), fi.Self); err != nil {
		t.Fatal(err)
	}
	defer c.SetAccountsLocked(ctx, a.Addr(), []Account{fi.Self}, false, nil)
	if n := handshakes(); n != "0" {
		t.Fatalf("%s connections still in their handshake after the lock's kill", n)
	}
}
