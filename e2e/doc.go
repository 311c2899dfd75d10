// Package e2e holds authgate's end-to-end tests. They build the real Caddy
// binary (go build ./cmd/caddy) once, run it on loopback in front of a
// recording upstream, administer it with `caddy authgate ...`, and check
// what clients and the upstream see: statuses, headers, bodies, restarts
// and reloads.
//
// Run with: go test ./e2e -count=1 -v
//
// Everything lives in temporary directories (HOME, XDG_DATA_HOME and
// XDG_CONFIG_HOME are redirected), every wait is bounded, and tokens, keys
// and passwords are never printed in full.
package e2e
