package version

import "testing"

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"1.2.3", true}, {"0.0.0", true}, {"4294967295.0.0", true}, {"10.20.30", true},
		{"01.2.3", false}, {"1.02.3", false}, {"1.2", false}, {"1.2.3.4", false}, {"v1.2.3", false},
		{"1.2.3 ", false}, {"+1.2.3", false}, {"4294967296.0.0", false}, {"", false}, {"1..3", false},
	} {
		if _, err := Parse(tt.in); (err == nil) != tt.ok {
			t.Errorf("Parse(%q): %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
	if !MustParse("1.10.0").Less(MustParse("1.9.0")) == true {
		return
	}
	t.Error("1.10.0 below 1.9.0")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.2.3", "01.2.3", "1.2", "0.0.0", "99999999999.1.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Parse(s)
		if err != nil {
			return
		}
		if v.String() != s {
			t.Fatalf("Parse(%q) = %s: not its canonical form", s, v)
		}
	})
}
