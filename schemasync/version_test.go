package schemasync

import (
	"encoding/json"
	"errors"
	"math/rand"
	"sort"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Version
		ok   bool
	}{
		{"simple", "1.2.3", Version{Major: 1, Minor: 2, Patch: 3}, true},
		{"zeros", "0.0.0", Version{Major: 0, Minor: 0, Patch: 0}, true},
		{"two-digit minor", "1.10.0", Version{Major: 1, Minor: 10, Patch: 0}, true},
		{"max uint32", "4294967295.4294967295.4294967295", Version{Major: 4294967295, Minor: 4294967295, Patch: 4294967295}, true},
		{"overflow major", "4294967296.0.0", Version{}, false},
		{"overflow patch", "0.0.4294967296", Version{}, false},
		{"overflow huge", "1.2.99999999999999999999999", Version{}, false},
		{"leading zero major", "01.2.3", Version{}, false},
		{"leading zero minor", "1.02.3", Version{}, false},
		{"leading zero patch", "1.2.03", Version{}, false},
		{"double zero", "00.0.0", Version{}, false},
		{"plus sign", "+1.2.3", Version{}, false},
		{"minus sign", "1.-2.3", Version{}, false},
		{"leading space", " 1.2.3", Version{}, false},
		{"trailing space", "1.2.3 ", Version{}, false},
		{"inner space", "1. 2.3", Version{}, false},
		{"trailing newline", "1.2.3\n", Version{}, false},
		{"two parts", "1.2", Version{}, false},
		{"four parts", "1.2.3.4", Version{}, false},
		{"one part", "1", Version{}, false},
		{"empty", "", Version{}, false},
		{"empty major", ".2.3", Version{}, false},
		{"empty minor", "1..3", Version{}, false},
		{"empty patch", "1.2.", Version{}, false},
		{"only dots", "..", Version{}, false},
		{"v prefix", "v1.2.3", Version{}, false},
		{"suffix", "1.2.3-rc1", Version{}, false},
		{"build metadata", "1.2.3+build", Version{}, false},
		{"hex", "0x1.2.3", Version{}, false},
		{"arabic-indic digits", "١.٢.٣", Version{}, false},
		{"fullwidth digits", "１.２.３", Version{}, false},
		{"superscript digit", "1.2.³", Version{}, false},
		{"underscore", "1_0.2.3", Version{}, false},
		{"NUL", "1.2.3\x00", Version{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVersion(tt.in)
			if tt.ok {
				if err != nil {
					t.Fatalf("ParseVersion(%q) = %v, want %v", tt.in, err, tt.want)
				}
				if got != tt.want {
					t.Fatalf("ParseVersion(%q) = %v, want %v", tt.in, got, tt.want)
				}
				if got.String() != tt.in {
					t.Fatalf("String() = %q, want %q", got.String(), tt.in)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseVersion(%q) = %v, want an error", tt.in, got)
			}
			if !errors.Is(err, ErrBadVersion) {
				t.Fatalf("ParseVersion(%q) error %v does not wrap ErrBadVersion", tt.in, err)
			}
			if got != (Version{}) {
				t.Fatalf("ParseVersion(%q) returned %v with an error, want the zero Version", tt.in, got)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		name string
		a, b string
		want int
	}{
		{"equal", "1.2.3", "1.2.3", 0},
		{"numeric minor", "1.10.0", "1.9.0", 1},
		{"numeric patch", "1.0.10", "1.0.9", 1},
		{"numeric major", "10.0.0", "9.0.0", 1},
		{"major beats minor and patch", "2.0.0", "1.99.99", 1},
		{"minor beats patch", "1.2.0", "1.1.999", 1},
		{"patch", "1.2.3", "1.2.4", -1},
		{"zero", "0.0.0", "0.0.1", -1},
		{"max", "4294967295.0.0", "4294967294.4294967295.4294967295", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := MustParseVersion(tt.a), MustParseVersion(tt.b)
			if got := a.Compare(b); got != tt.want {
				t.Errorf("%s.Compare(%s) = %d, want %d", a, b, got, tt.want)
			}
			if got := b.Compare(a); got != -tt.want {
				t.Errorf("%s.Compare(%s) = %d, want %d (antisymmetry)", b, a, got, -tt.want)
			}
			if got := a.Less(b); got != (tt.want < 0) {
				t.Errorf("%s.Less(%s) = %v", a, b, got)
			}
		})
	}
}

func TestSortVersions(t *testing.T) {
	in := []string{"1.10.0", "1.9.0", "2.0.0", "1.99.99", "0.0.1", "1.0.0", "1.0.10", "1.0.9"}
	want := []string{"0.0.1", "1.0.0", "1.0.9", "1.0.10", "1.9.0", "1.10.0", "1.99.99", "2.0.0"}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		rng.Shuffle(len(in), func(a, b int) { in[a], in[b] = in[b], in[a] })
		vs := make([]Version, len(in))
		for j, s := range in {
			vs[j] = MustParseVersion(s)
		}
		sortVersions(vs)
		for j := range vs {
			if vs[j].String() != want[j] {
				t.Fatalf("sortVersions(%v) = %v, want %v", in, vs, want)
			}
		}
	}
	sortVersions(nil) // must not panic
}

func TestVersionText(t *testing.T) {
	for _, s := range []string{"0.0.0", "1.2.3", "1.10.0", "4294967295.4294967295.4294967295"} {
		t.Run(s, func(t *testing.T) {
			v := MustParseVersion(s)
			b, err := v.MarshalText()
			if err != nil || string(b) != s {
				t.Fatalf("MarshalText() = %q, %v; want %q", b, err, s)
			}
			var back Version
			if err := back.UnmarshalText(b); err != nil || back != v {
				t.Fatalf("UnmarshalText(%q) = %v, %v; want %v", b, back, err, v)
			}
			j, err := json.Marshal(struct{ V Version }{v})
			if err != nil || string(j) != `{"V":"`+s+`"}` {
				t.Fatalf("json.Marshal = %s, %v", j, err)
			}
			var out struct{ V Version }
			if err := json.Unmarshal(j, &out); err != nil || out.V != v {
				t.Fatalf("json.Unmarshal(%s) = %v, %v", j, out.V, err)
			}
		})
	}
	t.Run("bad text leaves the value alone", func(t *testing.T) {
		v := Version{Major: 7, Minor: 8, Patch: 9}
		if err := v.UnmarshalText([]byte("1.2")); !errors.Is(err, ErrBadVersion) {
			t.Fatalf("UnmarshalText(1.2) = %v, want ErrBadVersion", err)
		}
		if v != (Version{Major: 7, Minor: 8, Patch: 9}) {
			t.Fatalf("UnmarshalText changed the value to %v on error", v)
		}
	})
}

func TestMustParseVersionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustParseVersion(1.2) did not panic")
		}
	}()
	MustParseVersion("1.2")
}

func TestVersionEntry(t *testing.T) {
	const (
		version = "version"
		ignored = "ignored"
		bad     = "version-like error"
	)
	tests := []struct {
		name string
		kind string
		want Version
	}{
		{"1.2.3", version, Version{Major: 1, Minor: 2, Patch: 3}},
		{"1.2.3.yaml", version, Version{Major: 1, Minor: 2, Patch: 3}},
		{"1.2.3.json", version, Version{Major: 1, Minor: 2, Patch: 3}},
		{"1.10.0", version, Version{Major: 1, Minor: 10, Patch: 0}},
		{"0.0.0.yaml", version, Version{}},
		{"current.yaml", ignored, Version{}},
		{"latest", ignored, Version{}},
		{"latest.yaml", ignored, Version{}},
		{"latest.json", ignored, Version{}},
		{"CHANGELOG.md", ignored, Version{}},
		{"README.md", ignored, Version{}},
		{"foo.yaml", ignored, Version{}},
		{"v1.2.3", ignored, Version{}},
		{"1.2.3.yml", ignored, Version{}},
		{"1.2.3-rc1.yaml", ignored, Version{}},
		{"1.2.3.yaml.bak", ignored, Version{}},
		{".yaml", ignored, Version{}},
		{".json", ignored, Version{}},
		{"123", ignored, Version{}},
		{"123.yaml", ignored, Version{}},
		{"...", ignored, Version{}},
		{".hidden", ignored, Version{}},
		{"1.2.yaml", bad, Version{}},
		{"1.2", bad, Version{}},
		{"01.2.3", bad, Version{}},
		{"01.2.3.yaml", bad, Version{}},
		{"1.2.3.4", bad, Version{}},
		{"1..3", bad, Version{}},
		{"1.2.", bad, Version{}},
		{"1.2.99999999999", bad, Version{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok, err := versionEntry(tt.name)
			switch tt.kind {
			case version:
				if err != nil || !ok || v != tt.want {
					t.Fatalf("versionEntry(%q) = %v, %v, %v; want %v, true, nil", tt.name, v, ok, err, tt.want)
				}
			case ignored:
				if err != nil || ok {
					t.Fatalf("versionEntry(%q) = %v, %v, %v; want it ignored", tt.name, v, ok, err)
				}
			case bad:
				if err == nil || ok {
					t.Fatalf("versionEntry(%q) = %v, %v, %v; want a version-like error", tt.name, v, ok, err)
				}
				if !errors.Is(err, ErrBadVersion) || !strings.Contains(err.Error(), tt.name) {
					t.Fatalf("versionEntry(%q) error %q should wrap ErrBadVersion and name the entry", tt.name, err)
				}
			}
		})
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.2.3", "0.0.0", "1.10.0", "01.2.3", "1..3", "1.2", "1.2.3.4", "+1.2.3", " 1.2.3",
		"4294967295.0.0", "4294967296.0.0", "١.٢.٣", "", "..", "1.2.3\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if !errors.Is(err, ErrBadVersion) {
				t.Fatalf("ParseVersion(%q) error %v does not wrap ErrBadVersion", s, err)
			}
			return
		}
		// Strict: the only accepted spelling is the canonical one.
		if v.String() != s {
			t.Fatalf("ParseVersion(%q) = %v, whose String() is %q", s, v, v.String())
		}
		back, err := ParseVersion(v.String())
		if err != nil || back != v {
			t.Fatalf("re-parse of %q = %v, %v; want %v", v.String(), back, err, v)
		}
		var u Version
		if err := u.UnmarshalText([]byte(s)); err != nil || u != v {
			t.Fatalf("UnmarshalText(%q) = %v, %v", s, u, err)
		}
		if v.Compare(back) != 0 || v.Less(back) {
			t.Fatalf("%v does not compare equal to itself", v)
		}
	})
}

func FuzzVersionEntry(f *testing.F) {
	for _, s := range []string{"1.2.3", "1.2.3.yaml", "1.2.3.json", "current.yaml", "latest", "v1.2.3", "1.2.yaml",
		"01.2.3", "1.2.3.4", "1..3", ".yaml", "...", "1.2.3.yaml.json"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		v, ok, err := versionEntry(name)
		if err != nil {
			if ok {
				t.Fatalf("versionEntry(%q): ok with error %v", name, err)
			}
			if !errors.Is(err, ErrBadVersion) {
				t.Fatalf("versionEntry(%q) error %v does not wrap ErrBadVersion", name, err)
			}
			return
		}
		if !ok {
			if v != (Version{}) {
				t.Fatalf("versionEntry(%q) ignored but returned %v", name, v)
			}
			return
		}
		s := v.String()
		if name != s && name != s+".yaml" && name != s+".json" {
			t.Fatalf("versionEntry(%q) = %v, but the name is not X.Y.Z[.yaml|.json]", name, v)
		}
	})
}

// TestVersionOrderProperty checks Compare against a reference on random versions: it must be a total order
// consistent with numeric comparison of (major, minor, patch).
func TestVersionOrderProperty(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	pick := func() uint32 {
		switch rng.Intn(3) {
		case 0:
			return uint32(rng.Intn(3))
		case 1:
			return uint32(rng.Intn(20))
		}
		return rng.Uint32()
	}
	vs := make([]Version, 300)
	for i := range vs {
		vs[i] = Version{Major: pick(), Minor: pick(), Patch: pick()}
	}
	ref := func(a, b Version) bool {
		if a.Major != b.Major {
			return a.Major < b.Major
		}
		if a.Minor != b.Minor {
			return a.Minor < b.Minor
		}
		return a.Patch < b.Patch
	}
	for _, a := range vs {
		for _, b := range vs {
			if a.Less(b) != ref(a, b) {
				t.Fatalf("%v.Less(%v) = %v, want %v", a, b, a.Less(b), ref(a, b))
			}
		}
	}
	got := append([]Version(nil), vs...)
	sortVersions(got)
	if !sort.SliceIsSorted(got, func(i, j int) bool { return ref(got[i], got[j]) }) {
		t.Fatalf("sortVersions did not sort: %v", got)
	}
}
