package caddymodule

import (
	"crypto/subtle"
	"errors"
	"net/http"

	"github.com/authgate/authgate/store"
)

// quick_login (API.md section 4): an API key's id and client secret open a
// session for the key's owner, limited to the key's permissions.

// errBadClient is the one refusal of every failed client check, so the
// response never tells an unknown id from a wrong secret, a revoked or
// expired key, or a disabled owner.
var errBadClient = refusal(http.StatusUnauthorized, "invalid_client", "the client id or client secret is wrong, or the key can no longer be used")

// maxKeyIDBytes caps a client id before any lookup: our key ids are 24
// bytes, imported ones no longer than store's id limit allows here.
const maxKeyIDBytes = 64

var errClientIDTooLong = refusal(http.StatusBadRequest, "invalid_request", "client_id may have at most 64 bytes")

// checkClientSecret verifies the client secret of the key keyID, under the
// key's lockout, and returns the key and its owner. Every client id, known
// or not, is counted on its own account, so unknown ids lock exactly as
// known ones do.
func (a *App) checkClientSecret(keyID, secret string) (*store.APIKey, *store.User, *authError) {
	if len(keyID) > maxKeyIDBytes {
		return nil, nil, errClientIDTooLong
	}
	k, err := a.store.APIKeyByID(keyID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, errStore
	}
	var u *store.User
	aerr := a.guard(a.lockout.clients, clientAccount(keyID), func() *authError {
		digest, perr := store.ParseSecret(store.ClientSecretPrefix, secret)
		if k == nil || !k.HasClientSecret() || perr != nil {
			return errBadClient
		}
		if subtle.ConstantTimeCompare(digest[:], k.ClientSecretDigest[:]) != 1 {
			return errBadClient
		}
		// A key without permissions would open an unrestricted session:
		// zero means "the user's own" on a session.
		if !k.Usable(a.now()) || k.Permissions == 0 {
			return errBadClient
		}
		var err error
		if u, err = a.store.UserByID(k.OwnerID); err != nil {
			return storeFailure(err, errBadClient)
		}
		if u.Disabled {
			return errBadClient
		}
		return nil
	})
	if aerr != nil {
		return nil, nil, aerr
	}
	return k, u, nil
}
