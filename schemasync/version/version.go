// Package version is the one strict X.Y.Z schema version rule, shared by schemasync, its client and the
// canary: three decimal numbers without signs, spaces, leading zeros (except 0 itself) or suffixes, each at
// most 4294967295, compared numerically (1.10.0 is above 1.9.0). "01.2.3" is not a version anywhere.
package version

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/evenkeel/evenkeel/internal/safetext"
)

// Version is a strict X.Y.Z schema version.
type Version struct {
	Major, Minor, Patch uint32
}

// ErrBad is wrapped by every error from Parse.
var ErrBad = errors.New("not a strict X.Y.Z version")

// maxLen is the length of the longest strict version, "4294967295.4294967295.4294967295".
const maxLen = 32

// Parse parses a strict X.Y.Z version. Its error quotes s escaped and bounded, whatever s holds.
func Parse(s string) (Version, error) {
	bad := func(why string) (Version, error) {
		return Version{}, fmt.Errorf("%w: %s%s", ErrBad, safetext.Quote(safetext.Bound(s, 48)), why)
	}
	if len(s) > maxLen {
		return bad("")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return bad("")
	}
	var n [3]uint32
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') {
			return bad("")
		}
		for _, c := range []byte(p) {
			if c < '0' || c > '9' {
				return bad("")
			}
		}
		u, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return bad(": number out of range")
		}
		n[i] = uint32(u)
	}
	return Version{n[0], n[1], n[2]}, nil
}

// Valid reports whether s is a strict X.Y.Z version.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// MustParse is Parse for constants in tests and examples; it panics on a bad version.
func MustParse(s string) Version {
	v, err := Parse(s)
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

func (v Version) String() string { return string(v.Append(nil)) }

// Append appends "X.Y.Z" to b.
func (v Version) Append(b []byte) []byte {
	b = strconv.AppendUint(b, uint64(v.Major), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, uint64(v.Minor), 10)
	b = append(b, '.')
	return strconv.AppendUint(b, uint64(v.Patch), 10)
}

// MarshalText encodes v as "X.Y.Z", so versions appear as strings in JSON.
func (v Version) MarshalText() ([]byte, error) { return v.Append(nil), nil }

// UnmarshalText parses "X.Y.Z".
func (v *Version) UnmarshalText(b []byte) error {
	p, err := Parse(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
