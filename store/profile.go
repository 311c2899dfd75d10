package store

import (
	"fmt"
	"regexp"
	"time"
	"unicode"
	"unicode/utf8"
)

// The profile: the text fields of a user that the user and administrators
// edit. ProfileFields is the one list of them; the admin views and
// requests, the CLI's `user set` flags and the Babel user object are all
// made from it, so a new field is one line here (and one in User).

// ProfileField is one text field of a user's profile.
type ProfileField struct {
	// Name is the field's JSON member in every API and in the stored
	// record, e.g. "phoneNumber".
	Name string
	// Flag is its flag of `caddy authgate user set`, e.g. "phone"; Usage
	// the flag's help.
	Flag, Usage string
	// Label names it in messages, e.g. "phone".
	Label string
	// Multiline fields may hold line breaks and tabs.
	Multiline bool
	// Babel fields are part of the Babel user object, where the user edits
	// them; the others (lang, timezone) only administrators set.
	Babel bool
	// Check is the field's syntax beyond plain text, for a non-empty
	// value; nil for none.
	Check func(v string) error
	// Of is the field in u.
	Of func(u *User) *string
}

// ProfileFields are the profile's text fields, in the order they are
// shown. Email is one of them, but it is also a login (logins.go).
var ProfileFields = []ProfileField{
	{Name: "email", Flag: "email", Usage: "email address (also a login; \"\" removes it)", Label: "email", Babel: true, Of: func(u *User) *string { return &u.Email }},
	{Name: "phoneNumber", Flag: "phone", Usage: "phone number", Label: "phone", Babel: true, Of: func(u *User) *string { return &u.PhoneNumber }},
	{Name: "title", Flag: "title", Usage: "title", Label: "title", Babel: true, Of: func(u *User) *string { return &u.Title }},
	{Name: "firstName", Flag: "first-name", Usage: "first name", Label: "first name", Babel: true, Of: func(u *User) *string { return &u.FirstName }},
	{Name: "lastName", Flag: "last-name", Usage: "last name", Label: "last name", Babel: true, Of: func(u *User) *string { return &u.LastName }},
	{Name: "department", Flag: "department", Usage: "department", Label: "department", Babel: true, Of: func(u *User) *string { return &u.Department }},
	{Name: "birthDate", Flag: "birth-date", Usage: "birth date, YYYY-MM-DD", Label: "birth date", Babel: true, Check: checkBirthDate, Of: func(u *User) *string { return &u.BirthDate }},
	{Name: "image", Flag: "image", Usage: "image (a URL)", Label: "image", Babel: true, Of: func(u *User) *string { return &u.Image }},
	{Name: "address", Flag: "address", Usage: "street address", Label: "address", Multiline: true, Babel: true, Of: func(u *User) *string { return &u.Address }},
	{Name: "postalCode", Flag: "postal-code", Usage: "postal code", Label: "postal code", Babel: true, Of: func(u *User) *string { return &u.PostalCode }},
	{Name: "region", Flag: "region", Usage: "region", Label: "region", Babel: true, Of: func(u *User) *string { return &u.Region }},
	{Name: "city", Flag: "city", Usage: "city", Label: "city", Babel: true, Of: func(u *User) *string { return &u.City }},
	{Name: "country", Flag: "country", Usage: "country", Label: "country", Babel: true, Of: func(u *User) *string { return &u.Country }},
	{Name: "countryCode", Flag: "country-code", Usage: "country code, e.g. DE", Label: "country code", Babel: true, Of: func(u *User) *string { return &u.CountryCode }},
	{Name: "mobile", Flag: "mobile", Usage: "mobile number", Label: "mobile", Babel: true, Of: func(u *User) *string { return &u.Mobile }},
	{Name: "notes", Flag: "notes", Usage: "notes", Label: "notes", Multiline: true, Babel: true, Of: func(u *User) *string { return &u.Notes }},
	{Name: "customerId", Flag: "customer-id", Usage: "customer id", Label: "customer id", Babel: true, Of: func(u *User) *string { return &u.CustomerID }},
	{Name: "lang", Flag: "lang", Usage: "language, e.g. de or en-GB", Label: "lang", Check: checkLang, Of: func(u *User) *string { return &u.Lang }},
	{Name: "timezone", Flag: "timezone", Usage: "IANA time zone, e.g. Europe/Berlin", Label: "timezone", Check: checkTimezone, Of: func(u *User) *string { return &u.Timezone }},
}

// ProfileFieldNamed returns the field named name (its JSON member), if any.
func ProfileFieldNamed(name string) (ProfileField, bool) {
	for _, f := range ProfileFields {
		if f.Name == name {
			return f, true
		}
	}
	return ProfileField{}, false
}

// ProfileChanges are the text fields a request sets, by ProfileField.Name;
// fields not in it stay as they are ("" clears one).
type ProfileChanges map[string]string

// Validate checks every value; a name that is no profile field is
// ErrInvalid.
func (c ProfileChanges) Validate() error {
	for _, f := range ProfileFields {
		if v, ok := c[f.Name]; ok {
			if err := f.Validate(v); err != nil {
				return err
			}
		}
	}
	for name := range c {
		if _, ok := ProfileFieldNamed(name); !ok {
			return fmt.Errorf("%w: %q is no profile field", ErrInvalid, name)
		}
	}
	return nil
}

// Apply sets the changed fields of u.
func (c ProfileChanges) Apply(u *User) {
	for _, f := range ProfileFields {
		if v, ok := c[f.Name]; ok {
			*f.Of(u) = v
		}
	}
}

// Validate checks a value for the field: text rules first (CheckText),
// then the field's own syntax. The store checks an email's syntax and
// uniqueness itself (logins.go).
func (f ProfileField) Validate(v string) error {
	if err := CheckText(f.Label, v, f.Multiline); err != nil {
		return err
	}
	if v != "" && f.Check != nil {
		return f.Check(v)
	}
	return nil
}

// CheckText refuses invalid UTF-8 and control characters (they forge log
// lines and break headers); multiline text may hold tabs and line breaks.
func CheckText(what, s string, multiline bool) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\r' || r == '\t')) {
			return fmt.Errorf("%w: %s must not contain control characters", ErrInvalid, what)
		}
	}
	return nil
}

var (
	langTag  = regexp.MustCompile(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$`)
	zoneName = regexp.MustCompile(`^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$`)
)

func checkBirthDate(v string) error {
	if _, err := time.Parse(time.DateOnly, v); err == nil {
		return nil
	}
	if _, err := time.Parse(time.RFC3339, v); err == nil {
		return nil
	}
	return fmt.Errorf("%w: birth date %q: want YYYY-MM-DD or an RFC 3339 time", ErrInvalid, v)
}

func checkLang(v string) error {
	if !langTag.MatchString(v) {
		return fmt.Errorf("%w: lang %q: want a language tag like de or en-GB", ErrInvalid, v)
	}
	return nil
}

// checkTimezone checks syntax only: the host's time zone database may be
// missing or older.
func checkTimezone(v string) error {
	if !zoneName.MatchString(v) {
		return fmt.Errorf("%w: timezone %q: want an IANA name like Europe/Berlin", ErrInvalid, v)
	}
	return nil
}

// SettingView is a settings row as every API shows it: each member
// present, and a setting stored without an owner showing the user it
// belongs to.
type SettingView struct {
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

// View shows s as a setting of the user userID.
func (s Setting) View(userID string) SettingView {
	if s.UserID == "" {
		s.UserID = userID
	}
	return SettingView{
		ID: s.ID, Category: s.Category, Group: s.Group, Name: s.Name, Value: s.Value,
		Type: s.Type, Description: s.Description, ReadOnly: s.ReadOnly, UserID: s.UserID,
	}
}
