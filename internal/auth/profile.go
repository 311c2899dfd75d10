package auth

import (
	"errors"

	"github.com/authgate/authgate/store"
)

// A signed-in user's own profile: what the Babel dialect's POST user
// changes. The dialect decides what its wire allows; the rules every
// self-service edit obeys are here.

// errNoChange aborts an update that would change nothing.
var errNoChange = errors.New("nothing to change")

// EditProfile applies edit to a fresh copy of the user in one store
// operation: all of it or, on any refusal, nothing. edit reports whether it
// changed anything; if not, nothing is written (updatedAt stays, so the
// same copy can be posted twice). edit's own errors are returned as they
// are.
//
// A user may respell their email (case, width) or remove it, but not move
// it to another address: an email is a login, so a move to one another
// account holds would have to be refused, and that refusal would tell a
// signed-in user which logins exist. Every such move is ErrEmailByAdmin,
// whether the address is free or not; an administrator makes it.
func (s *Service) EditProfile(userID string, edit func(u *store.User) (changed bool, err error)) (*store.User, error) {
	var current *store.User
	var refused error // edit's own refusal, returned as it is
	u, err := s.st.UpdateUser(userID, func(u *store.User) error {
		before := u.Email
		changed, err := edit(u)
		if err != nil {
			refused = err
			return err
		}
		if u.Email != before && !selfServiceEmail(before, u.Email) {
			return ErrEmailByAdmin
		}
		if !changed {
			current = u
			return errNoChange
		}
		return nil
	})
	switch {
	case err == nil:
		return u, nil
	case refused != nil && errors.Is(err, refused):
		return nil, refused
	case errors.Is(err, ErrEmailByAdmin):
		return nil, ErrEmailByAdmin
	case errors.Is(err, errNoChange):
		return current, nil
	case errors.Is(err, store.ErrExists):
		// Only a respelling reaches the store, and it cannot collide; were
		// it to, the answer must still be the uniform one.
		return nil, ErrEmailByAdmin
	case errors.Is(err, store.ErrInvalid):
		return nil, &InputError{Msg: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return nil, ErrInvalidToken
	}
	return nil, unavailable(err)
}

// selfServiceEmail reports whether a user may change their own email from
// old to new: only to no email, or to another spelling of the same login.
func selfServiceEmail(old, new string) bool {
	if new == "" || new == old {
		return true
	}
	a, errA := store.NormalizeLogin(old)
	b, errB := store.NormalizeLogin(new)
	return errA == nil && errB == nil && a == b
}

// OwnKeys lists the API keys of the principal's user.
func (s *Service) OwnKeys(p *Principal) ([]*store.APIKey, error) {
	keys, err := s.st.ListAPIKeys(p.UserID())
	if err != nil {
		return nil, unavailable(err)
	}
	return keys, nil
}
