package caddymodule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authgate/authgate/store"
)

// The Babel Licensing Service management dialect (API.md section 5): its
// clients log in, read and edit their own profile, and log out against
// authgate unchanged. Every answer, success or refusal, is a JSON envelope.

func (h *Handler) babelRoutes() map[string]routeFunc {
	return map[string]routeFunc{
		"/login":  h.babelLogin,
		"/user":   h.babelUser,
		"/logout": h.babelLogout,
	}
}

// Envelope codes. 0 is success; each kind of refusal has its own code, so
// clients can branch on it without reading messages. The numbers are part
// of the public contract: never renumber, only add.
//
//	code  HTTP  meaning
//	   0  200   success
//	   1  400   bad request: malformed JSON, a missing or mistyped field, an
//	            attempt to change an immutable field, an unknown setting,
//	            more than one credential, an API key on logout
//	   2  415   unsupported content type (send application/json)
//	   3  413   body larger than 64 KiB
//	   4  401   wrong username or password
//	   5  429   account locked after too many failures (see Retry-After)
//	   6  401   no credential
//	   7  401   invalid, expired or revoked token or API key
//	   8  403   forbidden: the key lacks the permission, a readOnly setting,
//	            or an email change (an administrator makes those)
//	   9  409   conflict (no route answers it since email changes moved to
//	            administration; kept, as codes are never reused)
//	  10  503   credential store unavailable; try again
//	  11  405   method not allowed (see Allow)
const (
	babelBadRequest        = 1
	babelUnsupportedType   = 2
	babelBodyTooLarge      = 3
	babelBadCredentials    = 4
	babelLocked            = 5
	babelMissingCredential = 6
	babelInvalidToken      = 7
	babelForbidden         = 8
	babelConflict          = 9
	babelUnavailable       = 10
	babelMethodNotAllowed  = 11
)

var (
	errBabelContentType = refusal(http.StatusUnsupportedMediaType, "invalid_request", "send the body as application/json")
	errDuplicateName    = refusal(http.StatusBadRequest, "invalid_request", "a JSON object names the same member twice")
	errMissingUser      = refusal(http.StatusBadRequest, "invalid_request", `the body must be {"user":{...}}`)
	errEmailByAdmin     = refusal(http.StatusForbidden, "forbidden", "the email is a login: an administrator changes it")
	errReadOnlySetting  = refusal(http.StatusForbidden, "forbidden", "a readOnly setting cannot be changed")
	errNoChange         = errors.New("nothing to change") // aborts an update that would change nothing
)

// babelEnvelope starts every Babel response body.
type babelEnvelope struct {
	Success bool   `json:"success"`
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func babelOK(message string) babelEnvelope {
	return babelEnvelope{Success: true, Message: message}
}

// babelCode maps a refusal of any route to its envelope code.
func babelCode(e *authError) int {
	switch e.status {
	case http.StatusBadRequest:
		return babelBadRequest
	case http.StatusUnauthorized:
		switch e.code {
		case "unauthorized":
			return babelMissingCredential
		case "invalid_credentials":
			return babelBadCredentials
		}
		return babelInvalidToken
	case http.StatusForbidden:
		return babelForbidden
	case http.StatusMethodNotAllowed:
		return babelMethodNotAllowed
	case http.StatusConflict:
		return babelConflict
	case http.StatusRequestEntityTooLarge:
		return babelBodyTooLarge
	case http.StatusUnsupportedMediaType:
		return babelUnsupportedType
	case http.StatusTooManyRequests:
		return babelLocked
	}
	if e.status < 500 {
		return babelBadRequest
	}
	return babelUnavailable
}

// babelRefuse answers a refusal as an envelope, with the status, challenge
// and Retry-After that writeAuthError gives the other dialect.
func (h *Handler) babelRefuse(w http.ResponseWriter, e *authError) error {
	if e == errStore {
		h.logger.Error("credential store unavailable")
	}
	if c, ok := challenges[e.code]; ok && e.status != http.StatusServiceUnavailable {
		w.Header().Set("WWW-Authenticate", c)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	return writeJSON(w, e.status, babelEnvelope{Code: babelCode(e), Message: e.description})
}

func (h *Handler) babelMethodNotAllowed(w http.ResponseWriter, allow string) error {
	w.Header().Set("Allow", allow)
	return h.babelRefuse(w, refusal(http.StatusMethodNotAllowed, "invalid_request", "this route accepts "+allow+" only"))
}

// POST {p}/login: {"username","password"}; the username may be the email.
func (h *Handler) babelLogin(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return h.babelMethodNotAllowed(w, http.MethodPost)
	}
	in, aerr := readBabelJSON(w, r)
	if aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	var username, password string
	if aerr := in.decode("username", &username); aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	if aerr := in.decode("password", &password); aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	if username == "" || password == "" {
		return h.babelRefuse(w, errMissingLogin)
	}
	u, aerr := h.app.checkPassword(username, password)
	if aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	pair, aerr := h.app.openSession(u, 0, "")
	if aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	return writeJSON(w, http.StatusOK, struct {
		babelEnvelope
		Token     string `json:"token"`
		ExpiresIn int64  `json:"expiresIn"`
	}{babelOK("logged in"), pair.access, pair.expiresIn})
}

// POST {p}/logout: revokes the Bearer token's session. API keys are
// revoked by administration, not here.
func (h *Handler) babelLogout(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return h.babelMethodNotAllowed(w, http.MethodPost)
	}
	p, aerr := h.authenticate(r)
	if aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	if _, aerr := readBabelJSON(w, r); aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	if aerr := h.app.closeSession(&p); aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	return writeJSON(w, http.StatusOK, babelOK("logged out"))
}

// {p}/user: GET reads the caller's profile, POST edits it.
func (h *Handler) babelUser(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		return h.babelMethodNotAllowed(w, "GET, HEAD, POST")
	}
	p, aerr := h.authenticateRoute(r)
	if aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	keys, err := h.app.store.ListAPIKeys(p.userID())
	if err != nil {
		return h.babelRefuse(w, errStore)
	}
	var u *store.User
	if r.Method == http.MethodPost {
		u, aerr = h.updateBabelUser(w, r, p.userID(), keys)
	} else {
		u, err = h.app.store.UserByID(p.userID())
		if err != nil {
			aerr = storeFailure(err, errBadToken)
		}
	}
	if aerr != nil {
		return h.babelRefuse(w, aerr)
	}
	message := "OK"
	if r.Method == http.MethodPost {
		message = "user updated"
	}
	return writeJSON(w, http.StatusOK, struct {
		babelEnvelope
		User babelUserBody `json:"user"`
	}{babelOK(message), babelUserOf(u, keys)})
}

// updateBabelUser applies a {"user":{...}} body to the user in one store
// transaction: all of it or, on any refusal, nothing.
func (h *Handler) updateBabelUser(w http.ResponseWriter, r *http.Request, userID string, keys []*store.APIKey) (*store.User, *authError) {
	body, aerr := readBabelJSON(w, r)
	if aerr != nil {
		return nil, aerr
	}
	var in babelFields
	if aerr := body.decode("user", &in); aerr != nil {
		return nil, aerr
	}
	if in == nil {
		return nil, errMissingUser
	}
	profile, aerr := babelProfile(in)
	if aerr != nil {
		return nil, aerr
	}
	var current *store.User
	u, err := h.app.store.UpdateUser(userID, func(u *store.User) error {
		changed, aerr := applyBabelUser(u, keys, in, profile)
		if aerr != nil {
			return aerr
		}
		if !changed {
			current = u
			return errNoChange
		}
		return nil
	})
	var refused *authError
	switch {
	case err == nil:
		return u, nil
	case errors.Is(err, errNoChange):
		// Nothing to write: updatedAt stays, so posting the same object
		// twice works.
		return current, nil
	case errors.As(err, &refused):
		return nil, refused
	case errors.Is(err, store.ErrExists):
		return nil, errEmailByAdmin
	case errors.Is(err, store.ErrInvalid):
		return nil, refusal(http.StatusBadRequest, "invalid_request", err.Error())
	}
	return nil, storeFailure(err, errBadToken)
}

// applyBabelUser checks in against the fresh record u and applies the
// profile changes and setting values. It reports whether anything changed.
func applyBabelUser(u *store.User, keys []*store.APIKey, in babelFields, profile userChanges) (bool, *authError) {
	before := babelUserOf(u, keys)
	if aerr := in.unchanged(before.immutable()); aerr != nil {
		return false, aerr
	}
	if profile.Email != nil && !selfServiceEmail(u.Email, *profile.Email) {
		return false, errEmailByAdmin
	}
	profile.apply(u)
	if aerr := applySettings(u, in); aerr != nil {
		return false, aerr
	}
	return !reflect.DeepEqual(before, babelUserOf(u, keys)), nil
}

// selfServiceEmail reports whether a user may change their own email from
// old to new: only to no email, or to another spelling of the same login
// (case, width). An email is a login, so a move to any other address would
// have to be refused when another account holds it, and that refusal would
// tell a signed-in user which logins exist. Every other change is refused
// alike, whether the address is free or not; an administrator makes it
// (`caddy authgate user set <u> --email`), and sees a 409 if it is taken.
func selfServiceEmail(old, new string) bool {
	if new == "" || new == old {
		return true
	}
	a, errA := store.NormalizeLogin(old)
	b, errB := store.NormalizeLogin(new)
	return errA == nil && errB == nil && a == b
}

// babelProfile reads the members a user may edit into the changes that
// administration makes, checked by the same rules (no control characters,
// a real birth date, ...).
func babelProfile(in babelFields) (userChanges, *authError) {
	var c userChanges
	for name, field := range map[string]any{
		"email": &c.Email, "phoneNumber": &c.PhoneNumber, "title": &c.Title,
		"firstName": &c.FirstName, "lastName": &c.LastName, "department": &c.Department,
		"birthDate": &c.BirthDate, "rank": &c.Rank, "image": &c.Image,
		"address": &c.Address, "postalCode": &c.PostalCode, "region": &c.Region,
		"city": &c.City, "country": &c.Country, "countryCode": &c.CountryCode,
		"mobile": &c.Mobile, "notes": &c.Notes, "customerId": &c.CustomerID,
	} {
		if aerr := in.decode(name, field); aerr != nil {
			return c, aerr
		}
	}
	if err := c.validate(); err != nil {
		return c, refusal(http.StatusBadRequest, "invalid_request", err.Error())
	}
	return c, nil
}

// applySettings sets the values of the existing settings that in's
// "settings" names, by id or else by name. Settings are neither added nor
// removed here (administration does that); those not named stay as they
// are.
func applySettings(u *store.User, in babelFields) *authError {
	var items []babelFields
	if aerr := in.decode("settings", &items); aerr != nil {
		return aerr
	}
	seen := map[int]bool{}
	for _, item := range items {
		i, aerr := findSetting(u.Settings, item)
		if aerr != nil {
			return aerr
		}
		if seen[i] {
			return refusal(http.StatusBadRequest, "invalid_request", "a setting is named twice")
		}
		seen[i] = true
		s := &u.Settings[i]
		if aerr := item.unchanged(babelSettingOf(*s, u.ID).immutable()); aerr != nil {
			return aerr
		}
		value := s.Value
		if aerr := item.decode("value", &value); aerr != nil {
			return aerr
		}
		if value == s.Value {
			continue
		}
		if s.ReadOnly {
			return errReadOnlySetting
		}
		if err := checkText("setting value", value, true); err != nil {
			return refusal(http.StatusBadRequest, "invalid_request", err.Error())
		}
		s.Value = value
	}
	return nil
}

// findSetting returns the index of the setting item names: by id when it
// has one, else by a name that exactly one setting has.
func findSetting(settings []store.Setting, item babelFields) (int, *authError) {
	var id int64
	var name string
	if aerr := item.decode("id", &id); aerr != nil {
		return 0, aerr
	}
	if aerr := item.decode("name", &name); aerr != nil {
		return 0, aerr
	}
	byID := item.has("id")
	if !byID && !item.has("name") {
		return 0, refusal(http.StatusBadRequest, "invalid_request", "each setting needs an id or a name")
	}
	found := -1
	for i, s := range settings {
		if byID && s.ID != id || !byID && s.Name != name {
			continue
		}
		if found >= 0 {
			return 0, refusal(http.StatusBadRequest, "invalid_request", "setting name "+strconv.Quote(name)+" is ambiguous; name the setting by id")
		}
		found = i
	}
	switch {
	case found >= 0:
		return found, nil
	case byID:
		return 0, refusal(http.StatusBadRequest, "invalid_request", "there is no setting with id "+strconv.FormatInt(id, 10)+"; settings cannot be added here")
	}
	return 0, refusal(http.StatusBadRequest, "invalid_request", "there is no setting named "+strconv.Quote(name)+"; settings cannot be added here")
}

// ---------------------------------------------------------------------------
// Reading requests.

// babelFields is a JSON object with its members still encoded, so a member
// that is absent (or null) can be told from one that is empty. Member names
// match exactly, as JSON says, not case-insensitively as encoding/json would.
type babelFields map[string]json.RawMessage

// has reports whether name is present and not null.
func (f babelFields) has(name string) bool {
	raw, ok := f[name]
	return ok && string(raw) != "null"
}

// decode sets *v from member name when it is present and not null, and
// leaves *v alone otherwise. A value of the wrong type is a bad request.
func (f babelFields) decode(name string, v any) *authError {
	if !f.has(name) {
		return nil
	}
	if err := json.Unmarshal(f[name], v); err != nil {
		return refusal(http.StatusBadRequest, "invalid_request", strconv.Quote(name)+" has the wrong type or form")
	}
	return nil
}

// unchanged refuses a member of f that differs from its current value.
// Clients post back the whole object they read, so a member equal to the
// current value is fine: only an actual change is refused.
func (f babelFields) unchanged(fields []immutableField) *authError {
	for _, field := range fields {
		if !f.has(field.name) {
			continue
		}
		same, err := field.same(f[field.name])
		if err != nil {
			return refusal(http.StatusBadRequest, "invalid_request", strconv.Quote(field.name)+" has the wrong type or form")
		}
		if !same {
			return refusal(http.StatusBadRequest, "invalid_request", strconv.Quote(field.name)+" cannot be changed (if your copy is old, read it again)")
		}
	}
	return nil
}

// immutableField compares a posted member with the current value.
type immutableField struct {
	name string
	same func(json.RawMessage) (bool, error)
}

// sameAs builds an immutableField comparing with cur by equal.
func sameAs[T any](name string, cur T, equal func(a, b T) bool) immutableField {
	return immutableField{name, func(raw json.RawMessage) (bool, error) {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return false, err
		}
		return equal(v, cur), nil
	}}
}

func equal[T comparable](a, b T) bool { return a == b }

// readBabelJSON reads a request body: JSON only, at most maxAuthBody bytes,
// an object without duplicate member names. An empty body reads as {}.
func readBabelJSON(w http.ResponseWriter, r *http.Request) (babelFields, *authError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAuthBody))
	if err != nil {
		return nil, bodyError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return babelFields{}, nil
	}
	if !isJSONType(r.Header.Get("Content-Type")) {
		return nil, errBabelContentType
	}
	if err := checkDuplicateNames(body); err != nil {
		return nil, err
	}
	var f babelFields
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, errMalformed
	}
	if f == nil { // the body was null
		f = babelFields{}
	}
	return f, nil
}

// isJSONType accepts application/json and any application/*+json.
func isJSONType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" ||
		strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// checkDuplicateNames refuses a JSON text in which some object names a
// member twice: encoding/json would silently keep the last, and a proxy in
// front of us might have read the first.
func checkDuplicateNames(body []byte) *authError {
	type object struct {
		names   map[string]bool
		wantKey bool
	}
	var stack []*object // nil entries are arrays
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return errMalformed
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if name, ok := tok.(string); ok && top != nil && top.wantKey {
			if top.names[name] {
				return errDuplicateName
			}
			top.names[name] = true
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &object{names: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, nil)
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the enclosing object expects its next name.
		if len(stack) > 0 && stack[len(stack)-1] != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
}

// ---------------------------------------------------------------------------
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

// babelUserBody is the Babel user object. Every member is always present.
type babelUserBody struct {
	ID                  string         `json:"id"`
	UserName            string         `json:"userName"`
	Email               string         `json:"email"`
	PhoneNumber         string         `json:"phoneNumber"`
	Title               string         `json:"title"`
	FirstName           string         `json:"firstName"`
	LastName            string         `json:"lastName"`
	Department          string         `json:"department"`
	BirthDate           string         `json:"birthDate"`
	CreatedAt           babelTime      `json:"createdAt"`
	UpdatedAt           babelTime      `json:"updatedAt"`
	LastDismissMessages babelTime      `json:"lastDismissMessages"`
	LastLogIn           babelTime      `json:"lastLogIn"`
	Rank                int            `json:"rank"`
	Image               string         `json:"image"`
	Address             string         `json:"address"`
	PostalCode          string         `json:"postalCode"`
	Region              string         `json:"region"`
	City                string         `json:"city"`
	Country             string         `json:"country"`
	CountryCode         string         `json:"countryCode"`
	Mobile              string         `json:"mobile"`
	Notes               string         `json:"notes"`
	CustomerID          string         `json:"customerId"`
	Roles               []string       `json:"roles"`
	APIKeys             []babelKey     `json:"apiKeys"`
	Settings            []babelSetting `json:"settings"`
}

// immutable lists the members POST user accepts only unchanged.
//
// updatedAt and lastLogIn are not among them: the server moves them on its
// own (every write, every login), so a client posting back a copy it read
// a moment ago would be refused for a change it never made. They are
// ignored on input instead, and never written from it.
func (b babelUserBody) immutable() []immutableField {
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

// babelSetting is a settings row of the Babel profile: the same members
// administration shows.
type babelSetting settingView

// immutable lists the members of a setting other than its value.
func (s babelSetting) immutable() []immutableField {
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

func babelUserOf(u *store.User, keys []*store.APIKey) babelUserBody {
	b := babelUserBody{
		ID: u.ID, UserName: u.Username, Email: u.Email, PhoneNumber: u.PhoneNumber,
		Title: u.Title, FirstName: u.FirstName, LastName: u.LastName,
		Department: u.Department, BirthDate: u.BirthDate,
		CreatedAt: babelTime(u.CreatedAt), UpdatedAt: babelTime(u.UpdatedAt),
		LastDismissMessages: babelTime(u.LastDismissMessages), LastLogIn: babelTime(u.LastLogIn),
		Rank: u.Rank, Image: u.Image, Address: u.Address, PostalCode: u.PostalCode,
		Region: u.Region, City: u.City, Country: u.Country, CountryCode: u.CountryCode,
		Mobile: u.Mobile, Notes: u.Notes, CustomerID: u.CustomerID,
		Roles:    append([]string{}, u.Roles...),
		APIKeys:  make([]babelKey, 0, len(keys)),
		Settings: make([]babelSetting, 0, len(u.Settings)),
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
		b.Settings = append(b.Settings, babelSettingOf(s, u.ID))
	}
	return b
}

// babelSettingOf shows a setting; one stored without an owner shows the
// user it belongs to.
func babelSettingOf(s store.Setting, userID string) babelSetting {
	if s.UserID == "" {
		s.UserID = userID
	}
	return babelSetting(viewSetting(s))
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
