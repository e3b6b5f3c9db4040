package dbstate

import (
	"context"
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
