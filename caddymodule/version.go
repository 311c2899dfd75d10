package caddymodule

import (
	"runtime/debug"
	"strings"
)

// modulePath is authgate's Go module.
const modulePath = "github.com/authgate/authgate"

// Version is authgate's version as the binary records it. Built with
// xcaddy (or any main that requires authgate), it is the required
// module's version, which `caddy list-modules --versions` shows beside
// authgate's modules too. Built inside this repository, authgate is the
// main module, which Go records as "(devel)" and Caddy's list does not
// show; the VCS revision follows when Go stamped one.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range bi.Deps {
		if dep.Path == modulePath {
			return dep.Version
		}
	}
	if bi.Main.Path != modulePath {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && !strings.Contains(v, s.Value[:min(12, len(s.Value))]) {
			v += " " + s.Value[:min(12, len(s.Value))]
		}
	}
	return v
}
