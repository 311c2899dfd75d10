package babel

import (
	"net/http"
	"reflect"
	"strconv"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/httpx"
	"github.com/authgate/authgate/store"
)

// POST user, built for the usual client round trip: read the user, edit a
// field, post the whole object back. Members left out or null stay; the
// immutable ones must come back unchanged; settings change only in value;
// the service applies the rest whole or not at all (auth.EditProfile).

var (
	errMissingUser     = httpx.Refuse(http.StatusBadRequest, "invalid_request", `the body must be {"user":{...}}`)
	errReadOnlySetting = httpx.Refuse(http.StatusForbidden, "forbidden", "a readOnly setting cannot be changed")
)

// edit applies a {"user":{...}} body to the caller's own profile.
func (d *Dialect) edit(w http.ResponseWriter, r *http.Request, p *auth.Principal, keys []*store.APIKey) (*store.User, error) {
	body, err := readFields(w, r)
	if err != nil {
		return nil, err
	}
	var in fields
	if err := body.decode("user", &in); err != nil {
		return nil, err
	}
	if in == nil {
		return nil, errMissingUser
	}
	changes, rank, err := profileOf(in)
	if err != nil {
		return nil, err
	}
	return d.svc.EditProfile(p.UserID(), func(u *store.User) (bool, error) {
		return applyUser(u, keys, in, changes, rank)
	})
}

// applyUser checks in against the fresh record u and applies the profile
// changes and setting values. It reports whether anything changed.
func applyUser(u *store.User, keys []*store.APIKey, in fields, changes store.ProfileChanges, rank *int) (bool, error) {
	before := userOf(u, keys)
	if err := in.unchanged(before.immutable()); err != nil {
		return false, err
	}
	changes.Apply(u)
	if rank != nil {
		u.Rank = *rank
	}
	if err := applySettings(u, in); err != nil {
		return false, err
	}
	return !reflect.DeepEqual(before, userOf(u, keys)), nil
}

// profileOf reads the Babel fields of the profile a user may edit (and
// rank), checked by the same rules administration's changes are.
func profileOf(in fields) (store.ProfileChanges, *int, error) {
	changes := store.ProfileChanges{}
	for _, f := range store.ProfileFields {
		if !f.Babel || !in.has(f.Name) {
			continue
		}
		var v string
		if err := in.decode(f.Name, &v); err != nil {
			return nil, nil, err
		}
		changes[f.Name] = v
	}
	var rank *int
	if err := in.decode("rank", &rank); err != nil {
		return nil, nil, err
	}
	if err := changes.Validate(); err != nil {
		return nil, nil, httpx.Refuse(http.StatusBadRequest, "invalid_request", err.Error())
	}
	return changes, rank, nil
}

// applySettings sets the values of the existing settings that in's
// "settings" names, by id or else by name. Settings are neither added nor
// removed here (administration does that); those not named stay as they
// are.
func applySettings(u *store.User, in fields) error {
	var items []fields
	if err := in.decode("settings", &items); err != nil {
		return err
	}
	seen := map[int]bool{}
	for _, item := range items {
		i, err := findSetting(u.Settings, item)
		if err != nil {
			return err
		}
		if seen[i] {
			return httpx.Refuse(http.StatusBadRequest, "invalid_request", "a setting is named twice")
		}
		seen[i] = true
		s := &u.Settings[i]
		if err := item.unchanged(settingImmutable(s.View(u.ID))); err != nil {
			return err
		}
		value := s.Value
		if err := item.decode("value", &value); err != nil {
			return err
		}
		if value == s.Value {
			continue
		}
		if s.ReadOnly {
			return errReadOnlySetting
		}
		if err := store.CheckText("setting value", value, true); err != nil {
			return httpx.Refuse(http.StatusBadRequest, "invalid_request", err.Error())
		}
		s.Value = value
	}
	return nil
}

// findSetting returns the index of the setting item names: by id when it
// has one, else by a name that exactly one setting has.
func findSetting(settings []store.Setting, item fields) (int, error) {
	var id int64
	var name string
	if err := item.decode("id", &id); err != nil {
		return 0, err
	}
	if err := item.decode("name", &name); err != nil {
		return 0, err
	}
	byID := item.has("id")
	if !byID && !item.has("name") {
		return 0, httpx.Refuse(http.StatusBadRequest, "invalid_request", "each setting needs an id or a name")
	}
	found := -1
	for i, s := range settings {
		if byID && s.ID != id || !byID && s.Name != name {
			continue
		}
		if found >= 0 {
			return 0, httpx.Refuse(http.StatusBadRequest, "invalid_request", "setting name "+strconv.Quote(name)+" is ambiguous; name the setting by id")
		}
		found = i
	}
	switch {
	case found >= 0:
		return found, nil
	case byID:
		return 0, httpx.Refuse(http.StatusBadRequest, "invalid_request", "there is no setting with id "+strconv.FormatInt(id, 10)+"; settings cannot be added here")
	}
	return 0, httpx.Refuse(http.StatusBadRequest, "invalid_request", "there is no setting named "+strconv.Quote(name)+"; settings cannot be added here")
}
