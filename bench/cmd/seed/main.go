// Command seed fills an authgate store for the side-by-side benchmark
// (bench/run.sh) through the store's own API, and writes the credentials
// it created to files for wrk: one API key per line in keys.txt, one
// access token per line in tokens.txt.
//
//	go run ./bench/cmd/seed -db /tmp/x/f.db -out /tmp/x/f \
//	    -users 10000 -keys 100000 -sessions 100000
//
// Every user gets the same argon2id hash of -password, computed once
// (hashing 100,000 passwords would take an hour and measure nothing).
// Keys and sessions are spread round-robin over the users. Access tokens
// are signed with the store's own signing key (created if missing, as the
// server does on its first start), with -issuer, -audience and -ttl, which
// must match the Caddyfile's authgate block or the server refuses them.
//
// Records are built on several goroutines (secrets, IDs, token signatures)
// and stored with the store's batch calls (CreateUsers, CreateAPIKeys,
// CreateSessions), -batch records per fsynced transaction.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/authgate/authgate/bench/internal/benchkit"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
	"github.com/authgate/authgate/store/bbolt"
	"github.com/authgate/authgate/tokens"
)

func main() {
	var (
		dbPath     = flag.String("db", "", "store file to fill (created if missing)")
		outDir     = flag.String("out", "", "directory for keys.txt and tokens.txt (default: beside -db)")
		users      = flag.Int("users", 1, "users to create")
		userPrefix = flag.String("user-prefix", "bench", "usernames are <prefix>, or <prefix>00001... when -users > 1")
		password   = flag.String("password", "bench-password-1", "password of every user")
		roles      = flag.String("roles", "bench", "role of every user")
		keys       = flag.Int("keys", 0, "API keys to create (owners round-robin)")
		perms      = flag.String("permissions", "read", "permissions of every API key")
		sessions   = flag.Int("sessions", 0, "sessions, each with one access token, to create")
		issuer     = flag.String("issuer", "authgate-bench", "iss of the tokens: the Caddyfile's `issuer`")
		audience   = flag.String("audience", "authgate-bench", "aud of the tokens: the Caddyfile's `audience`")
		ttl        = flag.Duration("ttl", 24*time.Hour, "access token lifetime: the Caddyfile's `access_ttl`")
		alg        = flag.String("alg", tokens.AlgEdDSA, "signing algorithm: the Caddyfile's `signing_alg`")
		workers    = flag.Int("workers", runtime.GOMAXPROCS(0), "goroutines building records")
		batch      = flag.Int("batch", 5000, "records per transaction")
		cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	)
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("seed: ")
	if *dbPath == "" || *users < 1 {
		log.Fatal("-db is required and -users must be at least 1")
	}
	if *outDir == "" {
		*outDir = filepath.Dir(*dbPath)
	}
	if err := os.MkdirAll(*outDir, 0o700); err != nil {
		log.Fatal(err)
	}
	perm, err := store.ParsePermissions(*perms)
	if err != nil {
		log.Fatal(err)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}

	start := time.Now()
	st, err := bbolt.Open(*dbPath, bbolt.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	// Users: one hash, shared.
	t := time.Now()
	phc, err := secret.HashSecret(*password)
	if err != nil {
		log.Fatal(err)
	}
	userList := make([]*store.User, *users)
	for i := range userList {
		name := *userPrefix
		if *users > 1 {
			name = fmt.Sprintf("%s%05d", *userPrefix, i+1)
		}
		userList[i] = &store.User{Username: name, PasswordHash: phc, Roles: []string{*roles}}
	}
	inBatches(*users, *batch, func(lo, hi int) error { return st.CreateUsers(userList[lo:hi]) })
	log.Printf("%d users in %v (one argon2id hash, reused)", *users, benchkit.Since(t))

	// API keys.
	if *keys > 0 {
		t = time.Now()
		secrets := make([]string, *keys)
		keyList := make([]*store.APIKey, *keys)
		parallel(*keys, *workers, func(i int) error {
			key, err := secret.NewSecret(secret.KeyPrefix)
			if err != nil {
				return err
			}
			secrets[i] = key
			keyList[i] = &store.APIKey{
				Name:        fmt.Sprintf("bench-%d", i+1),
				OwnerID:     userList[i%len(userList)].ID,
				Permissions: perm,
				Digest:      store.DigestOf(key),
				Hint:        secret.Mask(key),
			}
			return nil
		})
		inBatches(*keys, *batch, func(lo, hi int) error { return st.CreateAPIKeys(keyList[lo:hi]) })
		writeLines(filepath.Join(*outDir, "keys.txt"), secrets)
		log.Printf("%d API keys in %v", *keys, benchkit.Since(t))
	}

	// Sessions and their access tokens, signed with the store's key.
	if *sessions > 0 {
		t = time.Now()
		now := time.Now().UTC()
		if _, err := st.EnsureSigningKey(*alg, func() (store.SigningKey, error) {
			return tokens.GenerateKey(*alg, now)
		}); err != nil {
			log.Fatal(err)
		}
		signingKeys, err := st.SigningKeys()
		if err != nil {
			log.Fatal(err)
		}
		// Only the unretired keys of -alg may sign, as on the server.
		var usable []store.SigningKey
		for _, k := range signingKeys {
			if k.Alg == *alg {
				usable = append(usable, k)
			}
		}
		iss, err := tokens.New(tokens.Config{Issuer: *issuer, Audience: *audience, AccessTTL: *ttl}, usable)
		if err != nil {
			log.Fatal(err)
		}
		access := make([]string, *sessions)
		sessionList := make([]store.NewSession, *sessions)
		refreshExpiry := now.Add(30 * 24 * time.Hour)
		parallel(*sessions, *workers, func(i int) error {
			u := userList[i%len(userList)]
			refresh, err := secret.NewSecret(secret.RefreshPrefix)
			if err != nil {
				return err
			}
			s := &store.Session{ID: store.NewID("ses_"), UserID: u.ID, CreatedAt: now, ExpiresAt: refreshExpiry}
			sessionList[i] = store.NewSession{Session: s, Refresh: store.DigestOf(refresh)}
			access[i], _, err = iss.Issue(tokens.Claims{
				UserID: u.ID, Username: u.Username, Roles: u.Roles,
				SessionID: s.ID, Epoch: u.TokenEpoch,
			}, now)
			return err
		})
		// Batches do not apply the login-time session limit.
		inBatches(*sessions, *batch, func(lo, hi int) error { return st.CreateSessions(sessionList[lo:hi]) })
		writeLines(filepath.Join(*outDir, "tokens.txt"), access)
		log.Printf("%d sessions and access tokens in %v", *sessions, benchkit.Since(t))
	}

	if err := st.Close(); err != nil {
		log.Fatal(err)
	}
	fi, err := os.Stat(*dbPath)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("done in %v: %s, %.1f MiB", benchkit.Since(start), *dbPath, float64(fi.Size())/(1<<20))
}

// parallel runs fn(0..n-1) on workers goroutines; the first error ends
// the program.
func parallel(n, workers int, fn func(i int) error) {
	if err := benchkit.Parallel(n, workers, nil, fn); err != nil {
		log.Fatal(err)
	}
}

// inBatches calls fn for [0, size), [size, 2*size), ... up to n, in order;
// the first error ends the program.
func inBatches(n, size int, fn func(lo, hi int) error) {
	if err := benchkit.InBatches(n, size, nil, fn); err != nil {
		log.Fatal(err)
	}
}

func writeLines(path string, lines []string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
