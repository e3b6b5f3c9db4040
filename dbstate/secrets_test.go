package dbstate_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/evenkeel/evenkeel/dbstate"
)

// Passwords stay out of every way a value can be printed: %v, %s, %+v, %#v, slog and JSON.
func TestSecretsStayOutOfFormatting(t *testing.T) {
	const pw = "s3cret-pw"
	creds := dbstate.Credentials{User: "repl", Password: pw}
	cm := dbstate.ChangeMaster{Host: "db1", Port: 3306, User: "repl", Password: pw, DemoteToSlave: true}
	opts := dbstate.SwitchoverOptions{Primary: "db1:3306", Candidate: "db2:3306", Replication: creds}
	values := map[string]any{"Credentials": creds, "*Credentials": &creds, "ChangeMaster": cm, "*ChangeMaster": &cm, "SwitchoverOptions": opts}
	for name, v := range values {
		var out []string
		for _, verb := range []string{"%v", "%s", "%+v", "%#v"} {
			out = append(out, fmt.Sprintf(verb, v))
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var sl strings.Builder
		slog.New(slog.NewTextHandler(&sl, nil)).Info("x", "v", v)
		slog.New(slog.NewJSONHandler(&sl, nil)).Info("x", "v", v)
		out = append(out, string(js), sl.String())
		for _, s := range out {
			if strings.Contains(s, pw) {
				t.Errorf("%s: printed with the password: %s", name, s)
			}
		}
		t.Logf("%s: %s", name, strings.Join(out[:4], " | "))
	}
	if got := fmt.Sprintf("%#v", cm); !strings.Contains(got, `Password:"<redacted>"`) || !strings.Contains(got, `Host:"db1"`) {
		t.Errorf("%%#v of ChangeMaster: %s", got)
	}
	if got := fmt.Sprint(cm); got != cm.Redacted() {
		t.Errorf("%%v of ChangeMaster = %q, want the redacted statement", got)
	}
}
