package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
)

// How a `caddy authgate` command reaches the admin routes (an
// admin.Client): over HTTP to a running server's admin endpoint, or, with
// --db, to the same routes served in-process on a store file opened
// directly.

// withClient runs a command against the admin API: --db opens the file
// directly (a stopped server), otherwise the running server's admin
// endpoint is used, found as `caddy reload` finds it (--address, else the
// admin address in --config, else Caddy's default).
func withClient(run func(cmd *cobra.Command, c *admin.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		create, _ := cmd.Flags().GetBool("create")
		if path, _ := cmd.Flags().GetString("db"); path != "" {
			if err := checkStoreFile(path, create); err != nil {
				return err
			}
			st, err := bbolt.Open(path, bbolt.Options{})
			if err != nil {
				if errors.Is(err, store.ErrLocked) {
					return fmt.Errorf("%w: a running server holds it; leave out --db to go through its admin endpoint", err)
				}
				return err
			}
			defer st.Close()
			return run(cmd, localClient(st, path), args)
		}
		if create {
			return errors.New("--create goes with --db <path>: a running server's store exists already")
		}
		c, err := remoteClient(cmd)
		if err != nil {
			return err
		}
		return run(cmd, c, args)
	}
}

// checkStoreFile refuses a --db path that names no file, unless create
// is set: bbolt would make a new, empty store there, and a mistyped path
// would then seem to hold no users at all.
func checkStoreFile(path string, create bool) error {
	info, err := os.Stat(path)
	switch {
	case err == nil && info.IsDir():
		return fmt.Errorf("--db %s is a directory: give the store file (e.g. %s)", path, filepath.Join(path, "authgate.db"))
	case err == nil || create:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("--db %s: no store file there; check the path, or add --create to make a new store", path)
	}
	return fmt.Errorf("--db %s: %w", path, err)
}

// localClient serves the admin routes in-process on st.
func localClient(st store.Store, path string) *admin.Client {
	return &admin.Client{Do: admin.InProcess(localHandler(st)), Where: path, Store: st}
}

// localHandler is the admin routes on a store no server runs on: the
// signing key rotates in the store only, and the configuration is
// unknown, so its algorithm is too and the password policy is the
// default one (admin.DefaultMinPasswordLength).
func localHandler(st store.Store) *admin.Handler {
	b := admin.Backend{Ops: admin.Ops{Store: st, Now: time.Now}, Caddyfile: caddyfileAdapter{}}
	return admin.NewHandler(func() (admin.Backend, error) { return b, nil })
}

// remoteClient talks to the admin endpoint of a running server.
func remoteClient(cmd *cobra.Command) (*admin.Client, error) {
	address, _ := cmd.Flags().GetString("address")
	configFile, _ := cmd.Flags().GetString("config")
	adapter, _ := cmd.Flags().GetString("adapter")
	var config []byte
	if address == "" {
		// As `caddy reload`: --config, or a Caddyfile in the current
		// directory, may name the admin address.
		var err error
		if config, configFile, _, err = caddycmd.LoadConfig(configFile, adapter); err != nil {
			return nil, fmt.Errorf("reading the config for the admin address: %v", err)
		}
	}
	addr, err := caddycmd.DetermineAdminAPIAddress(address, config, configFile, adapter)
	if err != nil {
		return nil, fmt.Errorf("finding the admin endpoint: %v", err)
	}
	na, err := caddy.ParseNetworkAddress(addr)
	if err != nil || na.PortRangeSize() > 1 {
		return nil, fmt.Errorf("admin address %q: want one host:port or unix/path", addr)
	}
	dialAddr := na.JoinHostPort(0)
	origin := "http://" + dialAddr
	if na.IsUnixNetwork() {
		// A unix socket may carry permission bits after '|'.
		dialAddr, _, _ = strings.Cut(na.Host, "|")
		origin = "http://127.0.0.1"
	}
	client := &http.Client{
		Timeout: 5 * time.Minute, // a backup of a large store takes a while
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, na.Network, dialAddr)
			},
		},
	}
	return &admin.Client{
		Where: "the admin endpoint " + addr,
		Do: func(r *http.Request) (*http.Response, error) {
			r.URL.Host = strings.TrimPrefix(origin, "http://")
			r.Host = r.URL.Host
			if !na.IsUnixNetwork() {
				r.Header.Set("Origin", origin)
			}
			resp, err := client.Do(r)
			if err != nil {
				return nil, fmt.Errorf("no server answered at the admin endpoint %s (%v); is Caddy running? For a stopped server use --db <path>", addr, unwrapURLError(err))
			}
			return resp, nil
		},
	}, nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// addClientFlags adds the flags that choose where a command goes.
func addClientFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.String("db", "", "work on this store file directly (the server must be stopped)")
	f.Bool("create", false, "with --db: make a new store if the file does not exist")
	f.String("address", "", "the running server's admin endpoint (default: as caddy reload finds it)")
	f.StringP("config", "c", "", "find the admin endpoint in this config file")
	f.StringP("adapter", "a", "", "the adapter of --config")
}

// openConfiguredStore opens the store the configuration's authgate options
// name (found as `caddy run` finds it: --config, else ./Caddyfile), for a
// command that works on the store itself (migrate). It returns the store
// and where it is, for messages.
func openConfiguredStore(cmd *cobra.Command) (store.Store, string, error) {
	configFile, _ := cmd.Flags().GetString("config")
	adapter, _ := cmd.Flags().GetString("adapter")
	config, configFile, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return nil, "", fmt.Errorf("reading the config: %v", err)
	}
	if len(config) == 0 {
		return nil, "", fmt.Errorf("no config: give --config <Caddyfile> naming the target store")
	}
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return nil, "", fmt.Errorf("reading %s: %v", configFile, err)
	}
	raw, ok := cfg.Apps["authgate"]
	if !ok {
		return nil, "", fmt.Errorf("%s has no authgate options", configFile)
	}
	var app App
	if err := json.Unmarshal(raw, &app); err != nil {
		return nil, "", fmt.Errorf("the authgate options of %s: %v", configFile, err)
	}
	app.logger = zap.NewNop()
	app.applyDefaults()
	kind, identity, err := app.storeBackend()
	if err != nil {
		return nil, "", err
	}
	st, err := app.openStore(kind)
	if err != nil {
		return nil, "", fmt.Errorf("opening %s: %w", identity, err)
	}
	return st, identity, nil
}
