// Package buildinfo tells the build's version, for the binaries' "version" commands and the libraries'
// _build_info metrics (libraries must not import internal/cli, which is for the binaries).
package buildinfo

import "runtime/debug"

// version is set at link time: -ldflags "-X github.com/evenkeel/evenkeel/internal/buildinfo.version=v1.2.3".
var version string

// Version is the build's version: the link-time value, else the module version or VCS revision, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return s.Value[:12]
			}
		}
	}
	return "devel"
}
