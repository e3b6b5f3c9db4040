package schemasync

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is a strict X.Y.Z schema version. Versions compare numerically, so 1.10.0 is above 1.9.0.
type Version struct {
	Major, Minor, Patch uint32
}

// ErrBadVersion is wrapped by every error from ParseVersion.
var ErrBadVersion = errors.New("not a strict X.Y.Z version")

// ParseVersion parses a strict X.Y.Z version: three decimal numbers without signs, spaces, leading zeros
// (except 0 itself) or suffixes, each at most 4294967295.
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
	}
	var n [3]uint32
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') {
			return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
		}
		for _, c := range []byte(p) {
			if c < '0' || c > '9' {
				return Version{}, fmt.Errorf("%w: %q", ErrBadVersion, s)
			}
		}
		u, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return Version{}, fmt.Errorf("%w: %q: number out of range", ErrBadVersion, s)
		}
		n[i] = uint32(u)
	}
	return Version{n[0], n[1], n[2]}, nil
}

// MustParseVersion is ParseVersion for constants in tests and examples; it panics on a bad version.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// Compare returns -1, 0 or +1 as v is below, equal to or above o.
func (v Version) Compare(o Version) int {
	switch {
	case v.Major != o.Major:
		return cmpU32(v.Major, o.Major)
	case v.Minor != o.Minor:
		return cmpU32(v.Minor, o.Minor)
	default:
		return cmpU32(v.Patch, o.Patch)
	}
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Less reports whether v is below o.
func (v Version) Less(o Version) bool { return v.Compare(o) < 0 }

func (v Version) String() string {
	return strconv.FormatUint(uint64(v.Major), 10) + "." + strconv.FormatUint(uint64(v.Minor), 10) + "." +
		strconv.FormatUint(uint64(v.Patch), 10)
}

// MarshalText encodes v as "X.Y.Z", so versions appear as strings in JSON.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses "X.Y.Z".
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// versionEntry classifies a directory entry name. It returns the version for X.Y.Z, X.Y.Z.yaml and X.Y.Z.json;
// versionLike=true with an error for names that look like versions but are not strict (1.2.yaml, 01.2.3,
// 1.2.3.4); and neither for everything else (current.yaml, latest, CHANGELOG.md, stray files), which is ignored.
func versionEntry(name string) (v Version, ok bool, err error) {
	base := name
	for _, ext := range []string{".yaml", ".json"} {
		if strings.HasSuffix(base, ext) {
			base = strings.TrimSuffix(base, ext)
			break
		}
	}
	if base == "" || strings.Trim(base, "0123456789.") != "" || strings.Trim(base, ".") == "" ||
		!strings.ContainsAny(base, "0123456789") || !strings.Contains(base, ".") {
		return Version{}, false, nil
	}
	v, err = ParseVersion(base)
	if err != nil {
		return Version{}, false, fmt.Errorf("version-like name %q: %w", name, err)
	}
	return v, true, nil
}

// sortVersions sorts ascending in place.
func sortVersions(vs []Version) {
	// Insertion sort: version lists are short (a handful per schema) and this allocates nothing.
	for i := 1; i < len(vs); i++ {
		for j := i; j > 0 && vs[j].Less(vs[j-1]); j-- {
			vs[j], vs[j-1] = vs[j-1], vs[j]
		}
	}
}
