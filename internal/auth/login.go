package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// Checking what a client claims to know: a password at login, a password
// or PIN of a signed-in user, an API key's client secret. Each runs under
// the account's lockout; unknown accounts cost the same hash and lock
// alike, and every failure of a kind is the same error, so neither answer
// nor timing tells accounts that exist from those that do not.

// MaxKeyIDBytes caps a client id before any lookup: our key ids are 24
// bytes, and an id that long is no key of ours or an import's.
const MaxKeyIDBytes = 64

var (
	errLoginTooLong    = &InputError{fmt.Sprintf("the username may have at most %d bytes, an email %d", store.MaxUsernameBytes, store.MaxEmailBytes)}
	errClientIDTooLong = &InputError{fmt.Sprintf("client_id may have at most %d bytes", MaxKeyIDBytes)}
)

// Login checks login (a username or an email) and password, and opens a
// session: its first token pair. ctx is the request's: the audit trail
// reads who asked from it.
func (s *Service) Login(ctx context.Context, login, password string) (TokenPair, error) {
	u, err := s.checkPassword(ctx, login, password)
	if err != nil {
		return TokenPair{}, err
	}
	return s.openSession(ctx, u, 0, "")
}

// checkPassword finds the account named by login and verifies password,
// under the account's lockout.
func (s *Service) checkPassword(ctx context.Context, login, password string) (*store.User, error) {
	ev := &Event{Check: "password"}
	if err := checkLoginSize(login); err != nil {
		s.loginFailed(ctx, ev, ReasonInvalid)
		return nil, err
	}
	u, err := s.st.UserByLogin(login)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.loginFailed(ctx, ev, ReasonUnavailable)
		return nil, unavailable(err)
	}
	// An unknown login is reported without what was typed: it may be a
	// password typed into the wrong field.
	attempt := unknownLoginAttempt(login)
	if u != nil {
		attempt = userAttempt(u.ID)
		ev.UserID, ev.Username = u.ID, u.Username
	}
	err = s.guard(ctx, attempt, ev, func() error {
		if u == nil {
			secret.VerifyDummy(password)
			ev.Reason = ReasonUnknownUser
			return ErrBadCredentials
		}
		ev.Reason = ReasonWrongPassword
		if u.PasswordHash == "" {
			secret.VerifyDummy(password)
			return ErrBadCredentials
		}
		ok, rehash, err := secret.VerifySecret(u.PasswordHash, password)
		if err != nil || !ok {
			return ErrBadCredentials
		}
		if u.Disabled {
			ev.Reason = ReasonDisabled
			return ErrBadCredentials
		}
		if rehash {
			s.upgradeHash(u.ID, password)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// checkLoginSize caps a login identifier: an email (it has an @) at
// store.MaxEmailBytes, a username at store.MaxUsernameBytes.
func checkLoginSize(login string) error {
	limit := store.MaxUsernameBytes
	if strings.Contains(login, "@") {
		limit = store.MaxEmailBytes
	}
	if len(login) > limit {
		return errLoginTooLong
	}
	return nil
}

// unknownLoginAttempt is the lockout account of a login that names no
// user: its normalised form, so every spelling of one name shares one
// counter, as the spellings of a real user's login do.
func unknownLoginAttempt(login string) store.Attempt {
	if norm, err := store.NormalizeLogin(login); err == nil {
		login = norm
	}
	return loginAttempt(login)
}

// upgradeHash replaces an imported (bcrypt) hash with argon2id after a
// successful login. A failure here does not fail the login.
func (s *Service) upgradeHash(userID, password string) {
	phc, err := secret.HashSecret(password)
	if err != nil {
		return
	}
	_, _ = s.st.UpdateUser(userID, func(u *store.User) error {
		u.PasswordHash = phc
		return nil
	})
}

// CheckSecret verifies the password (or, with pin, the PIN) of the user
// behind a Bearer principal, under the same lockout as their logins. An
// API key is ErrNeedsBearer: a secret check belongs to a session.
func (s *Service) CheckSecret(ctx context.Context, p *Principal, given string, pin bool) error {
	if p.SessionID() == "" {
		return ErrNeedsBearer
	}
	u, err := s.st.UserByID(p.UserID())
	if err != nil {
		return refusedOr(err, ErrInvalidToken)
	}
	ev := &Event{Check: "password", Reason: ReasonWrongPassword, UserID: u.ID, Username: u.Username, SessionID: p.SessionID()}
	if pin {
		ev.Check, ev.Reason = "pin", ReasonWrongPIN
	}
	return s.guard(ctx, userAttempt(u.ID), ev, func() error {
		phc, wrong := u.PasswordHash, ErrWrongPassword
		if pin {
			phc, wrong = u.PINHash, ErrWrongPIN
		}
		if phc == "" {
			secret.VerifyDummy(given)
			return wrong
		}
		if ok, _, err := secret.VerifySecret(phc, given); err != nil || !ok {
			return wrong
		}
		return nil
	})
}

// QuickLogin checks an API key's client secret (quick_login) and opens a
// session for the key's owner whose tokens may do only what the key may.
func (s *Service) QuickLogin(ctx context.Context, keyID, clientSecret string) (TokenPair, error) {
	k, u, err := s.checkClientSecret(ctx, keyID, clientSecret)
	if err != nil {
		return TokenPair{}, err
	}
	return s.openSession(ctx, u, k.Permissions, k.ID)
}

// checkClientSecret verifies the client secret of the key keyID, under the
// key's lockout, and returns the key and its owner. Every client id, known
// or not, is counted on its own account, so unknown ids lock exactly as
// known ones do.
func (s *Service) checkClientSecret(ctx context.Context, keyID, given string) (*store.APIKey, *store.User, error) {
	ev := &Event{Check: "client_secret", Reason: ReasonBadClient}
	if len(keyID) > MaxKeyIDBytes {
		s.loginFailed(ctx, ev, ReasonInvalid)
		return nil, nil, errClientIDTooLong
	}
	k, err := s.st.APIKeyByID(keyID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.loginFailed(ctx, ev, ReasonUnavailable)
		return nil, nil, unavailable(err)
	}
	if k != nil { // an unknown id is not reported: it is what a client typed
		ev.KeyID, ev.UserID = k.ID, k.OwnerID
	}
	var u *store.User
	err = s.guard(ctx, clientAttempt(keyID), ev, func() error {
		digest, perr := secret.ParseSecret(secret.ClientSecretPrefix, given)
		if k == nil || !k.HasClientSecret() || perr != nil {
			return ErrBadClient
		}
		if subtle.ConstantTimeCompare(digest[:], k.ClientSecretDigest[:]) != 1 {
			return ErrBadClient
		}
		// A key without permissions would open an unrestricted session:
		// zero means "the user's own" on a session.
		if !k.Usable(s.now()) || k.Permissions == 0 {
			return ErrBadClient
		}
		var err error
		if u, err = s.st.UserByID(k.OwnerID); err != nil {
			return refusedOr(err, ErrBadClient)
		}
		if u.Disabled {
			return ErrBadClient
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return k, u, nil
}
