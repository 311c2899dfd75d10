package admin

import (
	"strings"
	"time"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/store"
)

// The lockout as an operator sees it (API.md sections 6 and 7): which
// accounts have failures or a lock now, and the unlock. The counters live
// in the store; internal/auth names the accounts (auth.UserAccount).

// LockView is an account's lock state: its recent failures (a lock starts
// the count afresh) and, while it is locked, until when. A UserView holds
// one only when the account has failures or a lock.
type LockView struct {
	Failures    int       `json:"failures"`
	LastFailure time.Time `json:"lastFailure,omitzero"`
	LockedUntil time.Time `json:"lockedUntil,omitzero"` // set only while locked
}

// LockoutView is one account of `lockout list`. Label is the lockout's
// ("user:<id>", "unknown login", "client id"): it never holds what a
// client typed. A user's account also names the user.
type LockoutView struct {
	Label    string `json:"label"`
	UserID   string `json:"userId,omitempty"`
	Username string `json:"username,omitempty"`
	LockView
}

func viewLock(s store.AttemptState, now time.Time) LockView {
	v := LockView{Failures: s.Failures, LastFailure: s.LastFailure}
	if s.Locked(now) {
		v.LockedUntil = s.LockedUntil
	}
	return v
}

// locks returns the lock states at now by account.
func (o Ops) locks(now time.Time) (map[store.AccountKey]store.AttemptState, error) {
	states, err := o.Store.ListAttempts(now)
	if err != nil {
		return nil, err
	}
	m := make(map[store.AccountKey]store.AttemptState, len(states))
	for _, s := range states {
		if s.Kind == store.KindLogin {
			m[s.Account] = s
		}
	}
	return m, nil
}

// withLock adds the user's lock state, if any, from locks to v.
func withLock(v UserView, locks map[store.AccountKey]store.AttemptState, now time.Time) UserView {
	if s, ok := locks[auth.UserAccount(v.ID)]; ok {
		l := viewLock(s, now)
		v.Lock = &l
	}
	return v
}

// viewUserNow is the view of u with its lock state now.
func (o Ops) viewUserNow(u *store.User) (UserView, error) {
	now := o.now()
	locks, err := o.locks(now)
	if err != nil {
		return UserView{}, err
	}
	return withLock(viewUser(u), locks, now), nil
}

// UnlockUser clears the user's failures and lock: their next login is
// checked again. It is the only operation that does (a password change
// or enable does not), and it does nothing to a user who is not locked.
func (o Ops) UnlockUser(name string) (UserView, error) {
	u, err := o.findUser(name)
	if err != nil {
		return UserView{}, err
	}
	if err := o.Store.ClearAttempts(auth.UserAccount(u.ID)); err != nil {
		return UserView{}, err
	}
	return o.viewUserNow(u)
}

// ListLockouts shows the accounts with failures or a lock now, locked
// first, then by most recent failure (the store's order).
func (o Ops) ListLockouts() ([]LockoutView, error) {
	now := o.now()
	states, err := o.Store.ListAttempts(now)
	if err != nil {
		return nil, err
	}
	out := make([]LockoutView, 0, len(states))
	for _, s := range states {
		v := LockoutView{Label: s.Label, LockView: viewLock(s, now)}
		if id, ok := strings.CutPrefix(s.Label, "user:"); ok && s.Account == auth.UserAccount(id) {
			v.UserID = id
			if u, err := o.Store.UserByID(id); err == nil {
				v.Username = u.Username
			}
		}
		out = append(out, v)
	}
	return out, nil
}
