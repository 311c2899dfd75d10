package babel

import (
	"bytes"
	"encoding/json"
	"slices"
	"time"

	"github.com/authgate/authgate/store"
)

// The user as Babel clients see it.

// babelTime is a timestamp as Babel clients see it: RFC 3339 in UTC with
// milliseconds, or null when never set.
type babelTime time.Time

const babelTimeLayout = "2006-01-02T15:04:05.000Z07:00"

func (t babelTime) MarshalJSON() ([]byte, error) {
	if time.Time(t).IsZero() {
		return []byte("null"), nil
	}
	return []byte(`"` + time.Time(t).UTC().Format(babelTimeLayout) + `"`), nil
}

// UnmarshalJSON reads what clients echo back: RFC 3339 at any precision
// and offset, a zoneless timestamp (.NET's unspecified kind) as UTC, and
// null or "" as never.
func (t *babelTime) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	if s == nil || *s == "" {
		*t = babelTime{}
		return nil
	}
	parsed, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		parsed, err = time.Parse("2006-01-02T15:04:05.999999999", *s)
	}
	*t = babelTime(parsed)
	return err
}

// sameTime compares to the second: clients may keep less precision than we
// send.
func sameTime(a, b babelTime) bool {
	return time.Time(a).Truncate(time.Second).Equal(time.Time(b).Truncate(time.Second))
}

// userBody is the Babel user object: id and userName, the Babel fields of
// the profile (store.ProfileFields), rank, the timestamps, roles, the
// user's API keys and settings. Every member is always present.
type userBody struct {
	ID                  string
	UserName            string
	Profile             map[string]string // the Babel profile fields, by name
	Rank                int
	CreatedAt           babelTime
	UpdatedAt           babelTime
	LastDismissMessages babelTime
	LastLogIn           babelTime
	Roles               []string
	APIKeys             []babelKey
	Settings            []store.SettingView
}

// MarshalJSON writes the members in a fixed order: id, userName, the
// profile in the table's order, then the rest.
func (b userBody) MarshalJSON() ([]byte, error) {
	type member struct {
		name  string
		value any
	}
	members := []member{{"id", b.ID}, {"userName", b.UserName}}
	for _, f := range store.ProfileFields {
		if f.Babel {
			members = append(members, member{f.Name, b.Profile[f.Name]})
		}
	}
	members = append(members,
		member{"rank", b.Rank}, member{"createdAt", b.CreatedAt}, member{"updatedAt", b.UpdatedAt},
		member{"lastDismissMessages", b.LastDismissMessages}, member{"lastLogIn", b.LastLogIn},
		member{"roles", b.Roles}, member{"apiKeys", b.APIKeys}, member{"settings", b.Settings})
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(m.name)
		value, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		buf.Write(name)
		buf.WriteByte(':')
		buf.Write(value)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// immutable lists the members POST user accepts only unchanged.
//
// updatedAt and lastLogIn are not among them: the server moves them on its
// own (every write, every login), so a client posting back a copy it read
// a moment ago would be refused for a change it never made. They are
// ignored on input instead, and never written from it.
func (b userBody) immutable() []immutableField {
	return []immutableField{
		sameAs("id", b.ID, equal),
		sameAs("userName", b.UserName, equal),
		sameAs("roles", b.Roles, sameRoles),
		sameAs("apiKeys", b.APIKeys, sameKeys),
		sameAs("createdAt", b.CreatedAt, sameTime),
		sameAs("lastDismissMessages", b.LastDismissMessages, sameTime),
	}
}

// babelKey is an API key in the profile: masked hints, never the secrets.
type babelKey struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Key          string    `json:"key"`
	ClientSecret string    `json:"clientSecret"`
	CreatedDate  babelTime `json:"createdDate"`
	ExpireDate   babelTime `json:"expireDate"`
	OwnerID      string    `json:"ownerId"`
	Revoked      bool      `json:"revoked"`
	Permissions  int       `json:"permissions"`
	Description  string    `json:"description"`
}

// settingImmutable lists the members of a setting other than its value.
func settingImmutable(s store.SettingView) []immutableField {
	return []immutableField{
		sameAs("category", s.Category, equal),
		sameAs("group", s.Group, equal),
		sameAs("name", s.Name, equal),
		sameAs("type", s.Type, equal),
		sameAs("description", s.Description, equal),
		sameAs("readOnly", s.ReadOnly, equal),
		sameAs("userId", s.UserID, equal),
	}
}

func userOf(u *store.User, keys []*store.APIKey) userBody {
	b := userBody{
		ID: u.ID, UserName: u.Username, Profile: map[string]string{}, Rank: u.Rank,
		CreatedAt: babelTime(u.CreatedAt), UpdatedAt: babelTime(u.UpdatedAt),
		LastDismissMessages: babelTime(u.LastDismissMessages), LastLogIn: babelTime(u.LastLogIn),
		Roles:    append([]string{}, u.Roles...),
		APIKeys:  make([]babelKey, 0, len(keys)),
		Settings: make([]store.SettingView, 0, len(u.Settings)),
	}
	for _, f := range store.ProfileFields {
		if f.Babel {
			b.Profile[f.Name] = *f.Of(u)
		}
	}
	for _, k := range keys {
		b.APIKeys = append(b.APIKeys, babelKey{
			ID: k.ID, Name: k.Name, Key: k.Hint, ClientSecret: k.ClientSecretHint,
			CreatedDate: babelTime(k.CreatedAt), ExpireDate: babelTime(k.ExpiresAt),
			OwnerID: k.OwnerID, Revoked: k.Revoked, Permissions: int(k.Permissions),
			Description: k.Description,
		})
	}
	for _, s := range u.Settings {
		b.Settings = append(b.Settings, s.View(u.ID))
	}
	return b
}

// sameRoles compares roles as sets: their order carries no meaning.
func sameRoles(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// sameKeys compares key lists by id, in any order.
func sameKeys(a, b []babelKey) bool {
	if len(a) != len(b) {
		return false
	}
	byID := make(map[string]babelKey, len(b))
	for _, k := range b {
		byID[k.ID] = k
	}
	for _, k := range a {
		o, ok := byID[k.ID]
		delete(byID, k.ID) // each id once
		if !ok || !sameTime(k.CreatedDate, o.CreatedDate) || !sameTime(k.ExpireDate, o.ExpireDate) {
			return false
		}
		// The timestamps are compared; make them equal for the rest.
		k.CreatedDate, k.ExpireDate = o.CreatedDate, o.ExpireDate
		if k != o {
			return false
		}
	}
	return true
}
