package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/authgate/authgate/store"
)

// The refusals of the service. The HTTP layer maps each to its status and
// error code (internal/httpx, and each dialect to its own wire) with
// errors.Is and errors.As. None of them ever carries a credential.
var (
	// ErrInvalidToken refuses an access token: forged, expired, or its
	// session, user or key gone, disabled or revoked.
	ErrInvalidToken = errors.New("the access token is invalid, expired or revoked")
	// ErrInvalidKey refuses an API key, likewise.
	ErrInvalidKey = errors.New("the API key is invalid, expired or revoked")
	// ErrBadCredentials refuses a login, wrong password and unknown user
	// alike.
	ErrBadCredentials = errors.New("the username or password is wrong")
	// ErrWrongPassword and ErrWrongPIN refuse a secret check of a signed-in
	// user.
	ErrWrongPassword = errors.New("the password is wrong")
	ErrWrongPIN      = errors.New("the PIN is wrong or not set")
	// ErrBadGrant refuses a refresh token: unknown, spent, expired, or its
	// session revoked.
	ErrBadGrant = errors.New("the refresh token is invalid, expired or already used")
	// ErrBadClient is every refusal of a quick_login, so the answer never
	// tells an unknown id from a wrong secret, a revoked or expired key,
	// or a disabled owner.
	ErrBadClient = errors.New("the client id or client secret is wrong, or the key can no longer be used")
	// ErrNeedsBearer refuses an API key where only a session makes sense
	// (a secret check, session limits).
	ErrNeedsBearer = errors.New("this route needs a Bearer access token, not an API key")
	// ErrKeyLogout refuses a logout with an API key.
	ErrKeyLogout = errors.New("this route needs a Bearer access token; API keys are revoked with `caddy authgate key revoke`")
	// ErrForbidden refuses a method the credential's permissions do not
	// cover (Principal.Allows said no).
	ErrForbidden = errors.New("the credential does not permit this method")
	// ErrEmailByAdmin refuses a user's move of their own email: see
	// Service.EditProfile.
	ErrEmailByAdmin = errors.New("the email is a login: an administrator changes it")
)

// InputError refuses a value no account can have (an identifier longer
// than any login), before any lookup.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// LockedError refuses an attempt on a locked account, or one that could
// not be checked because the account's checks in flight reached the
// threshold; RetryAfter is how long the lock lasts.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string {
	return "too many failed attempts; the account is locked for now, try again later"
}

// UnavailableError is the store failing (never the client's fault): the
// request fails closed. Cause says why, for the log; it is never shown to
// clients.
type UnavailableError struct{ Cause error }

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("the credential store is unavailable: %v", e.Cause)
}

func (e *UnavailableError) Unwrap() error { return e.Cause }

// unavailable wraps a store failure.
func unavailable(err error) error { return &UnavailableError{Cause: err} }

// refusedOr maps a lookup's error: a missing record is refused, anything
// else is the store failing.
func refusedOr(err error, refused error) error {
	if errors.Is(err, store.ErrNotFound) {
		return refused
	}
	return unavailable(err)
}

// isFailedCheck reports whether err is a wrong secret: what a lockout
// counts.
func isFailedCheck(err error) bool {
	return errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrWrongPassword) ||
		errors.Is(err, ErrWrongPIN) || errors.Is(err, ErrBadClient)
}
