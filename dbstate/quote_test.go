package dbstate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/evenkeel/evenkeel/dbstate/dbtest"
)

// TestChangeMasterLiteralOnServer sends CHANGE MASTER statements with hostile user names to a real server, also
// with NO_BACKSLASH_ESCAPES in the global sql_mode, and reads the user back from SHOW SLAVE STATUS.
func TestChangeMasterLiteralOnServer(t *testing.T) {
	t.Parallel()
	a := dbtest.Build(t, "a").Get("a")
	c := NewClient(Credentials{User: dbtest.AdminUser, Password: dbtest.AdminPassword}, 3*time.Second, nil)
	defer c.Close()
	ctx := context.Background()
	users := []string{`plain`, `o'brien`, `back\slash`, `quote\'`, `x', MASTER_HOST='evil`, `ünï`}
	for _, mode := range []string{"", "NO_BACKSLASH_ESCAPES"} {
		a.Exec(t, "SET GLOBAL sql_mode='"+mode+"'")
		for _, u := range users {
			t.Run(mode+" "+u, func(t *testing.T) {
				cm := ChangeMaster{Host: "127.0.0.1", Port: 1, User: u, Password: u + `'"\`}
				if err := c.changeMaster(ctx, a.Addr(), cm, false); err != nil {
					t.Fatal(err)
				}
				s := a.SlaveStatus(t)
				if s["Master_User"] != u || s["Master_Host"] != "127.0.0.1" {
					t.Fatalf("Master_User %q Master_Host %q, want %q", s["Master_User"], s["Master_Host"], u)
				}
			})
		}
	}
	a.Exec(t, "RESET SLAVE ALL", "SET GLOBAL sql_mode=DEFAULT")
	// Control characters in a user name are refused before anything is sent.
	if err := c.changeMaster(ctx, a.Addr(), ChangeMaster{Host: "127.0.0.1", Port: 1, User: "new\nline"}, false); !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("err = %v, want ErrInvalidValue", err)
	}
}
