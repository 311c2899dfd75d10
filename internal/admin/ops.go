// Package admin is authgate's administration: the operations on a store
// (users, settings, API keys, sessions, signing keys, imports), the JSON
// routes that serve them (a plain http.Handler), and the client of those
// routes. The Caddy plugin mounts the routes on Caddy's admin endpoint and
// builds `caddy authgate ...` on the client; with --db the commands serve
// the very same routes in-process on a store file opened directly, so both
// paths speak the same shapes. Nothing here imports Caddy.
package admin

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// Error refuses an administrative request for a reason of the requester's:
// the routes answer it with Status, the CLI prints Msg. It never holds a
// secret.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func invalidf(format string, a ...any) error {
	return &Error{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func notFoundf(format string, a ...any) error {
	return &Error{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

func conflictf(format string, a ...any) error {
	return &Error{http.StatusConflict, fmt.Sprintf(format, a...)}
}

// statusOf is the HTTP status of an operation's error.
func statusOf(err error) int {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Status
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrExists):
		return http.StatusConflict
	case errors.Is(err, store.ErrInvalid), errors.Is(err, store.ErrMalformed):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// asError is err as the routes answer it: its status, and its whole
// message (an *Error wrapped in context keeps the context).
func asError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	return &Error{statusOf(err), err.Error()}
}

// Ops runs administrative operations on one store.
type Ops struct {
	Store store.Store
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// MinPasswordLength is the password policy's minimum (password.go);
	// 0 is DefaultMinPasswordLength.
	MinPasswordLength int
}

func (o Ops) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// AddUser creates a user with a password.
func (o Ops) AddUser(req AddUserRequest) (UserView, error) {
	if err := o.checkPassword(req.Password); err != nil {
		return UserView{}, err
	}
	phc, err := secret.HashSecret(req.Password)
	if err != nil {
		return UserView{}, err
	}
	u := &store.User{Username: req.Username, Email: req.Email, Roles: cleanList(req.Roles), PasswordHash: phc}
	if err := o.Store.CreateUser(u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return UserView{}, o.loginTaken(req.Username, req.Email)
		}
		return UserView{}, err
	}
	return viewUser(u), nil
}

// loginTaken names which login of a new user is taken: the username, or
// else the email. Only administrators see this; the login routes never
// tell whether a login exists.
func (o Ops) loginTaken(username, email string) error {
	if _, err := o.Store.UserByLogin(username); err == nil {
		return conflictf("username %q is already in use", username)
	}
	if email != "" {
		if _, err := o.Store.UserByLogin(email); err == nil {
			return emailTaken(email)
		}
	}
	return conflictf("user %q or its email is already in use", username)
}

// emailTaken refuses an email that is another user's login already.
func emailTaken(email string) error {
	return conflictf("email %q is already in use (emails are logins too)", email)
}

// ListUsers shows every user, with their lock states.
func (o Ops) ListUsers() ([]UserView, error) {
	users, err := o.Store.ListUsers()
	if err != nil {
		return nil, err
	}
	now := o.now()
	locks, err := o.locks(now)
	if err != nil {
		return nil, err
	}
	out := make([]UserView, 0, len(users))
	for _, u := range users {
		out = append(out, withLock(viewUser(u), locks, now))
	}
	return out, nil
}

// findUser accepts a username, an email or a user ID. An id-shaped name is
// looked up only as an id, anything else only as a login: trying one after
// the other let a login equal to someone's id stand for them. (The store
// refuses logins that start with an id prefix.)
func (o Ops) findUser(name string) (*store.User, error) {
	var u *store.User
	var err error
	if store.IDShaped(name) {
		u, err = o.Store.UserByID(name)
	} else {
		u, err = o.Store.UserByLogin(name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFoundf("no user %q", name)
	}
	return u, err
}

// ShowUser shows the user name names (username, email or id), with
// their lock state.
func (o Ops) ShowUser(name string) (UserView, error) {
	u, err := o.findUser(name)
	if err != nil {
		return UserView{}, err
	}
	return o.viewUserNow(u)
}

func (o Ops) updateUser(name string, fn func(u *store.User) error) (UserView, error) {
	u, err := o.findUser(name)
	if err != nil {
		return UserView{}, err
	}
	u, err = o.Store.UpdateUser(u.ID, fn)
	if err != nil {
		return UserView{}, err
	}
	return o.viewUserNow(u)
}

// SetDisabled disables or enables a user: a disabled user's logins,
// tokens and keys stop working. Enabling leaves a lock as it is (see
// UnlockUser).
func (o Ops) SetDisabled(name string, disabled bool) (UserView, error) {
	return o.updateUser(name, func(u *store.User) error {
		u.Disabled = disabled
		return nil
	})
}

// SetPassword replaces the password and raises the token epoch, so every
// access token issued under the old password stops working, and revokes
// the user's sessions so their refresh tokens do too.
//
// A lock stays: unlocking is its own, explicit operation (UnlockUser), so
// that an operator decides it and it shows as such.
func (o Ops) SetPassword(name, password string) (UserView, error) {
	if err := o.checkPassword(password); err != nil {
		return UserView{}, err
	}
	phc, err := secret.HashSecret(password)
	if err != nil {
		return UserView{}, err
	}
	v, err := o.updateUser(name, func(u *store.User) error {
		u.PasswordHash = phc
		u.TokenEpoch++
		return nil
	})
	if err != nil {
		return v, err
	}
	_, err = o.Store.RevokeUserSessions(v.ID, "password changed", o.now().UTC())
	return v, err
}

// SetPIN replaces the PIN. Unlike a password change it ends no session:
// the PIN only guards check_pin.
func (o Ops) SetPIN(name, pin string) (UserView, error) {
	if pin == "" {
		return UserView{}, invalidf("a PIN is required")
	}
	phc, err := secret.HashSecret(pin)
	if err != nil {
		return UserView{}, err
	}
	return o.updateUser(name, func(u *store.User) error {
		u.PINHash = phc
		return nil
	})
}

// SetProfile applies c to the user's profile in one update.
func (o Ops) SetProfile(name string, c UserChanges) (UserView, error) {
	if c.empty() {
		return UserView{}, invalidf("nothing to change: give at least one field")
	}
	if err := c.validate(); err != nil {
		return UserView{}, err
	}
	v, err := o.updateUser(name, func(u *store.User) error {
		c.apply(u)
		return nil
	})
	if email, set := c.Profile["email"]; set && errors.Is(err, store.ErrExists) {
		return v, emailTaken(email)
	}
	return v, err
}

// ListSettings shows the user's settings.
func (o Ops) ListSettings(name string) ([]SettingView, error) {
	u, err := o.findUser(name)
	if err != nil {
		return nil, err
	}
	out := make([]SettingView, 0, len(u.Settings))
	for _, s := range u.Settings {
		out = append(out, viewSetting(s))
	}
	return out, nil
}

// SetSetting updates the user's setting named req.Name, or creates it with
// the next free id. Names are matched exactly; should an import have left
// two of one name, it refuses rather than pick one.
func (o Ops) SetSetting(name string, req SettingRequest) (SettingView, error) {
	if req.Name == "" {
		return SettingView{}, fmt.Errorf("%w: a setting name is required", store.ErrInvalid)
	}
	if err := store.CheckText("setting name", req.Name, false); err != nil {
		return SettingView{}, err
	}
	for _, f := range []struct {
		what string
		v    *string
	}{{"value", &req.Value}, {"category", req.Category}, {"group", req.Group}, {"type", req.Type}, {"description", req.Description}} {
		if f.v != nil {
			if err := store.CheckText("setting "+f.what, *f.v, true); err != nil {
				return SettingView{}, err
			}
		}
	}
	var out store.Setting
	_, err := o.updateUser(name, func(u *store.User) error {
		i, err := settingIndex(u, req.Name)
		if err != nil {
			return err
		}
		if i < 0 {
			u.Settings = append(u.Settings, store.Setting{ID: nextSettingID(u), Name: req.Name, UserID: u.ID})
			i = len(u.Settings) - 1
		}
		s := &u.Settings[i]
		s.Value = req.Value
		setIf(&s.Category, req.Category)
		setIf(&s.Group, req.Group)
		setIf(&s.Type, req.Type)
		setIf(&s.Description, req.Description)
		setIf(&s.ReadOnly, req.ReadOnly)
		out = *s
		return nil
	})
	return viewSetting(out), err
}

// DeleteSetting removes every setting of the user named settingName (so
// duplicates from an import can be cleaned up).
func (o Ops) DeleteSetting(name, settingName string) error {
	_, err := o.updateUser(name, func(u *store.User) error {
		kept := u.Settings[:0]
		for _, s := range u.Settings {
			if s.Name != settingName {
				kept = append(kept, s)
			}
		}
		if len(kept) == len(u.Settings) {
			return notFoundf("user %s has no setting %q", u.Username, settingName)
		}
		u.Settings = kept
		return nil
	})
	return err
}

func settingIndex(u *store.User, name string) (int, error) {
	found := -1
	for i, s := range u.Settings {
		if s.Name != name {
			continue
		}
		if found >= 0 {
			return 0, conflictf("user %s has several settings named %q: delete them and set it again", u.Username, name)
		}
		found = i
	}
	return found, nil
}

func nextSettingID(u *store.User) int64 {
	var top int64
	for _, s := range u.Settings {
		top = max(top, s.ID)
	}
	return top + 1
}

// DeleteUser deletes a user with their API keys and sessions.
func (o Ops) DeleteUser(name string) error {
	u, err := o.findUser(name)
	if err != nil {
		return err
	}
	return o.Store.DeleteUser(u.ID)
}

// CreateKey creates an API key (and, if asked, its client secret): the
// only time either is shown.
func (o Ops) CreateKey(req CreateKeyRequest) (CreatedKey, error) {
	if strings.TrimSpace(req.Name) == "" {
		return CreatedKey{}, invalidf("a key name is required")
	}
	u, err := o.findUser(req.User)
	if err != nil {
		return CreatedKey{}, err
	}
	perms := store.PermAll
	if req.Permissions != "" {
		if perms, err = store.ParsePermissions(req.Permissions); err != nil {
			return CreatedKey{}, invalidf("%v", err)
		}
	}
	if req.ExpiresIn < 0 {
		return CreatedKey{}, invalidf("expiry must be positive")
	}
	key, err := secret.NewSecret(secret.KeyPrefix)
	if err != nil {
		return CreatedKey{}, err
	}
	now := o.now().UTC()
	k := &store.APIKey{
		Name: req.Name, Description: req.Description, OwnerID: u.ID, Permissions: perms,
		Digest: store.DigestOf(key), Hint: secret.Mask(key), CreatedAt: now,
	}
	if req.ExpiresIn > 0 {
		k.ExpiresAt = now.Add(time.Duration(req.ExpiresIn))
	}
	var clientSecret string
	if req.ClientSecret {
		if clientSecret, err = secret.NewSecret(secret.ClientSecretPrefix); err != nil {
			return CreatedKey{}, err
		}
		k.ClientSecretDigest = store.DigestOf(clientSecret)
		k.ClientSecretHint = secret.Mask(clientSecret)
	}
	if err := o.Store.CreateAPIKey(k); err != nil {
		return CreatedKey{}, err
	}
	return CreatedKey{KeyView: viewKey(k, u.Username), Key: key, ClientSecret: clientSecret}, nil
}

// ListKeys shows the API keys of user, or everyone's when user is "".
func (o Ops) ListKeys(user string) ([]KeyView, error) {
	ownerID := ""
	if user != "" {
		u, err := o.findUser(user)
		if err != nil {
			return nil, err
		}
		ownerID = u.ID
	}
	keys, err := o.Store.ListAPIKeys(ownerID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	out := make([]KeyView, 0, len(keys))
	for _, k := range keys {
		name, ok := names[k.OwnerID]
		if !ok {
			if u, err := o.Store.UserByID(k.OwnerID); err == nil {
				name = u.Username
			}
			names[k.OwnerID] = name
		}
		out = append(out, viewKey(k, name))
	}
	return out, nil
}

// RevokeKeyBySecret revokes the key whose digest is the given key's. The
// error never repeats the key.
func (o Ops) RevokeKeyBySecret(key string) (KeyView, error) {
	if key == "" {
		return KeyView{}, invalidf("a key is required")
	}
	k, err := o.Store.APIKeyByDigest(store.DigestOf(key))
	if errors.Is(err, store.ErrNotFound) {
		return KeyView{}, notFoundf("no API key matches the key given")
	}
	if err != nil {
		return KeyView{}, err
	}
	if err := o.Store.RevokeAPIKey(k.ID, o.now().UTC()); err != nil {
		return KeyView{}, err
	}
	k.Revoked = true
	return viewKey(k, ""), nil
}

// RevokeKey revokes the key with this id.
func (o Ops) RevokeKey(id string) error {
	err := o.Store.RevokeAPIKey(id, o.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return notFoundf("no API key %q", id)
	}
	return err
}

// ListSessions shows the sessions of user, or everyone's when user is "".
func (o Ops) ListSessions(user string) ([]SessionView, error) {
	userID := ""
	if user != "" {
		u, err := o.findUser(user)
		if err != nil {
			return nil, err
		}
		userID = u.ID
	}
	sessions, err := o.Store.ListSessions(userID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	out := make([]SessionView, 0, len(sessions))
	for _, s := range sessions {
		name, ok := names[s.UserID]
		if !ok {
			if u, err := o.Store.UserByID(s.UserID); err == nil {
				name = u.Username
			}
			names[s.UserID] = name
		}
		out = append(out, viewSession(s, name))
	}
	return out, nil
}

// RevokeSession ends a session: its access and refresh tokens stop
// working on the next request.
func (o Ops) RevokeSession(id string) error {
	err := o.Store.RevokeSession(id, "revoked by an administrator", o.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return notFoundf("no session %q", id)
	}
	return err
}

// cleanList trims entries and drops empty ones ("a, b," → [a b]).
func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

// setIf sets *dst to *v when v is set.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
