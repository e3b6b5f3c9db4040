package dbstate

import "testing"

// Event names and definers are outside text: quoted, or refused.
func TestAlterEventSQL(t *testing.T) {
	for _, tc := range []struct {
		name   string
		e      Event
		enable bool
		want   string
	}{
		{"plain", Event{"test", "tick", "root@localhost"}, false, "ALTER DEFINER='root'@'localhost' EVENT `test`.`tick` DISABLE ON SLAVE"},
		{"enable", Event{"test", "tick", "root@localhost"}, true, "ALTER DEFINER='root'@'localhost' EVENT `test`.`tick` ENABLE"},
		{"backquote and space", Event{"te`st", "a `b", "root@localhost"}, true, "ALTER DEFINER='root'@'localhost' EVENT `te``st`.`a ``b` ENABLE"},
		{"quote in definer", Event{"test", "x", "o'neil@%"}, true, "ALTER DEFINER='o\\'neil'@'%' EVENT `test`.`x` ENABLE"},
		{"at in user", Event{"test", "x", "a@b@h"}, true, "ALTER DEFINER='a@b'@'h' EVENT `test`.`x` ENABLE"},
		{"no definer host", Event{"test", "x", "root"}, true, ""},
		{"NUL in name", Event{"test", "x\x00; DROP", "root@localhost"}, true, ""},
		{"empty name", Event{"test", "", "root@localhost"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := alterEventSQL(tc.e, tc.enable)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("accepted: %s", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
