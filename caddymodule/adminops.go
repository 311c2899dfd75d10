package caddymodule

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caddyserver/caddy/v2"

	"github.com/authgate/authgate/store"
)

// The administrative operations behind `caddy authgate ...`. They work on a
// store, behind the admin API's routes (adminapi.go); the commands call
// those routes on a running server's admin endpoint, or serve them
// in-process on a file opened directly (--db, server stopped). Requests and
// views are plain JSON types so both paths speak the same shapes.

// userView is a user as administration shows it: never a hash.
type userView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email,omitempty"`
	Roles     []string  `json:"roles"`
	Disabled  bool      `json:"disabled"`
	HasPIN    bool      `json:"hasPin"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	LastLogIn time.Time `json:"lastLogIn,omitzero"`

	FirstName   string `json:"firstName,omitempty"`
	LastName    string `json:"lastName,omitempty"`
	Title       string `json:"title,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
	Mobile      string `json:"mobile,omitempty"`
	Department  string `json:"department,omitempty"`
	BirthDate   string `json:"birthDate,omitempty"`
	Image       string `json:"image,omitempty"`
	Address     string `json:"address,omitempty"`
	PostalCode  string `json:"postalCode,omitempty"`
	Region      string `json:"region,omitempty"`
	City        string `json:"city,omitempty"`
	Country     string `json:"country,omitempty"`
	CountryCode string `json:"countryCode,omitempty"`
	Notes       string `json:"notes,omitempty"`
	CustomerID  string `json:"customerId,omitempty"`
	Lang        string `json:"lang,omitempty"`
	Timezone    string `json:"timezone,omitempty"`
	Rank        int    `json:"rank"`
	// SessionLimit 0 means the gateway's session_limit.
	SessionLimit int `json:"sessionLimit"`
	Settings     int `json:"settings"` // how many; `user setting list` shows them
}

func viewUser(u *store.User) userView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return userView{
		ID: u.ID, Username: u.Username, Email: u.Email, Roles: roles,
		Disabled: u.Disabled, HasPIN: u.PINHash != "", CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, LastLogIn: u.LastLogIn,
		FirstName: u.FirstName, LastName: u.LastName, Title: u.Title, PhoneNumber: u.PhoneNumber, Mobile: u.Mobile,
		Department: u.Department, BirthDate: u.BirthDate, Image: u.Image, Address: u.Address, PostalCode: u.PostalCode,
		Region: u.Region, City: u.City, Country: u.Country, CountryCode: u.CountryCode, Notes: u.Notes,
		CustomerID: u.CustomerID, Lang: u.Lang, Timezone: u.Timezone, Rank: u.Rank, SessionLimit: u.SessionLimit,
		Settings: len(u.Settings),
	}
}

// settingView is a user setting in the shape of the Babel profile.
type settingView struct {
	ID          int64  `json:"id"`
	Category    string `json:"category"`
	Group       string `json:"group"`
	Name        string `json:"name"`
	Value       string `json:"value"`
	Type        string `json:"type"`
	Description string `json:"description"`
	ReadOnly    bool   `json:"readOnly"`
	UserID      string `json:"userId"`
}

func viewSetting(s store.Setting) settingView {
	return settingView{
		ID: s.ID, Category: s.Category, Group: s.Group, Name: s.Name, Value: s.Value,
		Type: s.Type, Description: s.Description, ReadOnly: s.ReadOnly, UserID: s.UserID,
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

// userChanges changes a user's profile: only the fields that are set
// (non-nil) change.
type userChanges struct {
	Email        *string   `json:"email,omitempty"`
	FirstName    *string   `json:"firstName,omitempty"`
	LastName     *string   `json:"lastName,omitempty"`
	Title        *string   `json:"title,omitempty"`
	PhoneNumber  *string   `json:"phoneNumber,omitempty"`
	Mobile       *string   `json:"mobile,omitempty"`
	Department   *string   `json:"department,omitempty"`
	BirthDate    *string   `json:"birthDate,omitempty"`
	Image        *string   `json:"image,omitempty"`
	Address      *string   `json:"address,omitempty"`
	PostalCode   *string   `json:"postalCode,omitempty"`
	Region       *string   `json:"region,omitempty"`
	City         *string   `json:"city,omitempty"`
	Country      *string   `json:"country,omitempty"`
	CountryCode  *string   `json:"countryCode,omitempty"`
	Notes        *string   `json:"notes,omitempty"`
	CustomerID   *string   `json:"customerId,omitempty"`
	Lang         *string   `json:"lang,omitempty"`
	Timezone     *string   `json:"timezone,omitempty"`
	Rank         *int      `json:"rank,omitempty"`
	Roles        *[]string `json:"roles,omitempty"`
	SessionLimit *int      `json:"sessionLimit,omitempty"`
}

// settingRequest creates a setting or updates the one of that name: Value
// always, the other fields only when set.
type settingRequest struct {
	Name        string  `json:"name"`
	Value       string  `json:"value"`
	Category    *string `json:"category,omitempty"`
	Group       *string `json:"group,omitempty"`
	Type        *string `json:"type,omitempty"`
	Description *string `json:"description,omitempty"`
	ReadOnly    *bool   `json:"readOnly,omitempty"`
}

// createKeyRequest creates an API key for a user.
type createKeyRequest struct {
	User         string         `json:"user"`
	Name         string         `json:"name"`
	Permissions  string         `json:"permissions,omitempty"` // default all
	ExpiresIn    caddy.Duration `json:"expiresIn,omitempty"`   // "720h" or nanoseconds; zero: never
	ClientSecret bool           `json:"clientSecret,omitempty"`
	Description  string         `json:"description,omitempty"`
}

// createdKey is the one and only time a key and its client secret are shown.
type createdKey struct {
	keyView
	Key          string `json:"key"`
	ClientSecret string `json:"clientSecret,omitempty"`
}

// opError refuses an administrative request for a reason of the
// requester's: the admin API answers it with status, the CLI prints it.
type opError struct {
	status int
	msg    string
}

func (e *opError) Error() string { return e.msg }

func invalidf(format string, a ...any) error {
	return &opError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func notFoundf(format string, a ...any) error {
	return &opError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

func conflictf(format string, a ...any) error {
	return &opError{http.StatusConflict, fmt.Sprintf(format, a...)}
}

// adminOps runs administrative operations on one store.
type adminOps struct {
	st  *store.Store
	now func() time.Time
}

func (o adminOps) addUser(req addUserRequest) (userView, error) {
	if req.Password == "" {
		return userView{}, invalidf("a password is required")
	}
	phc, err := store.HashSecret(req.Password)
	if err != nil {
		return userView{}, err
	}
	u := &store.User{Username: req.Username, Email: req.Email, Roles: cleanList(req.Roles), PasswordHash: phc}
	if err := o.st.CreateUser(u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return userView{}, conflictf("user %q (or its email) already exists", req.Username)
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

// findUser accepts a username, an email or a user ID. An id-shaped name is
// looked up only as an id, anything else only as a login: trying one after
// the other let a login equal to someone's id stand for them. (The store
// refuses logins that start with an id prefix.)
func (o adminOps) findUser(name string) (*store.User, error) {
	var u *store.User
	var err error
	if store.IDShaped(name) {
		u, err = o.st.UserByID(name)
	} else {
		u, err = o.st.UserByLogin(name)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFoundf("no user %q", name)
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
		return userView{}, invalidf("a password is required")
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

// setPIN replaces the PIN. Unlike a password change it ends no session:
// the PIN only guards check_pin.
func (o adminOps) setPIN(name, pin string) (userView, error) {
	if pin == "" {
		return userView{}, invalidf("a PIN is required")
	}
	phc, err := store.HashSecret(pin)
	if err != nil {
		return userView{}, err
	}
	return o.updateUser(name, func(u *store.User) error {
		u.PINHash = phc
		return nil
	})
}

// setProfile applies c to the user's profile in one update.
func (o adminOps) setProfile(name string, c userChanges) (userView, error) {
	if c == (userChanges{}) {
		return userView{}, invalidf("nothing to change: give at least one field")
	}
	if err := c.validate(); err != nil {
		return userView{}, err
	}
	v, err := o.updateUser(name, func(u *store.User) error {
		c.apply(u)
		return nil
	})
	if errors.Is(err, store.ErrExists) && c.Email != nil {
		return v, conflictf("email %q already names another user (emails are logins too)", *c.Email)
	}
	return v, err
}

func (o adminOps) listSettings(name string) ([]settingView, error) {
	u, err := o.findUser(name)
	if err != nil {
		return nil, err
	}
	out := make([]settingView, 0, len(u.Settings))
	for _, s := range u.Settings {
		out = append(out, viewSetting(s))
	}
	return out, nil
}

// setSetting updates the user's setting named req.Name, or creates it with
// the next free id. Names are matched exactly; should an import have left
// two of one name, it refuses rather than pick one.
func (o adminOps) setSetting(name string, req settingRequest) (settingView, error) {
	if req.Name == "" {
		return settingView{}, fmt.Errorf("%w: a setting name is required", store.ErrInvalid)
	}
	if err := checkText("setting name", req.Name, false); err != nil {
		return settingView{}, err
	}
	for _, f := range []struct {
		what string
		v    *string
	}{{"value", &req.Value}, {"category", req.Category}, {"group", req.Group}, {"type", req.Type}, {"description", req.Description}} {
		if f.v != nil {
			if err := checkText("setting "+f.what, *f.v, true); err != nil {
				return settingView{}, err
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

// deleteSetting removes every setting of the user named settingName (so
// duplicates from an import can be cleaned up).
func (o adminOps) deleteSetting(name, settingName string) error {
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

func (o adminOps) deleteUser(name string) error {
	u, err := o.findUser(name)
	if err != nil {
		return err
	}
	return o.st.DeleteUser(u.ID)
}

func (o adminOps) createKey(req createKeyRequest) (createdKey, error) {
	if strings.TrimSpace(req.Name) == "" {
		return createdKey{}, invalidf("a key name is required")
	}
	u, err := o.findUser(req.User)
	if err != nil {
		return createdKey{}, err
	}
	perms := store.PermAll
	if req.Permissions != "" {
		if perms, err = store.ParsePermissions(req.Permissions); err != nil {
			return createdKey{}, invalidf("%v", err)
		}
	}
	if req.ExpiresIn < 0 {
		return createdKey{}, invalidf("expiry must be positive")
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
		k.ExpiresAt = now.Add(time.Duration(req.ExpiresIn))
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

// revokeKeyRequest names a key by the key itself.
type revokeKeyRequest struct {
	Key string `json:"key"`
}

// revokeKeyBySecret revokes the key whose digest is the given key's. The
// error never repeats the key.
func (o adminOps) revokeKeyBySecret(key string) (keyView, error) {
	if key == "" {
		return keyView{}, invalidf("a key is required")
	}
	k, err := o.st.APIKeyByDigest(store.DigestOf(key))
	if errors.Is(err, store.ErrNotFound) {
		return keyView{}, notFoundf("no API key matches the key given")
	}
	if err != nil {
		return keyView{}, err
	}
	if err := o.st.RevokeAPIKey(k.ID, o.now().UTC()); err != nil {
		return keyView{}, err
	}
	k.Revoked = true
	return viewKey(k, ""), nil
}

func (o adminOps) revokeKey(id string) error {
	err := o.st.RevokeAPIKey(id, o.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return notFoundf("no API key %q", id)
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

// validate checks the values of c before they are stored. The store checks
// the email (syntax and uniqueness) itself.
func (c userChanges) validate() error {
	for _, f := range []struct {
		what      string
		v         *string
		multiline bool
	}{
		{"email", c.Email, false}, {"first name", c.FirstName, false}, {"last name", c.LastName, false},
		{"title", c.Title, false}, {"phone", c.PhoneNumber, false}, {"mobile", c.Mobile, false},
		{"department", c.Department, false}, {"birth date", c.BirthDate, false}, {"image", c.Image, false},
		{"address", c.Address, true}, {"postal code", c.PostalCode, false}, {"region", c.Region, false},
		{"city", c.City, false}, {"country", c.Country, false}, {"country code", c.CountryCode, false},
		{"notes", c.Notes, true}, {"customer id", c.CustomerID, false}, {"lang", c.Lang, false},
		{"timezone", c.Timezone, false},
	} {
		if f.v != nil {
			if err := checkText(f.what, *f.v, f.multiline); err != nil {
				return err
			}
		}
	}
	if c.BirthDate != nil && *c.BirthDate != "" && !isDate(*c.BirthDate) {
		return fmt.Errorf("%w: birth date %q: want YYYY-MM-DD or an RFC 3339 time", store.ErrInvalid, *c.BirthDate)
	}
	if c.Lang != nil && *c.Lang != "" && !langTag.MatchString(*c.Lang) {
		return fmt.Errorf("%w: lang %q: want a language tag like de or en-GB", store.ErrInvalid, *c.Lang)
	}
	// Syntax only: the host's time zone database may be missing or older.
	if c.Timezone != nil && *c.Timezone != "" && !zoneName.MatchString(*c.Timezone) {
		return fmt.Errorf("%w: timezone %q: want an IANA name like Europe/Berlin", store.ErrInvalid, *c.Timezone)
	}
	if c.SessionLimit != nil && *c.SessionLimit < 0 {
		return fmt.Errorf("%w: session limit must be 0 (the gateway's default) or more", store.ErrInvalid)
	}
	if c.Roles != nil {
		for _, r := range *c.Roles {
			if err := checkText("role", r, false); err != nil {
				return err
			}
		}
	}
	return nil
}

var (
	langTag  = regexp.MustCompile(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$`)
	zoneName = regexp.MustCompile(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`)
)

func isDate(s string) bool {
	_, err := time.Parse(time.DateOnly, s)
	if err != nil {
		_, err = time.Parse(time.RFC3339, s)
	}
	return err == nil
}

// apply copies the set fields of c onto u.
func (c userChanges) apply(u *store.User) {
	setIf(&u.Email, c.Email)
	setIf(&u.FirstName, c.FirstName)
	setIf(&u.LastName, c.LastName)
	setIf(&u.Title, c.Title)
	setIf(&u.PhoneNumber, c.PhoneNumber)
	setIf(&u.Mobile, c.Mobile)
	setIf(&u.Department, c.Department)
	setIf(&u.BirthDate, c.BirthDate)
	setIf(&u.Image, c.Image)
	setIf(&u.Address, c.Address)
	setIf(&u.PostalCode, c.PostalCode)
	setIf(&u.Region, c.Region)
	setIf(&u.City, c.City)
	setIf(&u.Country, c.Country)
	setIf(&u.CountryCode, c.CountryCode)
	setIf(&u.Notes, c.Notes)
	setIf(&u.CustomerID, c.CustomerID)
	setIf(&u.Lang, c.Lang)
	setIf(&u.Timezone, c.Timezone)
	setIf(&u.Rank, c.Rank)
	setIf(&u.SessionLimit, c.SessionLimit)
	if c.Roles != nil {
		u.Roles = cleanList(*c.Roles)
	}
}

// setIf sets *dst to *v when v is set.
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// checkText refuses invalid UTF-8 and control characters (they forge log
// lines and break headers); multiline text may hold tabs and line breaks.
func checkText(what, s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", store.ErrInvalid, what)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return fmt.Errorf("%w: %s must not contain control characters", store.ErrInvalid, what)
		}
	}
	return nil
}

// sessionView is a session (one login and its refresh-token family) as
// administration shows it.
type sessionView struct {
	ID           string    `json:"id"`
	UserID       string    `json:"userId"`
	User         string    `json:"user,omitempty"`
	CreatedAt    time.Time `json:"createdAt"`
	RefreshedAt  time.Time `json:"refreshedAt,omitzero"`
	ExpiresAt    time.Time `json:"expiresAt"`
	Revoked      bool      `json:"revoked"`
	RevokedAt    time.Time `json:"revokedAt,omitzero"`
	RevokeReason string    `json:"revokeReason,omitempty"`
	KeyID        string    `json:"keyId,omitempty"`
	Permissions  string    `json:"permissions,omitempty"`
}

// listSessions lists the sessions of user, or everyone's when user is "".
func (o adminOps) listSessions(user string) ([]sessionView, error) {
	userID := ""
	if user != "" {
		u, err := o.findUser(user)
		if err != nil {
			return nil, err
		}
		userID = u.ID
	}
	sessions, err := o.st.ListSessions(userID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	out := make([]sessionView, 0, len(sessions))
	for _, s := range sessions {
		name, ok := names[s.UserID]
		if !ok {
			if u, err := o.st.UserByID(s.UserID); err == nil {
				name = u.Username
			}
			names[s.UserID] = name
		}
		out = append(out, sessionView{
			ID: s.ID, UserID: s.UserID, User: name, CreatedAt: s.CreatedAt, RefreshedAt: s.RefreshedAt,
			ExpiresAt: s.ExpiresAt, Revoked: s.Revoked, RevokedAt: s.RevokedAt, RevokeReason: s.RevokeReason,
			KeyID: s.KeyID, Permissions: s.Permissions.String(),
		})
	}
	return out, nil
}

// revokeSession ends a session: its access and refresh tokens stop
// working on the next request.
func (o adminOps) revokeSession(id string) error {
	err := o.st.RevokeSession(id, "revoked by an administrator", o.now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return notFoundf("no session %q", id)
	}
	return err
}
