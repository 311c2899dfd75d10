// Package authgate is the module root: importing it registers authgate's
// Caddy modules (the `authgate` app, the http.handlers.authgate handler,
// the admin API and the `caddy authgate` commands), so that
//
//	xcaddy build --with github.com/authgate/authgate
//
// builds Caddy with authgate. The plugin itself is in ./caddymodule.
package authgate

import (
	_ "github.com/authgate/authgate/caddymodule"
)
