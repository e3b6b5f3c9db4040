package schemasync

import (
	"fmt"
	"strings"

	"github.com/evenkeel/evenkeel/schemasync/version"
)

// Version is a strict X.Y.Z schema version (the one rule, in package version, that the client and the
// canary use too). Versions compare numerically, so 1.10.0 is above 1.9.0.
type Version = version.Version

// ErrBadVersion is wrapped by every error from ParseVersion.
var ErrBadVersion = version.ErrBad

// ParseVersion parses a strict X.Y.Z version: three decimal numbers without signs, spaces, leading zeros
// (except 0 itself) or suffixes, each at most 4294967295.
func ParseVersion(s string) (Version, error) { return version.Parse(s) }

// MustParseVersion is ParseVersion for constants in tests and examples; it panics on a bad version.
func MustParseVersion(s string) Version { return version.MustParse(s) }

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
