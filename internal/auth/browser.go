package auth

import (
	"context"
	"time"

	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// Browser sessions (API.md section 9): a password login that opens a
// server-side session carried by an opaque cookie instead of tokens. The
// session is an ordinary one (the login budget of the session limit, the
// lockout, revocation, `session list`); the cookie's digest takes the
// place of the first refresh token, and is never rotated. It ends at its
// absolute lifetime, or after going unused for the idle timeout: uses are
// kept in memory and written in batches (TouchSessions), to the minute.

// MaxSessionCookie bounds a cookie worth hashing: ours are 53 bytes.
const MaxSessionCookie = 128

// EnableBrowserSessions makes the decision cache of browser sessions; a
// config with a browser login calls it when it loads, before any request.
func (s *Service) EnableBrowserSessions() error {
	s.sessionsOnce.Do(func() {
		s.sessions, s.sessionsErr = newPrincipalCache(s.cfg.CacheEntries)
	})
	return s.sessionsErr
}

// BrowserLogin checks login and password as Login does (the same lockout,
// the same events) and opens a browser session that lives at most
// lifetime. It returns the session's cookie value: give it to the browser
// and forget it.
func (s *Service) BrowserLogin(ctx context.Context, login, password string, lifetime time.Duration) (string, error) {
	u, err := s.checkPassword(ctx, login, password)
	if err != nil {
		return "", err
	}
	cookie, err := secret.NewSecret(secret.SessionPrefix)
	if err != nil {
		return "", unavailable(err)
	}
	now := s.now().UTC()
	sess := &store.Session{UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(lifetime), Browser: true, LastSeen: now}
	ended, err := s.storeSession(u, sess, store.DigestOf(cookie), now)
	if err != nil {
		return "", err
	}
	s.sessionOpened(ctx, u, sess, ended)
	return cookie, nil
}

// AuthenticateSession resolves a browser session's cookie: the session
// must be a browser session, not revoked, within its lifetime, and used
// within idle; its user must exist and be enabled. A cached decision
// costs what a cached API key does.
func (s *Service) AuthenticateSession(cookie string, idle time.Duration) (Principal, error) {
	if len(cookie) > MaxSessionCookie {
		return Principal{}, ErrInvalidToken
	}
	if err := s.EnableBrowserSessions(); err != nil {
		return Principal{}, unavailable(err)
	}
	now := s.now()
	d := store.DigestOf(cookie)
	if p, ok := s.sessions.Get(d.Slot()); ok && p.of(&d) && !p.lapsed(now) && !p.idle(now, idle) && s.unchanged(&p) {
		s.cacheHits.Add(1)
		if s.noteSessionUse(&p, now) {
			s.sessions.Set(d.Slot(), p, 1)
		}
		return p, nil
	}
	s.cacheMisses.Add(1)
	gen := s.st.Generation()
	if _, err := secret.ParseSecret(secret.SessionPrefix, cookie); err != nil {
		return Principal{}, ErrInvalidToken // garbage: no store read
	}
	sess, err := s.st.SessionBySecret(d)
	if err != nil {
		return Principal{}, refusedOr(err, ErrInvalidToken)
	}
	if !sess.Browser || !sess.Alive() || !now.Before(sess.ExpiresAt) {
		return Principal{}, ErrInvalidToken
	}
	seen := s.lastSeen(sess)
	if now.Sub(seen) >= idle {
		return Principal{}, ErrInvalidToken
	}
	u, err := s.st.UserByID(sess.UserID)
	if err != nil {
		return Principal{}, refusedOr(err, ErrInvalidToken)
	}
	if u.Disabled {
		return Principal{}, ErrInvalidToken
	}
	p := sessionPrincipal(&d, u, sess, seen)
	p.built = gen
	s.noteSessionUse(&p, now)
	if ttl := sess.ExpiresAt.Sub(now); ttl > 0 {
		s.sessions.SetWithTTL(d.Slot(), p, 1, ttl)
	}
	return p, nil
}

// lastSeen is when sess was last used: the latest of its creation, its
// stored LastSeen, and a use this instance has not written yet.
func (s *Service) lastSeen(sess *store.Session) time.Time {
	seen := sess.CreatedAt
	if sess.LastSeen.After(seen) {
		seen = sess.LastSeen
	}
	s.usage.mu.Lock()
	pending := s.usage.sessions[sess.ID]
	s.usage.mu.Unlock()
	if pending.After(seen) {
		seen = pending
	}
	return seen
}

// noteSessionUse records that p's browser session was used at now (see
// noteUse).
func (s *Service) noteSessionUse(p *Principal, now time.Time) bool {
	return s.noteUse(p, &s.usage.sessions, p.SessionID(), now)
}
