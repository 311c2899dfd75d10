package store

import "time"

// Snapshot is everything a store holds but the lockout's counters, as of
// one moment: what moves a store from one backend to another.
type Snapshot struct {
	Users       []*User        `json:"users"`
	APIKeys     []*APIKey      `json:"apiKeys"`
	Sessions    []*Session     `json:"sessions"`
	Refresh     []RefreshToken `json:"refresh"`
	SigningKeys []SigningKey   `json:"signingKeys"`
	LegacyKeys  bool           `json:"legacyKeys,omitempty"`
}

// RefreshToken is one refresh token of a session, by its digest: the live
// one, and the spent ones kept to detect reuse.
type RefreshToken struct {
	Digest    Digest    `json:"digest"`
	SessionID string    `json:"sessionId"`
	Spent     bool      `json:"spent,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
}
