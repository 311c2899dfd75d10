package secret

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Each argon2id check costs ~19 MiB and tens of milliseconds (more under
// -race): these tests keep the number of hashes small.

func TestHashVerifyRoundTrip(t *testing.T) {
	const secret = "correct horse battery staple"
	phc, err := HashSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(phc, secret) {
		t.Fatalf("PHC string %q", phc)
	}
	ok, rehash, err := VerifySecret(phc, secret)
	if !ok || rehash || err != nil {
		t.Fatalf("right secret: ok=%v rehash=%v err=%v", ok, rehash, err)
	}
	ok, _, err = VerifySecret(phc, secret+"!")
	if ok || err != nil {
		t.Fatalf("wrong secret: ok=%v err=%v", ok, err)
	}
}

func TestVerifyBcryptAsksForRehash(t *testing.T) {
	h, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, variant := range []string{"$2a$", "$2b$", "$2y$"} {
		phc := variant + string(h[4:])
		ok, rehash, err := VerifySecret(phc, "hunter2")
		if !ok || !rehash || err != nil {
			t.Errorf("%s: ok=%v rehash=%v err=%v", variant, ok, rehash, err)
		}
		ok, rehash, err = VerifySecret(phc, "hunter3")
		if ok || rehash || err != nil {
			t.Errorf("%s wrong: ok=%v rehash=%v err=%v", variant, ok, rehash, err)
		}
	}
	// A planted bcrypt hash with cost 31 would take days: refused unread.
	hostile := "$2a$31$" + string(h[7:])
	if ok, _, err := VerifySecret(hostile, "hunter2"); ok || err == nil {
		t.Errorf("bcrypt cost 31: ok=%v err=%v", ok, err)
	}
}

func TestVerifyRefusesBadHashes(t *testing.T) {
	const salt, hash = "c2FsdHNhbHRzYWx0c2FsdA", "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
	for _, phc := range []string{
		"",
		"plaintext",
		"$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + hash,
		"$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=4000000,t=2,p=1$" + salt + "$" + hash, // ~4 GiB
		"$argon2id$v=19$m=19456,t=1000000,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=2,p=255$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=-1,t=2,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=2$" + salt + "$" + hash,
		"$argon2id$v=19$m=19456,t=2,p=1$!!!$" + hash,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$",
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt,
		"$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + hash + "$extra",
		"$2a$10$short",
	} {
		ok, _, err := VerifySecret(phc, "pw-secret")
		if ok || err == nil {
			t.Errorf("%q: ok=%v err=%v, want an error", phc, ok, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw-secret") {
			t.Errorf("error contains the secret: %v", err)
		}
	}
}

// VerifyDummy must cost what one real check costs, or response time would
// tell unknown users apart: one argon2id hash with the default parameters,
// counted like a real VerifySecret's.
func TestDummyHashIsRealWork(t *testing.T) {
	p, _, _, err := parseArgon(dummyHash)
	if err != nil || p != defaultArgon {
		t.Fatalf("dummy hash: %+v, %v", p, err)
	}
	real, err := HashSecret("a real password")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := HashStats()
	if ok, _, err := VerifySecret(real, "a wrong password"); ok || err != nil {
		t.Fatalf("VerifySecret of a wrong password: %v %v", ok, err)
	}
	afterReal, _ := HashStats()
	VerifyDummy("a wrong password")
	afterDummy, _ := HashStats()
	if afterReal-before != 1 || afterDummy-afterReal != 1 {
		t.Fatalf("hashes computed: %d by a real check, %d by VerifyDummy; want 1 each", afterReal-before, afterDummy-afterReal)
	}
}

func TestHashConcurrencyIsBounded(t *testing.T) {
	defer SetHashConcurrency(2)
	SetHashConcurrency(1)
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			release := acquireHashSlot()
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			release()
		})
	}
	wg.Wait()
	if peak.Load() != 1 {
		t.Fatalf("%d hashes ran at once with a bound of 1", peak.Load())
	}
	if _, _, err := VerifySecret(dummyHash, "x"); err != nil {
		t.Fatal(err)
	}
	if ok, rehash, err := VerifySecret(mustHashWithParams(t), "x"); !ok || !rehash || err != nil {
		t.Fatalf("weaker argon2 params: ok=%v rehash=%v err=%v", ok, rehash, err)
	}
}

// mustHashWithParams hashes "x" with cheaper parameters than the default,
// as an older release might have.
func mustHashWithParams(t *testing.T) string {
	t.Helper()
	salt := []byte("0123456789abcdef")
	p := argonParams{memory: 64, time: 1, threads: 1}
	return formatArgon(p, salt, argonKey(p, salt, "x", hashLen))
}
