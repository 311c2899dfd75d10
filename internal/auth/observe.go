package auth

import (
	"context"
	"time"
)

// What the service reports about itself, for metrics and the audit trail
// (API.md section 10). The service only says what happened; the plugin
// turns it into Prometheus series and log entries, and reads from the
// request's context who asked (client IP, request id). Nothing here holds
// a secret: no password, PIN, token, key or client secret ever enters an
// Event.

// Observer hears the service's events, synchronously. (The request path
// reports nothing through it: the decision cache counts its hits itself,
// see Service.CacheStats.)
type Observer interface {
	// Event reports one security-relevant event. ctx is the request's
	// (or context.Background() for the upkeep).
	Event(ctx context.Context, e Event)
}

// EventKind names an event; the strings are the audit log's "event".
type EventKind string

const (
	EventLogin         EventKind = "login"          // a password login or quick_login opened a session
	EventLoginFailed   EventKind = "login_failed"   // a login, quick_login or secret check was refused
	EventLocked        EventKind = "locked"         // a failure locked the account
	EventRefreshReused EventKind = "refresh_reused" // a spent refresh token came back: its session was revoked
	EventLogout        EventKind = "logout"         // a session ended itself
	EventSessionsEnded EventKind = "sessions_ended" // a login past the session limit ended the oldest
	EventKeyRotated    EventKind = "signing_key_rotated"
)

// Reasons of EventLoginFailed. An unknown user and a wrong password are
// told apart here, for the operator; a client never sees the difference.
const (
	ReasonUnknownUser   = "unknown_user"
	ReasonWrongPassword = "wrong_password"
	ReasonWrongPIN      = "wrong_pin"
	ReasonDisabled      = "disabled"
	ReasonBadClient     = "bad_client" // quick_login: unknown id, wrong secret, unusable key
	ReasonLocked        = "locked"
	ReasonInvalid       = "invalid_request"
	ReasonUnavailable   = "store_unavailable"
)

// Event is one audit event. Empty fields are unknown or do not apply.
type Event struct {
	Kind   EventKind
	Reason string // why a login failed (Reason* constants)
	// Check is what was checked: "password", "pin", "client_secret".
	Check     string
	UserID    string
	Username  string
	SessionID string
	KeyID     string
	// SigningKID is a signing key's kid (signing_key_rotated).
	SigningKID string
	Until      time.Time // when a lock ends
	Count      int       // sessions_ended: how many
}

// nopObserver observes nothing: a service built without an Observer.
type nopObserver struct{}

func (nopObserver) Event(context.Context, Event) {}

// dialectKey carries the API a request came through.
type dialectKey struct{}

// WithDialect names the API ("plentymarkets", "babel", "browser") a login
// came through, for the logins metric and the audit trail.
func WithDialect(ctx context.Context, dialect string) context.Context {
	return context.WithValue(ctx, dialectKey{}, dialect)
}

// DialectOf is the API WithDialect named, or "".
func DialectOf(ctx context.Context) string {
	d, _ := ctx.Value(dialectKey{}).(string)
	return d
}
