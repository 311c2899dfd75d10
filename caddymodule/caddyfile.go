package caddymodule

import (
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// Caddyfile parsing only: the global option block and the handler
// directive of API.md section 2.

func init() {
	httpcaddyfile.RegisterGlobalOption("authgate", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("authgate", parseHandlerDirective)
	// Users never write an `order` line: authenticate after basic_auth and
	// before request_header and reverse_proxy.
	httpcaddyfile.RegisterDirectiveOrder("authgate", httpcaddyfile.After, "basic_auth")
}

// parseGlobalOption parses
//
//	authgate {
//		db          <path>
//		store       bbolt|etcd { ... }   (see unmarshalStore)
//		issuer      <iss>
//		audience    <aud>
//		access_ttl  <duration>
//		refresh_ttl <duration>
//		signing_alg EdDSA|ES256|RS256|HS256
//		lockout     <failures> <duration>
//		session_limit <n>
//		cache_entries <n>
//		password_min_length <n>
//	}
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("authgate: the global option may appear only once")
	}
	var app App
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "authgate", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile sets up the app from the global option block.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "db":
			a.DB, err = oneArg(d)
		case "store":
			if a.Store != nil {
				return d.Err("store may appear only once")
			}
			a.Store, err = unmarshalStore(d)
		case "issuer":
			a.Issuer, err = oneArg(d)
		case "audience":
			a.Audience, err = oneArg(d)
		case "access_ttl":
			a.AccessTTL, err = durationArg(d)
		case "refresh_ttl":
			a.RefreshTTL, err = durationArg(d)
		case "signing_alg":
			a.SigningAlg, err = oneArg(d)
			if err == nil && !validAlg(a.SigningAlg) {
				err = d.Errf("signing_alg %q: want EdDSA, ES256, RS256 or HS256", a.SigningAlg)
			}
		case "lockout":
			a.LockoutAttempts, a.LockoutDuration, err = lockoutArgs(d)
		case "session_limit":
			var s string
			if s, err = oneArg(d); err == nil {
				a.SessionLimit, err = strconv.Atoi(s)
				if err != nil || a.SessionLimit < 1 {
					err = d.Errf("session_limit %q: want a positive whole number", s)
				}
			}
		case "cache_entries":
			var s string
			if s, err = oneArg(d); err == nil {
				a.CacheEntries, err = strconv.ParseInt(s, 10, 64)
				if err != nil || a.CacheEntries < 1 {
					err = d.Errf("cache_entries %q: want a positive whole number", s)
				}
			}
		case "password_min_length":
			var s string
			if s, err = oneArg(d); err == nil {
				a.PasswordMinLength, err = strconv.Atoi(s)
				if err != nil || a.PasswordMinLength < 1 {
					err = d.Errf("password_min_length %q: want a positive whole number", s)
				}
			}
		default:
			err = d.Errf("unknown authgate option %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func validAlg(alg string) bool {
	switch alg {
	case "EdDSA", "ES256", "RS256", "HS256":
		return true
	}
	return false
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.Errf("%s takes exactly one argument", name)
	}
	return args[0], nil
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	s, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, d.Errf("%s %q: want a positive duration like 24h", name, s)
	}
	return caddy.Duration(dur), nil
}

func lockoutArgs(d *caddyfile.Dispenser) (int, caddy.Duration, error) {
	args := d.RemainingArgs()
	if len(args) != 2 {
		return 0, 0, d.Err("lockout takes two arguments: <failures> <duration>, e.g. lockout 5 5m")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return 0, 0, d.Errf("lockout failures %q: want a positive whole number", args[0])
	}
	dur, err := caddy.ParseDuration(args[1])
	if err != nil || dur <= 0 {
		return 0, 0, d.Errf("lockout duration %q: want a positive duration like 5m", args[1])
	}
	return n, caddy.Duration(dur), nil
}

// parseHandlerDirective parses
//
//	authgate {
//		api plentymarkets|babel <prefix>
//		jwks <path>
//		allow <path patterns...>
//		require <path patterns...> [roles <role>...] [methods <method>...]
//		api_key_header <name>
//		header_prefix <prefix>
//		forward_credentials
//		health <path>
//		browser <prefix> {
//			idle     <duration>
//			lifetime <duration>
//			template <file>
//		}
//	}
func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var handler Handler
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return &handler, err
}

// UnmarshalCaddyfile sets up the handler from the directive block.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "api":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Err("api takes two arguments: <plentymarkets|babel> <prefix>")
			}
			if args[0] != "plentymarkets" && args[0] != "babel" {
				return d.Errf("api %q: unknown dialect (want plentymarkets or babel)", args[0])
			}
			if !strings.HasPrefix(args[1], "/") {
				return d.Errf("api prefix %q must start with /", args[1])
			}
			h.APIs = append(h.APIs, APIMount{Dialect: args[0], Prefix: strings.TrimSuffix(args[1], "/")})
		case "jwks":
			h.JWKS, err = oneArg(d)
			if err == nil && !strings.HasPrefix(h.JWKS, "/") {
				err = d.Errf("jwks path %q must start with /", h.JWKS)
			}
		case "allow":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Err("allow takes one or more path patterns")
			}
			for _, a := range args {
				if !strings.HasPrefix(a, "/") && a != "*" {
					return d.Errf("allow pattern %q must start with /", a)
				}
			}
			h.Allow = append(h.Allow, args...)
		case "require":
			var rule RequireRule
			if rule, err = requireArgs(d); err == nil {
				h.Require = append(h.Require, rule)
			}
		case "api_key_header":
			h.APIKeyHeader, err = oneArg(d)
			if err == nil {
				if why := badKeyHeader(h.APIKeyHeader); why != "" {
					err = d.Errf("api_key_header %q: %s", h.APIKeyHeader, why)
				}
			}
		case "health":
			h.Health, err = oneArg(d)
			if err == nil && !strings.HasPrefix(h.Health, "/") {
				err = d.Errf("health path %q must start with /", h.Health)
			}
		case "browser":
			if h.Browser != nil {
				return d.Err("browser may appear only once")
			}
			h.Browser, err = unmarshalBrowser(d)
		case "header_prefix":
			h.HeaderPrefix, err = oneArg(d)
		case "forward_credentials":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.ForwardCredentials = true
		default:
			err = d.Errf("unknown authgate subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalBrowser parses `browser <prefix> [{ idle, lifetime, template }]`.
func unmarshalBrowser(d *caddyfile.Dispenser) (*BrowserConfig, error) {
	args := d.RemainingArgs()
	if len(args) != 1 || !strings.HasPrefix(args[0], "/") || args[0] == "/" {
		return nil, d.Err("browser takes one prefix below the site root, e.g. browser /auth")
	}
	c := &BrowserConfig{Prefix: strings.TrimSuffix(args[0], "/")}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "idle":
			c.Idle, err = durationArg(d)
		case "lifetime":
			c.Lifetime, err = durationArg(d)
		case "template":
			c.Template, err = oneArg(d)
		default:
			err = d.Errf("unknown browser option %q (want idle, lifetime or template)", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// requireArgs parses `require <path patterns...> [roles <role>...]
// [methods <method>...]`: patterns up to the first keyword, then each
// keyword at most once, in either order, with at least one value. A role
// named "roles" or "methods" cannot be written here (JSON can).
func requireArgs(d *caddyfile.Dispenser) (RequireRule, error) {
	var rule RequireRule
	args := d.RemainingArgs()
	if len(args) == 0 {
		return rule, d.Err("require takes path patterns, then roles <role>... and/or methods <method>...")
	}
	keyword := "" // the list being read: "", "roles" or "methods"
	var list *[]string
	for _, a := range args {
		switch {
		case a == "roles" || a == "methods":
			if list != nil && len(*list) == 0 {
				return rule, d.Errf("require: %s needs at least one value", keyword)
			}
			keyword, list = a, &rule.Roles
			if a == "methods" {
				list = &rule.Methods
			}
			if len(*list) > 0 {
				return rule, d.Errf("require: %s given twice", a)
			}
		case list == nil:
			if !strings.HasPrefix(a, "/") && a != "*" {
				return rule, d.Errf("require pattern %q must start with / (conditions start with the word roles or methods)", a)
			}
			rule.Paths = append(rule.Paths, a)
		default:
			*list = append(*list, a)
		}
	}
	if list != nil && len(*list) == 0 {
		return rule, d.Errf("require: %s needs at least one value", keyword)
	}
	rule, err := checkRequireRule(rule)
	if err != nil {
		return rule, d.Err(err.Error())
	}
	return rule, nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
