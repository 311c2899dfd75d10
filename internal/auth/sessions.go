package auth

import (
	"context"
	"errors"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/tokens"
)

// Sessions: a login opens one, a refresh rotates its refresh token, a
// logout ends it. Both dialects share these; they only translate requests
// and answers.

// TokenPair is what a login or a refresh hands out.
type TokenPair struct {
	Access    string
	ExpiresIn int64 // seconds
	Refresh   string
}

// openSession starts a session for u and issues its first token pair.
// perms and keyID limit a session opened with an API key's client secret.
func (s *Service) openSession(ctx context.Context, u *store.User, perms store.Permission, keyID string) (TokenPair, error) {
	now := s.now().UTC()
	refresh, err := secret.NewSecret(secret.RefreshPrefix)
	if err != nil {
		return TokenPair{}, unavailable(err)
	}
	sess := &store.Session{
		UserID:      u.ID,
		CreatedAt:   now,
		ExpiresAt:   now.Add(s.cfg.RefreshTTL),
		Permissions: perms,
		KeyID:       keyID,
	}
	ended, err := s.storeSession(u, sess, store.DigestOf(refresh), now)
	if err != nil {
		return TokenPair{}, err
	}
	pair, err := s.issuePair(u, sess, refresh, now)
	if err != nil {
		return pair, err
	}
	s.sessionOpened(ctx, u, sess, ended)
	return pair, nil
}

// storeSession stores a new session of u, whose first secret (refresh
// token or browser cookie) has digest d, under u's session limit, and
// records the login. It returns how many older sessions the limit ended.
func (s *Service) storeSession(u *store.User, sess *store.Session, d store.Digest, now time.Time) (int, error) {
	ended, err := s.st.CreateSession(sess, d, s.sessionLimit(u))
	if err != nil {
		return 0, unavailable(err)
	}
	if _, err := s.st.UpdateUser(u.ID, func(u *store.User) error {
		u.LastLogIn = now
		return nil
	}); err != nil {
		return 0, unavailable(err)
	}
	return ended, nil
}

// sessionOpened reports a login, and the sessions its limit ended.
func (s *Service) sessionOpened(ctx context.Context, u *store.User, sess *store.Session, ended int) {
	check := "password"
	if sess.KeyID != "" {
		check = "client_secret"
	}
	ev := Event{Kind: EventLogin, Check: check, UserID: u.ID, Username: u.Username, SessionID: sess.ID, KeyID: sess.KeyID}
	s.observer.Event(ctx, ev)
	if ended > 0 {
		ev.Kind, ev.Check, ev.Count = EventSessionsEnded, "", ended
		s.observer.Event(ctx, ev)
	}
}

// sessionLimit is how many live sessions of one budget u may have.
func (s *Service) sessionLimit(u *store.User) int {
	if u.SessionLimit > 0 {
		return u.SessionLimit
	}
	return s.cfg.SessionLimit
}

// SessionLimits reports the session limit of the user behind a Bearer
// principal and their live sessions in the budget of the principal's own
// session (logins share one; each key's quick_login sessions have theirs).
func (s *Service) SessionLimits(p *Principal) (limit, live int, err error) {
	if p.SessionID() == "" {
		return 0, 0, ErrNeedsBearer
	}
	u, err := s.st.UserByID(p.UserID())
	if err != nil {
		return 0, 0, refusedOr(err, ErrInvalidToken)
	}
	live, err = s.st.LiveSessionsLike(u.ID, p.KeyID(), s.now().UTC())
	if err != nil {
		return 0, 0, refusedOr(err, ErrInvalidToken)
	}
	return s.sessionLimit(u), live, nil
}

// Refresh spends a refresh token and issues the next pair. A spent token
// presented again revokes its whole session (RFC 9700 §4.14.2).
func (s *Service) Refresh(ctx context.Context, refresh string) (TokenPair, error) {
	old, err := secret.ParseSecret(secret.RefreshPrefix, refresh)
	if err != nil {
		return TokenPair{}, ErrBadGrant
	}
	next, err := secret.NewSecret(secret.RefreshPrefix)
	if err != nil {
		return TokenPair{}, unavailable(err)
	}
	now := s.now().UTC()
	sess, err := s.st.RotateRefresh(old, store.DigestOf(next), now, now.Add(s.cfg.RefreshTTL))
	switch {
	case errors.Is(err, store.ErrRefreshReused):
		ev := Event{Kind: EventRefreshReused}
		if sess != nil {
			ev.UserID, ev.SessionID, ev.KeyID = sess.UserID, sess.ID, sess.KeyID
			if u, err := s.st.UserByID(sess.UserID); err == nil {
				ev.Username = u.Username
			}
		}
		s.observer.Event(ctx, ev)
		return TokenPair{}, ErrBadGrant
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrSessionRevoked):
		return TokenPair{}, ErrBadGrant
	case err != nil:
		return TokenPair{}, unavailable(err)
	}
	u, err := s.st.UserByID(sess.UserID)
	if err != nil {
		return TokenPair{}, refusedOr(err, ErrBadGrant)
	}
	if u.Disabled || sess.Browser {
		// A browser session's secret is a cookie (another prefix, so it
		// never gets this far); were one to, it must not mint tokens.
		return TokenPair{}, ErrBadGrant
	}
	if sess.KeyID != "" { // a quick_login session ends with its key
		k, err := s.st.APIKeyByID(sess.KeyID)
		if err != nil {
			return TokenPair{}, refusedOr(err, ErrBadGrant)
		}
		if k.OwnerID != u.ID || !k.Usable(now) {
			return TokenPair{}, ErrBadGrant
		}
	}
	return s.issuePair(u, sess, next, now)
}

func (s *Service) issuePair(u *store.User, sess *store.Session, refresh string, now time.Time) (TokenPair, error) {
	access, exp, err := s.issuer.Load().Issue(tokens.Claims{
		UserID:      u.ID,
		Username:    u.Username,
		Roles:       u.Roles,
		SessionID:   sess.ID,
		Epoch:       u.TokenEpoch,
		Permissions: sess.Permissions,
	}, now)
	if err != nil {
		return TokenPair{}, unavailable(err)
	}
	// exp is whole seconds (as in the token); count from now's whole second
	// so a 24h lifetime reads 86400, not 86399.
	return TokenPair{Access: access, ExpiresIn: exp.Unix() - now.Unix(), Refresh: refresh}, nil
}

// Logout revokes the session of a Bearer principal: its access and refresh
// tokens stop working on the very next request. An API key is
// ErrKeyLogout: keys are revoked by administration.
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	if p.SessionID() == "" {
		return ErrKeyLogout
	}
	err := s.st.RevokeSession(p.SessionID(), "logout", s.now().UTC())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return unavailable(err)
	}
	s.observer.Event(ctx, Event{Kind: EventLogout, UserID: p.UserID(), Username: p.Username(), SessionID: p.SessionID(), KeyID: p.KeyID()})
	return nil
}

// User returns the current record of a principal's user.
func (s *Service) User(p *Principal) (*store.User, error) {
	u, err := s.st.UserByID(p.UserID())
	if err != nil {
		return nil, refusedOr(err, ErrInvalidToken)
	}
	return u, nil
}
