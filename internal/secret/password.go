package secret

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/store"
)

// Passwords and PINs are stored as PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>   (base64 without padding)
//
// with OWASP's argon2id parameters. bcrypt hashes ($2a$, $2b$, $2y$) from an
// import verify too and ask for a rehash. Errors never contain the secret.

// argonParams are the cost parameters of one argon2id hash.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}

// defaultArgon is OWASP's recommendation (m=19 MiB, t=2, p=1).
var defaultArgon = argonParams{memory: 19456, time: 2, threads: 1}

const (
	saltLen = 16
	hashLen = 32

	// Upper bounds for hashes read from the store: a planted hash with
	// m=4000000 must not make one login allocate gigabytes.
	maxArgonMemory  = 256 * 1024 // KiB
	maxArgonTime    = 16
	maxArgonThreads = 16
	maxBcryptCost   = 15 // ~2-3 s per check; above it a check is a DoS
)

var errHash = fmt.Errorf("password hash: %w", store.ErrMalformed)

// hashSlots bounds concurrent argon2id/bcrypt work. Each argon2id check takes
// its m KiB of memory for its duration; without a bound a login flood takes
// memory until the process dies. Callers past the bound wait their turn.
var hashSlots atomic.Pointer[chan struct{}]

func init() { SetHashConcurrency(runtime.GOMAXPROCS(0) * 2) }

// SetHashConcurrency sets how many password hashes may be computed at once
// (default 2×GOMAXPROCS). n < 1 means 1. Checks already running finish
// under the old bound.
func SetHashConcurrency(n int) {
	if n < 1 {
		n = 1
	}
	ch := make(chan struct{}, n)
	hashSlots.Store(&ch)
}

// hashesDone counts hashes computed (argon2id and bcrypt, verified or
// made); hashWaiting counts callers waiting for a slot now. They show the
// hashing work that login flows do: that an unknown user costs one hash
// like a known one (the tests prove it with them), and how long the queue
// behind the bound is.
var (
	hashesDone  atomic.Uint64
	hashWaiting atomic.Int64
)

// HashStats reports how many password hashes were computed since the
// process started, and how many callers are waiting for a hash slot now.
func HashStats() (computed uint64, waiting int64) {
	return hashesDone.Load(), hashWaiting.Load()
}

// acquireHashSlot blocks for a slot and returns the function that frees it
// and counts the hash done.
func acquireHashSlot() (release func()) {
	ch := *hashSlots.Load()
	hashWaiting.Add(1)
	ch <- struct{}{}
	hashWaiting.Add(-1)
	return func() {
		hashesDone.Add(1)
		<-ch
	}
}

// HashSecret returns the argon2id PHC string of secret (a password or PIN)
// with a fresh random salt.
func HashSecret(secret string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password hash: reading random salt: %w", err)
	}
	return formatArgon(defaultArgon, salt, argonKey(defaultArgon, salt, secret, hashLen)), nil
}

// VerifySecret checks secret against a stored PHC string. ok is false for a
// wrong secret (err nil); err is for a hash that is malformed, unsupported
// or too costly to check. needsRehash asks the caller to store a fresh
// HashSecret after a successful check (bcrypt, or older argon2 parameters).
func VerifySecret(phc, secret string) (ok, needsRehash bool, err error) {
	switch {
	case strings.HasPrefix(phc, "$argon2id$"):
		return verifyArgon(phc, secret)
	case strings.HasPrefix(phc, "$2a$"), strings.HasPrefix(phc, "$2b$"), strings.HasPrefix(phc, "$2y$"):
		return verifyBcrypt(phc, secret)
	case phc == "":
		return false, false, fmt.Errorf("password hash: %w: empty", store.ErrMalformed)
	}
	return false, false, fmt.Errorf("password hash: %w: unsupported scheme", store.ErrMalformed)
}

// dummyHash is a well-formed argon2id hash, with the default parameters, of
// a random string nobody kept.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$brsgdqTpnPpO8ls4GIUFWA$gdjLjX6352Bx1vNI/BoSb9rcmidv7toH5c49hXBt46o"

// VerifyDummy costs what checking one password costs, and always fails. Call
// it when the user is unknown so response time does not tell which
// usernames exist.
func VerifyDummy(secret string) {
	_, _, _ = verifyArgon(dummyHash, secret)
}

func verifyArgon(phc, secret string) (ok, needsRehash bool, err error) {
	p, salt, want, err := parseArgon(phc)
	if err != nil {
		return false, false, err
	}
	got := argonKey(p, salt, secret, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	rehash := p != defaultArgon || len(salt) != saltLen || len(want) != hashLen
	return true, rehash, nil
}

// argonKey computes an argon2id key inside a hash slot.
func argonKey(p argonParams, salt []byte, secret string, keyLen uint32) []byte {
	release := acquireHashSlot()
	defer release()
	return argon2.IDKey([]byte(secret), salt, p.time, p.memory, p.threads, keyLen)
}

// parseArgon reads "$argon2id$v=19$m=M,t=T,p=P$salt$hash", refusing
// parameters above the bounds before any work is done.
func parseArgon(phc string) (p argonParams, salt, hash []byte, err error) {
	parts := strings.Split(phc, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errHash
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, fmt.Errorf("%w: unsupported argon2 version", errHash)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, errHash
	}
	m, err1 := parseParam(params[0], "m=", maxArgonMemory)
	t, err2 := parseParam(params[1], "t=", maxArgonTime)
	threads, err3 := parseParam(params[2], "p=", maxArgonThreads)
	if err := errors.Join(err1, err2, err3); err != nil {
		return p, nil, nil, err
	}
	p = argonParams{memory: m, time: t, threads: uint8(threads)}
	if p.memory < 8*uint32(p.threads) { // argon2's own minimum
		return p, nil, nil, fmt.Errorf("%w: m below 8*p", errHash)
	}
	salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, fmt.Errorf("%w: salt", errHash)
	}
	hash, err = base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(hash) < 16 || len(hash) > 64 {
		return p, nil, nil, fmt.Errorf("%w: hash", errHash)
	}
	return p, salt, hash, nil
}

// parseParam reads "name=N" with 1 <= N <= max.
func parseParam(s, name string, max uint32) (uint32, error) {
	v, found := strings.CutPrefix(s, name)
	if !found {
		return 0, fmt.Errorf("%w: want %s", errHash, name)
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n < 1 || n > uint64(max) {
		return 0, fmt.Errorf("%w: %s must be 1 to %d", errHash, name, max)
	}
	return uint32(n), nil
}

func formatArgon(p argonParams, salt, hash []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(hash))
}

// verifyBcrypt checks an imported bcrypt hash; success always asks for a
// rehash to argon2id.
func verifyBcrypt(phc, secret string) (ok, needsRehash bool, err error) {
	cost, err := bcrypt.Cost([]byte(phc))
	if err != nil {
		return false, false, fmt.Errorf("%w: bcrypt", errHash)
	}
	if cost > maxBcryptCost {
		return false, false, fmt.Errorf("%w: bcrypt cost %d above %d", errHash, cost, maxBcryptCost)
	}
	release := acquireHashSlot()
	err = bcrypt.CompareHashAndPassword([]byte(phc), []byte(secret))
	release()
	switch {
	case err == nil:
		return true, true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	}
	return false, false, fmt.Errorf("%w: bcrypt", errHash)
}
