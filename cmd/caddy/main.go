// Command caddy is Caddy with its standard modules and authgate: the same
// binary `xcaddy build --with github.com/authgate/authgate` produces.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/authgate/authgate/caddymodule"
)

func main() {
	caddycmd.Main()
}
