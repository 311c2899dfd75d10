package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// Client calls the routes, one typed method per operation, named as the
// Ops method each route runs: over HTTP to a running server's admin
// endpoint, or in-process (InProcess) on a store file opened directly.
type Client struct {
	// Do sends one request; its path is the route's, its host a
	// placeholder for Do to set.
	Do func(r *http.Request) (*http.Response, error)
	// Where names the target in error messages.
	Where string
	// Store is the store the routes are served on in-process, if they
	// are: Backup copies it directly rather than through the handler,
	// which would buffer it whole. nil for a server.
	Store store.Store
}

// InProcess is a Client.Do that serves h in this process.
func InProcess(h http.Handler) func(r *http.Request) (*http.Response, error) {
	return func(r *http.Request) (*http.Response, error) {
		w := &bufferedResponse{header: make(http.Header)}
		h.ServeHTTP(w, r)
		return w.response(r), nil
	}
}

// call sends a JSON request to the route path and decodes the JSON answer
// into out (when not nil). An error answer becomes an error with the
// server's message.
func (c *Client) call(method, path string, in, out any) error {
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
		return fmt.Errorf("%s: reading the answer to %s %s: %v", c.Where, method, path, err)
	}
	return nil
}

// send makes the request and turns an error status into an error. The
// caller closes the body of a successful response.
func (c *Client) send(method, path string, body io.Reader) (*http.Response, error) {
	if secretInURL(path) {
		return nil, errors.New("refusing to send what looks like a key, client secret or token in a URL (Caddy's admin endpoint logs URLs): name keys by their id (key_...), sessions by theirs (ses_...)")
	}
	req, err := http.NewRequest(method, "http://authgate.admin"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil || method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json") // the write routes take nothing else
	}
	resp, err := c.Do(req)
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
	return nil, fmt.Errorf("%s answered %s %s with HTTP %d: %s", c.Where, method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
}

func userPath(name string) string { return "/authgate/users/" + url.PathEscape(name) }

func (c *Client) AddUser(req AddUserRequest) (v UserView, err error) {
	return v, c.call("POST", "/authgate/users", req, &v)
}

func (c *Client) ListUsers() (v []UserView, err error) {
	return v, c.call("GET", "/authgate/users", nil, &v)
}

func (c *Client) ShowUser(name string) (v UserView, err error) {
	return v, c.call("GET", userPath(name), nil, &v)
}

func (c *Client) SetProfile(name string, changes UserChanges) (v UserView, err error) {
	return v, c.call("PATCH", userPath(name), changes, &v)
}

func (c *Client) DeleteUser(name string) error {
	return c.call("DELETE", userPath(name), nil, nil)
}

func (c *Client) SetDisabled(name string, disabled bool) (v UserView, err error) {
	verb := "/enable"
	if disabled {
		verb = "/disable"
	}
	return v, c.call("POST", userPath(name)+verb, nil, &v)
}

func (c *Client) UnlockUser(name string) (v UserView, err error) {
	return v, c.call("POST", userPath(name)+"/unlock", nil, &v)
}

func (c *Client) ListLockouts() (v []LockoutView, err error) {
	return v, c.call("GET", "/authgate/lockouts", nil, &v)
}

func (c *Client) SetPassword(name, password string) (v UserView, err error) {
	return v, c.call("PUT", userPath(name)+"/password", map[string]string{"password": password}, &v)
}

func (c *Client) SetPIN(name, pin string) (v UserView, err error) {
	return v, c.call("PUT", userPath(name)+"/pin", map[string]string{"pin": pin}, &v)
}

func (c *Client) ListSettings(name string) (v []SettingView, err error) {
	return v, c.call("GET", userPath(name)+"/settings", nil, &v)
}

func (c *Client) SetSetting(name string, req SettingRequest) (v SettingView, err error) {
	if req.Name == "" { // an empty path segment would name no route
		return v, invalidf("a setting name is required")
	}
	path := userPath(name) + "/settings/" + url.PathEscape(req.Name)
	req.Name = "" // carried by the path
	return v, c.call("PUT", path, req, &v)
}

func (c *Client) DeleteSetting(name, setting string) error {
	if setting == "" {
		return invalidf("a setting name is required")
	}
	return c.call("DELETE", userPath(name)+"/settings/"+url.PathEscape(setting), nil, nil)
}

func (c *Client) CreateKey(req CreateKeyRequest) (v CreatedKey, err error) {
	return v, c.call("POST", "/authgate/keys", req, &v)
}

func (c *Client) ListKeys(user string) (v []KeyView, err error) {
	return v, c.call("GET", "/authgate/keys?user="+url.QueryEscape(user), nil, &v)
}

// RevokeKey revokes a key named by its id (key_...) or by the key itself:
// an operator holding only a leaked key can revoke it. A key goes in the
// body, never the URL, which Caddy's admin endpoint logs. It returns the
// revoked key's id.
func (c *Client) RevokeKey(idOrKey string) (string, error) {
	if strings.HasPrefix(idOrKey, store.KeyIDPrefix) {
		return idOrKey, c.call("POST", "/authgate/keys/"+url.PathEscape(idOrKey)+"/revoke", nil, nil)
	}
	var v KeyView
	err := c.call("POST", "/authgate/keys/revoke", revokeKeyRequest{Key: idOrKey}, &v)
	return v.ID, err
}

func (c *Client) ListSessions(user string) (v []SessionView, err error) {
	return v, c.call("GET", "/authgate/sessions?user="+url.QueryEscape(user), nil, &v)
}

func (c *Client) RevokeSession(id string) error {
	return c.call("POST", "/authgate/sessions/"+url.PathEscape(id)+"/revoke", nil, nil)
}

func (c *Client) ListSigningKeys() (v []SigningKeyView, err error) {
	return v, c.call("GET", "/authgate/signing-keys", nil, &v)
}

func (c *Client) RotateSigningKey() (v SigningKeyView, err error) {
	return v, c.call("POST", "/authgate/signing-keys/rotate", nil, &v)
}

func (c *Client) ImportUsers(req ImportUsersRequest) (v ImportReport, err error) {
	return v, c.call("POST", "/authgate/import/users", req, &v)
}

func (c *Client) ImportKeys(req ImportKeysRequest) (v ImportReport, err error) {
	return v, c.call("POST", "/authgate/import/keys", req, &v)
}

// BackupFormatHeader names the backend whose format a backup is in:
// "bbolt" (a bbolt file) or another backend's name (its JSON snapshot,
// store.Snapshot).
const BackupFormatHeader = "X-Authgate-Backup"

// Backup writes a consistent copy of the store to w: from Store directly
// when it is set, else streamed from the backup route. It returns the
// backend whose format the copy is in. A copy cut short by a failure on
// the server's side shows only when it is checked.
func (c *Client) Backup(w io.Writer) (kind string, err error) {
	if c.Store != nil {
		kind, _ = c.Store.Backend()
		_, err := c.Store.Backup(w)
		return kind, err
	}
	resp, err := c.send("GET", "/authgate/backup", nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	kind = resp.Header.Get(BackupFormatHeader)
	if kind == "" {
		kind = "bbolt"
	}
	_, err = io.Copy(w, resp.Body)
	return kind, err
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
	for _, prefix := range []string{secret.KeyPrefix, secret.ClientSecretPrefix, secret.RefreshPrefix, secret.SessionPrefix} {
		if _, err := secret.ParseSecret(prefix, s); err == nil {
			return true
		}
	}
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// bufferedResponse is the ResponseWriter of InProcess.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
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
