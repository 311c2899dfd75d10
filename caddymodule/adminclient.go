package caddymodule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/authgate/authgate/store"
)

// adminClient is how a `caddy authgate` command reaches the admin API: over
// HTTP to a running server's admin endpoint, or, with --db, to the same
// handler served in-process on a store file opened directly.
type adminClient struct {
	// do sends one request; the path is the admin route.
	do func(r *http.Request) (*http.Response, error)
	// st is the opened store with --db; nil when talking to a server.
	st *store.Store
	// where names the target in error messages.
	where string
}

// call sends a JSON request to the admin route path and decodes the JSON
// answer into out (when not nil). An error answer becomes an error with the
// server's message.
func (c *adminClient) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	resp, err := c.send(method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: reading the answer to %s %s: %v", c.where, method, path, err)
	}
	return nil
}

// send makes the request and turns an error status into an error. The
// caller closes the body of a successful response.
func (c *adminClient) send(method, path string, body io.Reader) (*http.Response, error) {
	if secretInURL(path) {
		return nil, errors.New("refusing to send what looks like a key, client secret or token in a URL (Caddy's admin endpoint logs URLs): name keys by their id (key_...), sessions by theirs (ses_...)")
	}
	req, err := http.NewRequest(method, "http://authgate.admin"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil || method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json") // the admin API's write routes take nothing else
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return nil, errors.New(e.Error)
	}
	return nil, fmt.Errorf("%s answered %s %s with HTTP %d: %s", c.where, method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
}

// withClient runs a command against the admin API: --db opens the file
// directly (a stopped server), otherwise the running server's admin
// endpoint is used, found as `caddy reload` finds it (--address, else the
// admin address in --config, else Caddy's default).
func withClient(run func(cmd *cobra.Command, c *adminClient, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		if path, _ := cmd.Flags().GetString("db"); path != "" {
			st, err := store.Open(path, store.Options{})
			if err != nil {
				if errors.Is(err, store.ErrLocked) {
					return fmt.Errorf("%w: a running server holds it; leave out --db to go through its admin endpoint", err)
				}
				return err
			}
			defer st.Close()
			return run(cmd, localClient(st, path), args)
		}
		c, err := remoteClient(cmd)
		if err != nil {
			return err
		}
		return run(cmd, c, args)
	}
}

// localClient serves the admin routes in-process on st.
func localClient(st *store.Store, path string) *adminClient {
	h := newAdminHandler(localBackend(st, time.Now))
	return &adminClient{
		st:    st,
		where: path,
		do: func(r *http.Request) (*http.Response, error) {
			w := newBufferedResponse()
			h.ServeHTTP(w, r)
			return w.response(r), nil
		},
	}
}

// remoteClient talks to the admin endpoint of a running server.
func remoteClient(cmd *cobra.Command) (*adminClient, error) {
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
	return &adminClient{
		where: "the admin endpoint " + addr,
		do: func(r *http.Request) (*http.Response, error) {
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
	f.String("address", "", "the running server's admin endpoint (default: as caddy reload finds it)")
	f.StringP("config", "c", "", "find the admin endpoint in this config file")
	f.StringP("adapter", "a", "", "the adapter of --config")
}

// writeFileAtomic writes a file via a temporary sibling and rename, created
// 0600 (a store copy holds signing keys), so a failed write leaves no
// half-written file under the final name.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// bufferedResponse is the in-process ResponseWriter of localClient.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newBufferedResponse() *bufferedResponse {
	return &bufferedResponse{header: make(http.Header)}
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) response(r *http.Request) *http.Response {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return &http.Response{
		StatusCode: b.status,
		Header:     b.header,
		Body:       io.NopCloser(&b.body),
		Request:    r,
	}
}

// The admin routes as typed calls, one per operation, named as the
// adminOps method each route runs.

func userPath(name string) string { return "/authgate/users/" + url.PathEscape(name) }

func (c *adminClient) addUser(req addUserRequest) (v userView, err error) {
	return v, c.call("POST", "/authgate/users", req, &v)
}

func (c *adminClient) listUsers() (v []userView, err error) {
	return v, c.call("GET", "/authgate/users", nil, &v)
}

func (c *adminClient) showUser(name string) (v userView, err error) {
	return v, c.call("GET", userPath(name), nil, &v)
}

func (c *adminClient) setProfile(name string, changes userChanges) (v userView, err error) {
	return v, c.call("PATCH", userPath(name), changes, &v)
}

func (c *adminClient) deleteUser(name string) error {
	return c.call("DELETE", userPath(name), nil, nil)
}

func (c *adminClient) setDisabled(name string, disabled bool) (v userView, err error) {
	verb := "/enable"
	if disabled {
		verb = "/disable"
	}
	return v, c.call("POST", userPath(name)+verb, nil, &v)
}

func (c *adminClient) setPassword(name, password string) (v userView, err error) {
	return v, c.call("PUT", userPath(name)+"/password", map[string]string{"password": password}, &v)
}

func (c *adminClient) setPIN(name, pin string) (v userView, err error) {
	return v, c.call("PUT", userPath(name)+"/pin", map[string]string{"pin": pin}, &v)
}

func (c *adminClient) listSettings(name string) (v []settingView, err error) {
	return v, c.call("GET", userPath(name)+"/settings", nil, &v)
}

func (c *adminClient) setSetting(name string, req settingRequest) (v settingView, err error) {
	if req.Name == "" { // an empty path segment would name no route
		return v, invalidf("a setting name is required")
	}
	path := userPath(name) + "/settings/" + url.PathEscape(req.Name)
	req.Name = "" // carried by the path
	return v, c.call("PUT", path, req, &v)
}

func (c *adminClient) deleteSetting(name, setting string) error {
	if setting == "" {
		return invalidf("a setting name is required")
	}
	return c.call("DELETE", userPath(name)+"/settings/"+url.PathEscape(setting), nil, nil)
}

func (c *adminClient) createKey(req createKeyRequest) (v createdKey, err error) {
	return v, c.call("POST", "/authgate/keys", req, &v)
}

func (c *adminClient) listKeys(user string) (v []keyView, err error) {
	return v, c.call("GET", "/authgate/keys?user="+url.QueryEscape(user), nil, &v)
}

// revokeKey revokes a key named by its id (key_...) or by the key itself:
// an operator holding only a leaked key can revoke it. A key goes in the
// body, never the URL, which Caddy's admin endpoint logs. It returns the
// revoked key's id.
func (c *adminClient) revokeKey(idOrKey string) (string, error) {
	if strings.HasPrefix(idOrKey, "key_") {
		return idOrKey, c.call("POST", "/authgate/keys/"+url.PathEscape(idOrKey)+"/revoke", nil, nil)
	}
	var v keyView
	err := c.call("POST", "/authgate/keys/revoke", revokeKeyRequest{Key: idOrKey}, &v)
	return v.ID, err
}

func (c *adminClient) listSessions(user string) (v []sessionView, err error) {
	return v, c.call("GET", "/authgate/sessions?user="+url.QueryEscape(user), nil, &v)
}

func (c *adminClient) revokeSession(id string) error {
	return c.call("POST", "/authgate/sessions/"+url.PathEscape(id)+"/revoke", nil, nil)
}

func (c *adminClient) listSigningKeys() (v []signingKeyView, err error) {
	return v, c.call("GET", "/authgate/signing-keys", nil, &v)
}

func (c *adminClient) rotateSigningKey() (v signingKeyView, err error) {
	return v, c.call("POST", "/authgate/signing-keys/rotate", nil, &v)
}

// backup writes a consistent copy of the store to path and checks it. With
// --db the copy is taken from the opened file directly (no buffering of the
// whole store in memory); otherwise it streams from the admin endpoint.
func (c *adminClient) backup(path string) (store.Counts, error) {
	if _, err := os.Stat(path); err == nil {
		return store.Counts{}, fmt.Errorf("%s exists: choose a new file (a backup never overwrites)", path)
	}
	err := writeFileAtomic(path, func(w io.Writer) error {
		if c.st != nil {
			_, err := c.st.WriteBackup(w)
			return err
		}
		resp, err := c.send("GET", "/authgate/backup", nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.Copy(w, resp.Body)
		return err
	})
	if err != nil {
		return store.Counts{}, fmt.Errorf("writing backup %s: %w", path, err)
	}
	copy, err := store.Open(path, store.Options{})
	if err != nil {
		return store.Counts{}, fmt.Errorf("backup %s does not open: %w", path, err)
	}
	defer copy.Close()
	counts, err := copy.Check()
	if err != nil {
		return counts, fmt.Errorf("backup %s fails its check: %w", path, err)
	}
	return counts, nil
}

// secretInURL reports whether a path segment or query value of target has
// the shape of one of our secrets (ag_, agcs_, agr_ with a valid checksum)
// or of a JWT.
func secretInURL(target string) bool {
	p, query, _ := strings.Cut(target, "?")
	parts := strings.Split(p, "/")
	if q, err := url.ParseQuery(query); err == nil {
		for _, vals := range q {
			parts = append(parts, vals...)
		}
	}
	for _, part := range parts {
		if u, err := url.PathUnescape(part); err == nil {
			part = u
		}
		if looksLikeSecret(part) {
			return true
		}
	}
	return false
}

func looksLikeSecret(s string) bool {
	for _, prefix := range []string{store.KeyPrefix, store.ClientSecretPrefix, store.RefreshPrefix} {
		if _, err := store.ParseSecret(prefix, s); err == nil {
			return true
		}
	}
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}
