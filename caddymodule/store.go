package caddymodule

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
	"github.com/authgate/authgate/store/etcd"
)

// The store backend a configuration names (API.md sections 2 and 8): one
// bbolt file (the default, `db <path>`), or an etcd cluster that any number
// of gateways share (`store etcd { ... }`).

// StoreConfig chooses the backend.
type StoreConfig struct {
	// Backend is "bbolt" (default) or "etcd".
	Backend string `json:"backend,omitempty"`
	// Path is the bbolt file (bbolt only; App.DB is its shorthand).
	Path string `json:"path,omitempty"`
	// Etcd configures the etcd backend.
	Etcd *EtcdConfig `json:"etcd,omitempty"`
}

// EtcdConfig is `store etcd { ... }`.
type EtcdConfig struct {
	// Endpoints are the cluster's client URLs.
	Endpoints []string `json:"endpoints"`
	// Prefix starts every key authgate writes. Default /authgate/.
	Prefix string `json:"prefix,omitempty"`
	// TLSCert, TLSKey and TLSCA are PEM files for client TLS; empty for
	// none (TLSCA empty: the system's roots).
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`
	TLSCA   string `json:"tls_ca,omitempty"`
	// Username and Password authenticate to etcd. The password is a
	// placeholder ({env.AUTHGATE_ETCD_PASSWORD} when left out), resolved
	// when the store opens: no password is ever written in a config.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// MaxStale is how long cached decisions outlive a lost watch before
	// the gateway fails closed. Default 5s.
	MaxStale caddy.Duration `json:"max_stale,omitempty"`
}

// defaultEtcdPassword is where the password comes from when only a
// username is configured.
const defaultEtcdPassword = "{env.AUTHGATE_ETCD_PASSWORD}"

// storeBackend is the backend a configuration names, and its identity: the
// key the open store is shared under across reloads.
func (a *App) storeBackend() (kind, identity string, err error) {
	if a.Store == nil || a.Store.Backend == "" || a.Store.Backend == "bbolt" {
		path := a.DB
		if a.Store != nil && a.Store.Path != "" {
			path = a.Store.Path
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return "", "", fmt.Errorf("authgate: db path %q: %v", path, err)
		}
		return "bbolt", "bbolt:" + abs, nil
	}
	if a.Store.Backend != "etcd" {
		return "", "", fmt.Errorf("authgate: store %q: want bbolt or etcd", a.Store.Backend)
	}
	c := a.Store.Etcd
	if c == nil || len(c.Endpoints) == 0 {
		return "", "", errors.New("authgate: store etcd needs at least one endpoint")
	}
	return "etcd", "etcd:" + strings.Join(c.Endpoints, ",") + "|" + c.prefix(), nil
}

func (c *EtcdConfig) prefix() string {
	if c.Prefix == "" {
		return "/authgate/"
	}
	return c.Prefix
}

// openStore opens the configured backend.
func (a *App) openStore(kind string) (store.Store, error) {
	if kind == "bbolt" {
		path := a.DB
		if a.Store != nil && a.Store.Path != "" {
			path = a.Store.Path
		}
		abs, _ := filepath.Abs(path)
		return bbolt.Open(abs, bbolt.Options{CacheEntries: a.CacheEntries, AttemptEntries: int(a.CacheEntries)})
	}
	c := a.Store.Etcd
	opts := etcd.Options{
		Endpoints: c.Endpoints, Prefix: c.prefix(),
		TLS:      etcd.TLS{CertFile: c.TLSCert, KeyFile: c.TLSKey, CAFile: c.TLSCA},
		Username: c.Username, MaxStale: time.Duration(c.MaxStale),
		Logger: a.logger.Sugar(),
	}
	if c.Username != "" {
		password := c.Password
		if password == "" {
			password = defaultEtcdPassword
		}
		opts.Password = caddy.NewReplacer().ReplaceKnown(password, "")
		if opts.Password == "" {
			return nil, fmt.Errorf("authgate: store etcd: username %q given, but %s is empty", c.Username, password)
		}
	}
	return etcd.Open(opts)
}

// unmarshalStore parses
//
//	store bbolt {
//		path <file>
//	}
//	store etcd {
//		endpoints <url...>
//		prefix    <prefix>
//		tls       <cert> <key> <ca>
//		username  <u>
//		password  {env.AUTHGATE_ETCD_PASSWORD}
//		max_stale <duration>
//	}
func unmarshalStore(d *caddyfile.Dispenser) (*StoreConfig, error) {
	args := d.RemainingArgs()
	if len(args) != 1 {
		return nil, d.Err("store takes one argument: bbolt or etcd, then a block")
	}
	c := &StoreConfig{Backend: args[0]}
	switch c.Backend {
	case "bbolt":
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if d.Val() != "path" {
				return nil, d.Errf("unknown store bbolt option %q (want path)", d.Val())
			}
			var err error
			if c.Path, err = oneArg(d); err != nil {
				return nil, err
			}
		}
		return c, nil
	case "etcd":
	default:
		return nil, d.Errf("store %q: want bbolt or etcd", c.Backend)
	}
	e := &EtcdConfig{}
	c.Etcd = e
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "endpoints":
			e.Endpoints = d.RemainingArgs()
			if len(e.Endpoints) == 0 {
				return nil, d.Err("endpoints takes one or more client URLs, e.g. https://10.0.0.1:2379")
			}
			for _, ep := range e.Endpoints {
				if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
					return nil, d.Errf("endpoint %q: want a URL such as https://10.0.0.1:2379", ep)
				}
			}
		case "prefix":
			e.Prefix, err = oneArg(d)
			if err == nil && (!strings.HasPrefix(e.Prefix, "/") || !strings.HasSuffix(e.Prefix, "/")) {
				err = d.Errf("prefix %q must start and end with /, e.g. /authgate/", e.Prefix)
			}
		case "tls":
			tls := d.RemainingArgs()
			if len(tls) != 3 {
				return nil, d.Err("tls takes three files: <cert> <key> <ca>")
			}
			e.TLSCert, e.TLSKey, e.TLSCA = tls[0], tls[1], tls[2]
		case "username":
			e.Username, err = oneArg(d)
		case "password":
			e.Password, err = oneArg(d)
			if err == nil && !strings.HasPrefix(e.Password, "{") {
				err = d.Err("password must be a placeholder such as {env.AUTHGATE_ETCD_PASSWORD}: no password is written in a config")
			}
		case "max_stale":
			e.MaxStale, err = durationArg(d)
		default:
			err = d.Errf("unknown store etcd option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	if len(e.Endpoints) == 0 {
		return nil, d.Err("store etcd needs endpoints")
	}
	return c, nil
}
