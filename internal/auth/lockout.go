package auth

import (
	"context"
	"crypto/sha256"

	"github.com/authgate/authgate/store"
)

// Login protection (API.md section 6): after `lockout` failures against one
// account, the account is locked for the lockout duration, and every
// attempt while it is locked is refused (LockedError), even with the right
// password.
//
// The check is atomic: an attempt is reserved in the store before its hash
// runs, and a reservation counts like a failure until it is settled. So
// however many guesses arrive at once, on however many instances, at most
// `lockout` of them are ever checked per window; the others are refused as
// if the account were locked, without a hash (caddy-security CVE-2024-21500
// class). The counters live in the store, shared by every instance on it.
//
// An account is counted by what it is, not by how it was named: a known
// user by their ID (so the username, the email and a password or PIN check
// on a live session all share one counter), an unknown login by its
// normalised text (so unknown names lock exactly as known ones do and a
// refusal tells nothing about whether a user exists), an API key's client
// secret by the key's ID, known or not. Accounts are named to the store by
// a fixed-size digest, never by what the client sent.

// accountOf digests an account's kind and identifier.
func accountOf(kind, id string) store.AccountKey {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(id))
	var k store.AccountKey
	copy(k[:], h.Sum(nil))
	return k
}

// UserAccount is the lockout account of a user's passwords and PINs.
func UserAccount(userID string) store.AccountKey { return accountOf("user", userID) }

// userAttempt, loginAttempt and clientAttempt name the checks of a known
// user, an unknown (normalised) login and a client id. Labels are for an
// operator: an unknown login's label does not repeat what was typed (it
// may be a password typed into the wrong field).
func userAttempt(userID string) store.Attempt {
	return store.Attempt{Account: UserAccount(userID), Kind: store.KindLogin, Label: "user:" + userID}
}

func loginAttempt(login string) store.Attempt {
	return store.Attempt{Account: accountOf("login", login), Kind: store.KindLogin, Label: "unknown login"}
}

func clientAttempt(keyID string) store.Attempt {
	return store.Attempt{Account: accountOf("key", keyID), Kind: store.KindClient, Label: "client id"}
}

// guard runs check for the account under the lockout: it reserves the
// attempt first (refusing a locked or busy account without running
// check), then counts the outcome: a wrong secret (isFailedCheck) is a
// failure, success clears the account's failures, anything else counts for
// nothing. Every credential check of a login goes through it. A store that
// cannot count fails the attempt closed.
//
// ev describes the check for the audit trail (who, which secret); check
// sets ev.Reason when it fails. Every refusal is reported as
// login_failed, and the failure that locks the account as locked too.
func (s *Service) guard(ctx context.Context, a store.Attempt, ev *Event, check func() error) (err error) {
	p := s.lockPolicy()
	r, wait, err := s.st.ReserveAttempt(a, s.now(), p)
	if err != nil {
		s.loginFailed(ctx, ev, ReasonUnavailable)
		return unavailable(err)
	}
	if wait > 0 {
		s.loginFailed(ctx, ev, ReasonLocked)
		return &LockedError{RetryAfter: wait}
	}
	outcome := store.Abandoned
	defer func() {
		// Settled even when check panicked. A failure to record it is
		// logged: the reservation lapses on its own.
		lockedUntil, serr := s.st.SettleAttempt(r, outcome, s.now(), p)
		if serr != nil {
			s.logger.Warnw("recording a login attempt", "error", serr)
		}
		if !lockedUntil.IsZero() {
			locked := *ev
			locked.Kind, locked.Reason, locked.Until = EventLocked, "", lockedUntil
			s.observer.Event(ctx, locked)
		}
	}()
	err = check()
	switch {
	case err == nil:
		outcome = store.Succeeded
	case isFailedCheck(err):
		outcome = store.Failed
		s.loginFailed(ctx, ev, ev.Reason)
	default:
		s.loginFailed(ctx, ev, ReasonUnavailable)
	}
	return err
}

// loginFailed reports a refused check.
func (s *Service) loginFailed(ctx context.Context, ev *Event, reason string) {
	failed := *ev
	failed.Kind, failed.Reason = EventLoginFailed, reason
	s.observer.Event(ctx, failed)
}

func (s *Service) lockPolicy() store.LockPolicy {
	return store.LockPolicy{Attempts: s.cfg.LockoutAttempts, Window: s.cfg.LockoutDuration}
}

// Unlock clears a user's failures and lock: an operator's unlock.
func (s *Service) Unlock(userID string) error {
	if err := s.st.ClearAttempts(UserAccount(userID)); err != nil {
		return unavailable(err)
	}
	return nil
}
