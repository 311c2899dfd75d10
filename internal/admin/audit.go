package admin

import (
	"net/http"
	"strings"
)

// Every change made through the routes is an audit event (API.md section
// 10): the route, what its path named, the id of what changed, and the
// admin client's address. The event is made from the route's pattern, its
// path values and its answer, never from the request body: a body may
// hold a password, a PIN or a key.

// AdminEvent is one change made through the admin routes.
type AdminEvent struct {
	// Action is the route, e.g. "POST /authgate/users/{user}/unlock".
	Action string
	// Target is what the path named: a user (as given: username, email
	// or id), a key or session id, a setting's name. Empty for routes
	// without one.
	Target string
	// SubjectID is the id of what changed, from the answer (a user's,
	// key's or signing key's), and Username the user's name when the
	// answer is a user.
	SubjectID string
	Username  string
	// RemoteAddr is the admin client's address.
	RemoteAddr string
}

// audited reports whether a successful call of the route is an event:
// every write, and the backup (it carries every hash and signing key).
func audited(r *http.Request) bool {
	return r.Method != http.MethodGet || r.URL.Path == "/authgate/backup"
}

// adminEvent describes a successful call of the route pattern whose answer
// is v.
func adminEvent(pattern string, r *http.Request, v any) AdminEvent {
	e := AdminEvent{Action: pattern, RemoteAddr: r.RemoteAddr}
	var named []string
	for _, name := range []string{"user", "id", "name"} {
		if val := r.PathValue(name); val != "" {
			named = append(named, val)
		}
	}
	e.Target = strings.Join(named, " ")
	switch v := v.(type) {
	case UserView:
		e.SubjectID, e.Username = v.ID, v.Username
	case CreatedKey:
		e.SubjectID = v.ID
	case KeyView:
		e.SubjectID = v.ID
	case SigningKeyView:
		e.SubjectID = v.KID
	}
	return e
}
