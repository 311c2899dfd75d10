package caddymodule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authgate/authgate/store"
)

// The administrative operations behind `caddy authgate ...`. They work on a
// store; the commands run them on a file opened directly (--db, server
// stopped), and the admin API will run the same operations on the live
// store of a running server. Requests and views are plain JSON types so
// both paths speak the same shapes.

// userView is a user as administration shows it: never a hash.
type userView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email,omitempty"`
	Roles     []string  `json:"roles"`
	Disabled  bool      `json:"disabled"`
	HasPIN    bool      `json:"hasPin"`
	CreatedAt time.Time `json:"createdAt"`
	LastLogIn time.Time `json:"lastLogIn,omitzero"`
}

func viewUser(u *store.User) userView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userView{
		ID: u.ID, Username: u.Username, Email: u.Email, Roles: roles,
		Disabled: u.Disabled, HasPIN: u.PINHash != "", CreatedAt: u.CreatedAt, LastLogIn: u.LastLogIn,
	}
}

// keyView is an API key as administration shows it: a masked hint only.
type keyView struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	OwnerID         string    `json:"ownerId"`
	Owner           string    `json:"owner,omitempty"`
	Permissions     string    `json:"permissions"`
	Hint            string    `json:"hint"`
	HasClientSecret bool      `json:"hasClientSecret"`
	CreatedAt       time.Time `json:"createdAt"`
	ExpiresAt       time.Time `json:"expiresAt,omitzero"`
	Revoked         bool      `json:"revoked"`
	LastUsed        time.Time `json:"lastUsed,omitzero"`
}

func viewKey(k *store.APIKey, owner string) keyView {
	return keyView{
		ID: k.ID, Name: k.Name, OwnerID: k.OwnerID, Owner: owner, Permissions: k.Permissions.String(),
		Hint: k.Hint, HasClientSecret: k.HasClientSecret(), CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, Revoked: k.Revoked, LastUsed: k.LastUsed,
	}
}

// addUserRequest creates a user.
type addUserRequest struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles,omitempty"`
}

// createKeyRequest creates an API key for a user.
type createKeyRequest struct {
	User         string        `json:"user"`
	Name         string        `json:"name"`
	Permissions  string        `json:"permissions,omitempty"` // default all
	ExpiresIn    time.Duration `json:"expiresIn,omitempty"`   // zero: never
	ClientSecret bool          `json:"clientSecret,omitempty"`
	Description  string        `json:"description,omitempty"`
}

// createdKey is the one and only time a key and its client secret are shown.
type createdKey struct {
	keyView
	Key          string `json:"key"`
	ClientSecret string `json:"clientSecret,omitempty"`
}

// adminOps runs administrative operations on one store.
type adminOps struct {
	st  *store.Store
	now func() time.Time
}

func (o adminOps) addUser(req addUserRequest) (userView, error) {
	if req.Password == "" {
		return userView{}, errors.New("a password is required")
	}
	phc, err := store.HashSecret(req.Password)
	if err != nil {
		return userView{}, err
	}
	u := &store.User{Username: req.Username, Email: req.Email, Roles: cleanList(req.Roles), PasswordHash: phc}
	if err := o.st.CreateUser(u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return userView{}, fmt.Errorf("user %q (or its email) already exists", req.Username)
		}
		return userView{}, err
	}
	return viewUser(u), nil
}

func (o adminOps) listUsers() ([]userView, error) {
	users, err := o.st.ListUsers()
	if err != nil {
		return nil, err
	}
	out := make([]userView, 0, len(users))
	for _, u := range users {
		out = append(out, viewUser(u))
	}
	return out, nil
}

// findUser accepts a username, an email or a user ID.
func (o adminOps) findUser(name string) (*store.User, error) {
	u, err := o.st.UserByLogin(name)
	if errors.Is(err, store.ErrNotFound) {
		u, err = o.st.UserByID(name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no user %q", name)
	}
	return u, err
}

func (o adminOps) showUser(name string) (userView, error) {
	u, err := o.findUser(name)
	if err != nil {
		return userView{}, err
	}
	return viewUser(u), nil
}

func (o adminOps) updateUser(name string, fn func(u *store.User) error) (userView, error) {
	u, err := o.findUser(name)
	if err != nil {
		return userView{}, err
	}
	u, err = o.st.UpdateUser(u.ID, fn)
	if err != nil {
		return userView{}, err
	}
	return viewUser(u), nil
}

func (o adminOps) setDisabled(name string, disabled bool) (userView, error) {
	return o.updateUser(name, func(u *store.User) error {
		u.Disabled = disabled
		return nil
	})
}

// setPassword replaces the password and raises the token epoch, so every
// access token issued under the old password stops working, and revokes
// the user's sessions so their refresh tokens do too.
func (o adminOps) setPassword(name, password string) (userView, error) {
	if password == "" {
		return userView{}, errors.New("a password is required")
	}
	phc, err := store.HashSecret(password)
	if err != nil {
		return userView{}, err
	}
	v, err := o.updateUser(name, func(u *store.User) error {
		u.PasswordHash = phc
		u.TokenEpoch++
		return nil
	})
	if err != nil {
		return v, err
	}
	_, err = o.st.RevokeUserSessions(v.ID, "password changed", o.now().UTC())
	return v, err
}

func (o adminOps) deleteUser(name string) error {
	u, err := o.findUser(name)
	if err != nil {
		return err
	}
	return o.st.DeleteUser(u.ID)
}

func (o adminOps) createKey(req createKeyRequest) (createdKey, error) {
	if strings.TrimSpace(req.Name) == "" {
		return createdKey{}, errors.New("a key name is required")
	}
	u, err := o.findUser(req.User)
	if err != nil {
		return createdKey{}, err
	}
	perms := store.PermAll
	if req.Permissions != "" {
		if perms, err = store.ParsePermissions(req.Permissions); err != nil {
			return createdKey{}, err
		}
	}
	if req.ExpiresIn < 0 {
		return createdKey{}, errors.New("expiry must be positive")
	}
	secret, err := store.NewSecret(store.KeyPrefix)
	if err != nil {
		return createdKey{}, err
	}
	now := o.now().UTC()
	k := &store.APIKey{
		Name: req.Name, Description: req.Description, OwnerID: u.ID, Permissions: perms,
		Digest: store.DigestOf(secret), Hint: store.Mask(secret), CreatedAt: now,
	}
	if req.ExpiresIn > 0 {
		k.ExpiresAt = now.Add(req.ExpiresIn)
	}
	var clientSecret string
	if req.ClientSecret {
		if clientSecret, err = store.NewSecret(store.ClientSecretPrefix); err != nil {
			return createdKey{}, err
		}
		k.ClientSecretDigest = store.DigestOf(clientSecret)
		k.ClientSecretHint = store.Mask(clientSecret)
	}
	if err := o.st.CreateAPIKey(k); err != nil {
		return createdKey{}, err
	}
	return createdKey{keyView: viewKey(k, u.Username), Key: secret, ClientSecret: clientSecret}, nil
}

func (o adminOps) listKeys(user string) ([]keyView, error) {
	ownerID := ""
	if user != "" {
		u, err := o.findUser(user)
		if err != nil {
			return nil, err
		}
		ownerID = u.ID
	}
	keys, err := o.st.ListAPIKeys(ownerID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	out := make([]keyView, 0, len(keys))
	for _, k := range keys {
		name, ok := names[k.OwnerID]
		if !ok {
			if u, err := o.st.UserByID(k.OwnerID); err == nil {
				name = u.Username
			}
			names[k.OwnerID] = name
		}
		out = append(out, viewKey(k, name))
	}
	return out, nil
}

func (o adminOps) revokeKey(id string) error {
	err := o.st.RevokeAPIKey(id, o.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no API key %q", id)
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
