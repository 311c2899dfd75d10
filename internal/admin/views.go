package admin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/store"
)

// The requests and views of the routes: plain JSON types, so a running
// server's admin endpoint and the in-process routes of --db speak the same
// shapes. The profile's members come from store.ProfileFields; no view
// spells a profile field out.

// UserView is a user as administration shows it: never a hash.
type UserView struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Roles     []string  `json:"roles"`
	Disabled  bool      `json:"disabled"`
	HasPIN    bool      `json:"hasPin"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	LastLogIn time.Time `json:"lastLogIn,omitzero"`
	Rank      int       `json:"rank"`
	// SessionLimit 0 means the gateway's session_limit.
	SessionLimit int `json:"sessionLimit"`
	Settings     int `json:"settings"` // how many; `user setting list` shows them
	// Lock is the lockout's state of the user's account (lockout.go);
	// nil, and absent in JSON, when it has no failures and no lock.
	Lock *LockView `json:"lock,omitempty"`
	// Profile holds the profile fields that are set, by
	// store.ProfileField.Name. In JSON each is a member of the user object
	// itself, after the members above, in the table's order.
	Profile map[string]string `json:"-"`
}

func viewUser(u *store.User) UserView {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	v := UserView{
		ID: u.ID, Username: u.Username, Roles: roles, Disabled: u.Disabled, HasPIN: u.PINHash != "",
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt, LastLogIn: u.LastLogIn,
		Rank: u.Rank, SessionLimit: u.SessionLimit, Settings: len(u.Settings),
		Profile: map[string]string{},
	}
	for _, f := range store.ProfileFields {
		if s := *f.Of(u); s != "" {
			v.Profile[f.Name] = s
		}
	}
	return v
}

// MarshalJSON writes the user as one flat object: the members with tags,
// then each profile field that is set.
func (v UserView) MarshalJSON() ([]byte, error) {
	type members UserView // without these methods
	head, err := json.Marshal(members(v))
	if err != nil {
		return nil, err
	}
	var o object
	for _, f := range store.ProfileFields {
		if s := v.Profile[f.Name]; s != "" {
			o.add(f.Name, s)
		}
	}
	return o.appendTo(head)
}

// UnmarshalJSON reads what MarshalJSON writes. Unknown members are
// ignored: a newer server may show more.
func (v *UserView) UnmarshalJSON(b []byte) error {
	type members UserView
	if err := json.Unmarshal(b, (*members)(v)); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	v.Profile = map[string]string{}
	for _, f := range store.ProfileFields {
		raw, ok := all[f.Name]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return memberError(err, "UserView", f.Name)
		}
		if s != "" {
			v.Profile[f.Name] = s
		}
	}
	return nil
}

// SettingView is a user setting in the shape of the Babel profile. Unlike
// Babel's, administration shows its userId as stored.
type SettingView = store.SettingView

func viewSetting(s store.Setting) SettingView {
	return SettingView{
		ID: s.ID, Category: s.Category, Group: s.Group, Name: s.Name, Value: s.Value,
		Type: s.Type, Description: s.Description, ReadOnly: s.ReadOnly, UserID: s.UserID,
	}
}

// KeyView is an API key as administration shows it: a masked hint only.
type KeyView struct {
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

func viewKey(k *store.APIKey, owner string) KeyView {
	return KeyView{
		ID: k.ID, Name: k.Name, OwnerID: k.OwnerID, Owner: owner, Permissions: k.Permissions.String(),
		Hint: k.Hint, HasClientSecret: k.HasClientSecret(), CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, Revoked: k.Revoked, LastUsed: k.LastUsed,
	}
}

// CreatedKey is the one and only time a key and its client secret are
// shown.
type CreatedKey struct {
	KeyView
	Key          string `json:"key"`
	ClientSecret string `json:"clientSecret,omitempty"`
}

// SessionView is a session (one login and its refresh-token family) as
// administration shows it.
type SessionView struct {
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
	// Browser marks a session of the browser login (a cookie).
	Browser bool `json:"browser,omitempty"`
	// LastSeen is the last use the store has recorded, to within a
	// minute (browser sessions); absent until then.
	LastSeen time.Time `json:"lastSeen,omitzero"`
}

// Kind names how the session was opened: "quick_login" (an API key's
// client secret), "browser" (the browser login's cookie) or "login" (a
// password login with refresh tokens).
func (v SessionView) Kind() string {
	switch {
	case v.KeyID != "":
		return "quick_login"
	case v.Browser:
		return "browser"
	}
	return "login"
}

func viewSession(s *store.Session, user string) SessionView {
	return SessionView{
		ID: s.ID, UserID: s.UserID, User: user, CreatedAt: s.CreatedAt, RefreshedAt: s.RefreshedAt,
		ExpiresAt: s.ExpiresAt, Revoked: s.Revoked, RevokedAt: s.RevokedAt, RevokeReason: s.RevokeReason,
		KeyID: s.KeyID, Permissions: s.Permissions.String(), Browser: s.Browser, LastSeen: s.LastSeen,
	}
}

// AddUserRequest creates a user.
type AddUserRequest struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Email    string   `json:"email,omitempty"`
	Roles    []string `json:"roles,omitempty"`
}

// UserChanges changes a user: only what is set changes. In JSON it is one
// flat object: the profile fields by name, rank, roles and sessionLimit.
type UserChanges struct {
	// Profile are the profile fields to set ("" clears one).
	Profile      store.ProfileChanges `json:"-"`
	Rank         *int                 `json:"rank,omitempty"`
	Roles        *[]string            `json:"roles,omitempty"`
	SessionLimit *int                 `json:"sessionLimit,omitempty"`
}

// MarshalJSON writes the changes flat: the members with tags, then the
// profile in the table's order. A name that is no profile field is written
// too, for the server to refuse rather than the client to drop.
func (c UserChanges) MarshalJSON() ([]byte, error) {
	type members UserChanges
	head, err := json.Marshal(members(c))
	if err != nil {
		return nil, err
	}
	var o object
	for _, f := range store.ProfileFields {
		if v, ok := c.Profile[f.Name]; ok {
			o.add(f.Name, v)
		}
	}
	var unknown []string
	for name := range c.Profile {
		if _, ok := store.ProfileFieldNamed(name); !ok {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		o.add(name, c.Profile[name])
	}
	return o.appendTo(head)
}

// UnmarshalJSON reads the changes as encoding/json reads a struct with
// DisallowUnknownFields: members in order, a name matching its field
// exactly or else ignoring case, a later member overwriting an earlier
// one, null as not given, and any other member refused, so a typo never
// passes silently.
func (c *UserChanges) UnmarshalJSON(b []byte) error {
	return eachMember(b, "UserChanges", func(name string, raw json.RawMessage) error {
		for _, f := range store.ProfileFields {
			if !strings.EqualFold(name, f.Name) {
				continue
			}
			var v *string
			if err := json.Unmarshal(raw, &v); err != nil {
				return memberError(err, "UserChanges", f.Name)
			}
			if v == nil {
				delete(c.Profile, f.Name)
				return nil
			}
			if c.Profile == nil {
				c.Profile = store.ProfileChanges{}
			}
			c.Profile[f.Name] = *v
			return nil
		}
		for _, m := range []struct {
			name string
			dst  any
		}{{"rank", &c.Rank}, {"roles", &c.Roles}, {"sessionLimit", &c.SessionLimit}} {
			if strings.EqualFold(name, m.name) {
				return memberError(json.Unmarshal(raw, m.dst), "UserChanges", m.name)
			}
		}
		return fmt.Errorf("json: unknown field %q", name)
	})
}

func (c UserChanges) empty() bool {
	return len(c.Profile) == 0 && c.Rank == nil && c.Roles == nil && c.SessionLimit == nil
}

// validate checks the values of c before they are stored. The store checks
// the email (syntax and uniqueness) itself.
func (c UserChanges) validate() error {
	if err := c.Profile.Validate(); err != nil {
		return err
	}
	if c.SessionLimit != nil && *c.SessionLimit < 0 {
		return fmt.Errorf("%w: session limit must be 0 (the gateway's default) or more", store.ErrInvalid)
	}
	if c.Roles != nil {
		for _, r := range *c.Roles {
			if err := store.CheckText("role", r, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply copies the set fields of c onto u.
func (c UserChanges) apply(u *store.User) {
	c.Profile.Apply(u)
	setIf(&u.Rank, c.Rank)
	setIf(&u.SessionLimit, c.SessionLimit)
	if c.Roles != nil {
		u.Roles = cleanList(*c.Roles)
	}
}

// SettingRequest creates a setting or updates the one of that name: Value
// always, the other fields only when set.
type SettingRequest struct {
	Name        string  `json:"name"`
	Value       string  `json:"value"`
	Category    *string `json:"category,omitempty"`
	Group       *string `json:"group,omitempty"`
	Type        *string `json:"type,omitempty"`
	Description *string `json:"description,omitempty"`
	ReadOnly    *bool   `json:"readOnly,omitempty"`
}

// CreateKeyRequest creates an API key for a user.
type CreateKeyRequest struct {
	User         string   `json:"user"`
	Name         string   `json:"name"`
	Permissions  string   `json:"permissions,omitempty"` // default all
	ExpiresIn    Duration `json:"expiresIn,omitempty"`   // "720h" or nanoseconds; zero: never
	ClientSecret bool     `json:"clientSecret,omitempty"`
	Description  string   `json:"description,omitempty"`
}

// revokeKeyRequest names a key by the key itself.
type revokeKeyRequest struct {
	Key string `json:"key"`
}

// Duration is a duration as Caddy's JSON config writes one, so that the
// admin API reads what it always has: a string ParseDuration reads
// ("720h", "30d"), or an integer of nanoseconds, which is also how it is
// written.
type Duration time.Duration

// UnmarshalJSON reads a quoted duration string or an integer.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var dur time.Duration
	var err error
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		dur, err = ParseDuration(strings.Trim(string(b), `"`))
	} else {
		err = json.Unmarshal(b, &dur)
	}
	*d = Duration(dur)
	return err
}

// ParseDuration is time.ParseDuration with the unit "d", 24 hours, as
// Caddy reads durations (caddy.ParseDuration): "1.5d", "30d12h".
func ParseDuration(s string) (time.Duration, error) {
	if len(s) > 1024 {
		return 0, fmt.Errorf("parsing duration: input string too long")
	}
	var inNumber bool
	var numStart int
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch == 'd' {
			days, err := strconv.ParseFloat(s[numStart:i], 64)
			if err != nil {
				return 0, err
			}
			s = s[:numStart] + strconv.FormatFloat(days*24, 'f', -1, 64) + "h" + s[i+1:]
			i--
			continue
		}
		if !inNumber {
			numStart = i
		}
		inNumber = (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+'
	}
	return time.ParseDuration(s)
}

// object writes JSON members, to be appended to an object.
type object struct {
	buf bytes.Buffer
	err error
}

func (o *object) add(name string, v any) {
	if o.err != nil {
		return
	}
	value, err := json.Marshal(v)
	if err != nil {
		o.err = err
		return
	}
	key, _ := json.Marshal(name)
	o.buf.WriteByte(',')
	o.buf.Write(key)
	o.buf.WriteByte(':')
	o.buf.Write(value)
}

// appendTo adds the members to the JSON object head ("{...}").
func (o *object) appendTo(head []byte) ([]byte, error) {
	if o.err != nil {
		return nil, o.err
	}
	members := o.buf.Bytes()
	if len(members) == 0 {
		return head, nil
	}
	out := bytes.TrimSuffix(head, []byte("}"))
	if len(out) == 1 { // "{": no member before these
		members = members[1:]
	}
	out = append(out, members...)
	return append(out, '}'), nil
}

// eachMember calls fn with each member of the JSON object b, in order; a
// null b is no members.
func eachMember(b []byte, typ string, fn func(name string, raw json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	kind := "array"
	switch tok.(type) {
	case nil:
		return nil
	case json.Delim:
		if tok == json.Delim('{') {
			kind = ""
		}
	case string:
		kind = "string"
	case bool:
		kind = "bool"
	case float64:
		kind = "number"
	}
	if kind != "" {
		return fmt.Errorf("json: cannot unmarshal %s into Go value of type admin.%s", kind, typ)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		if err := fn(tok.(string), raw); err != nil {
			return err
		}
	}
	return nil
}

// memberError names the member in a type error, as encoding/json does for
// a struct field.
func memberError(err error, typ, member string) error {
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		te.Struct, te.Field = typ, member
	}
	return err
}
