package store

import "errors"

// Sentinel errors. Callers test them with errors.Is; the returned errors
// wrap them with context (never a secret). Every backend returns these, so
// a caller never needs to know which one it talks to.
var (
	ErrNotFound       = errors.New("not found")
	ErrExists         = errors.New("already exists")
	ErrInvalid        = errors.New("invalid")
	ErrLocked         = errors.New("locked by another process")
	ErrSchemaTooNew   = errors.New("database schema is newer than this build understands")
	ErrRefreshReused  = errors.New("refresh token reused")
	ErrSessionRevoked = errors.New("session revoked or expired")
	ErrMalformed      = errors.New("malformed")
)
