package admin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/secret"
	"github.com/authgate/authgate/store"
)

// Imports for operators migrating in: users from an htpasswd file or a
// Caddyfile's basic_auth blocks (bcrypt hashes, kept as they are and
// upgraded to argon2id at each user's next successful login), and API keys
// from a list of a legacy app's keys (stored, like ours, as digests only).
//
// A file is checked as a whole before anything is stored: one bad line
// refuses the import, and the error lists every bad line. Then each entry
// is stored on its own; one that exists already is skipped and reported,
// never overwritten. No error or report ever contains a hash or a key.
//
//	POST /authgate/import/users  {"format":"htpasswd"|"caddyfile","content":"...","roles":["..."]}
//	POST /authgate/import/keys   {"content":"..."}

// importedUser is one account read from an import file.
type importedUser struct {
	Line     int // 0 for a Caddyfile: its lines do not survive adaptation
	Username string
	Hash     string // bcrypt, checked by checkBcrypt
}

// importedKey is one legacy API key read from an import file.
type importedKey struct {
	Line        int
	Username    string
	Key         string
	Permissions store.Permission
	Name        string
}

// ImportOutcome is what became of one entry; never a secret.
type ImportOutcome struct {
	Line     int    `json:"line,omitempty"`
	Username string `json:"username"`
	UserID   string `json:"userId,omitempty"`
	KeyID    string `json:"keyId,omitempty"`
	KeyName  string `json:"keyName,omitempty"`
	Hint     string `json:"hint,omitempty"` // the key masked, as `key list` shows it
	Result   string `json:"result"`         // "imported" or "skipped"
	Reason   string `json:"reason,omitempty"`
}

// ImportReport sums up an import.
type ImportReport struct {
	Imported int             `json:"imported"`
	Skipped  int             `json:"skipped"`
	Results  []ImportOutcome `json:"results"`
}

func (r *ImportReport) imported(o ImportOutcome) {
	o.Result = "imported"
	r.Imported++
	r.Results = append(r.Results, o)
}

func (r *ImportReport) skipped(o ImportOutcome, reason string) {
	o.Result, o.Reason = "skipped", reason
	r.Skipped++
	r.Results = append(r.Results, o)
}

const (
	// maxImportBcryptCost is what secret.VerifySecret still checks; above
	// it one login costs seconds of CPU.
	maxImportBcryptCost = 15
	minLegacyKey        = 16
	// maxProblems bounds the lines an import error lists.
	maxProblems = 20
)

// problems collects what is wrong with an import file, so that one run
// shows every bad line rather than the first.
type problems struct {
	what string
	list []string
}

func (p *problems) add(line int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if line > 0 {
		msg = fmt.Sprintf("line %d: %s", line, msg)
	}
	p.list = append(p.list, msg)
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	shown := p.list[:min(len(p.list), maxProblems)]
	msg := fmt.Sprintf("%s: nothing imported; fix these and run the import again:\n  %s", p.what, strings.Join(shown, "\n  "))
	if more := len(p.list) - len(shown); more > 0 {
		msg += fmt.Sprintf("\n  ... and %d more", more)
	}
	return errors.New(msg)
}

// importLines splits a file into trimmed lines (line n is [n-1]), dropping
// a leading byte order mark (Windows editors write one).
func importLines(content string) []string {
	content = strings.TrimPrefix(content, "\ufeff")
	lines := strings.Split(content, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return lines
}

// skipLine reports whether a trimmed line is blank or a comment.
func skipLine(l string) bool { return l == "" || l[0] == '#' }

// parseHtpasswd reads "user:hash" lines. Only bcrypt is accepted: the
// other schemes htpasswd writes are too weak to keep (MD5, SHA-1, crypt)
// or not hashes at all, and none can be converted without the password.
func parseHtpasswd(content string) ([]importedUser, error) {
	p := problems{what: "htpasswd"}
	var users []importedUser
	seen := map[string]int{} // lowercased username → line
	for i, l := range importLines(content) {
		n := i + 1
		if skipLine(l) {
			continue
		}
		name, hash, found := strings.Cut(l, ":")
		if !found {
			p.add(n, "want user:hash")
			continue
		}
		if err := checkUsername(name); err != nil {
			p.add(n, "%v", err)
			continue
		}
		if err := checkBcrypt(hash); err != nil {
			p.add(n, "user %s: %v", name, err)
			continue
		}
		// Logins ignore case, so Alice and alice would be one account.
		if first, dup := seen[strings.ToLower(name)]; dup {
			p.add(n, "user %s: already on line %d (usernames ignore case)", name, first)
			continue
		}
		seen[strings.ToLower(name)] = n
		users = append(users, importedUser{Line: n, Username: name, Hash: hash})
	}
	if len(users) == 0 && len(p.list) == 0 {
		p.add(0, "no user:hash lines found")
	}
	return users, p.err()
}

// checkBcrypt accepts a well-formed bcrypt hash that secret.VerifySecret
// will check, and says why anything else is refused. It never repeats the
// hash.
func checkBcrypt(hash string) error {
	if scheme := weakScheme(hash); scheme != "" {
		return fmt.Errorf("%s: only bcrypt hashes can be imported (this scheme cannot be verified safely; set a new password with `htpasswd -B` or `caddy authgate user passwd`)", scheme)
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil || !bcryptShape.MatchString(hash) {
		return errors.New("not a well-formed bcrypt hash")
	}
	if cost > maxImportBcryptCost {
		return fmt.Errorf("bcrypt cost %d is above %d (one login would take seconds of CPU)", cost, maxImportBcryptCost)
	}
	return nil
}

// bcryptShape is "$2a$", "$2b$" or "$2y$", a two-digit cost, and 53
// characters of bcrypt's base64 (salt and hash).
var bcryptShape = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// weakScheme names a password scheme that is not bcrypt, or returns "" for
// what may be bcrypt.
func weakScheme(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return ""
	case strings.HasPrefix(hash, "$2"):
		return "an old or buggy bcrypt variant ($2$, $2x$)"
	case strings.HasPrefix(hash, "$apr1$"):
		return "Apache MD5 (apr1)"
	case strings.HasPrefix(hash, "{SHA}"):
		return "unsalted SHA-1 ({SHA})"
	case strings.HasPrefix(hash, "$1$"):
		return "MD5-crypt ($1$)"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return "SHA-crypt ($5$/$6$)"
	case strings.HasPrefix(hash, "$argon2"):
		return "argon2"
	case strings.HasPrefix(hash, "$"):
		return "an unknown hash scheme"
	case len(hash) == 13:
		return "DES crypt (or a plain-text password)"
	}
	return "a plain-text password or an unknown scheme"
}

// checkUsername is the store's rule for logins, checked here so that the
// error can name the line: 1 to 128 characters of UTF-8, no whitespace or
// control characters.
func checkUsername(name string) error {
	if name == "" {
		return errors.New("empty username")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > 128 {
		return errors.New("a username must be 1 to 128 characters of UTF-8")
	}
	if strings.IndexFunc(name, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return errors.New("a username must not contain whitespace or control characters")
	}
	return nil
}

// CaddyfileAdapter is the part of the Caddyfile import that only Caddy
// can do, which the plugin provides.
type CaddyfileAdapter interface {
	// Adapt turns a Caddyfile into JSON config, with Caddy's own adapter
	// (and the directives of the modules compiled in).
	Adapt(caddyfile []byte) ([]byte, error)
	// Expand replaces the global placeholders ({env.*}) of a value, as
	// Caddy does when it provisions basic_auth.
	Expand(value string) string
}

// parseCaddyfileBasicAuth adapts a Caddyfile with Caddy's own adapter and
// collects the accounts of every basic_auth (or basicauth) block. An
// account in several blocks is imported once if its hash is the same in
// all; different hashes are refused, since either could be the one its
// user knows.
func parseCaddyfileBasicAuth(content string, caddy CaddyfileAdapter) ([]importedUser, error) {
	adapted, err := caddy.Adapt([]byte(strings.TrimPrefix(content, "\ufeff")))
	if err != nil {
		// Masked: the adapter quotes the token it stopped at.
		return nil, fmt.Errorf("caddyfile: %s", maskHashes(err.Error()))
	}
	var tree any
	if err := json.Unmarshal(adapted, &tree); err != nil {
		return nil, fmt.Errorf("caddyfile: reading the adapted config: %v", err)
	}
	p := problems{what: "caddyfile"}
	var users []importedUser
	byLogin := map[string]importedUser{} // lowercased username → first seen
	for _, basic := range basicAuthProviders(tree) {
		if alg := jsonString(basic, "hash", "algorithm"); alg != "" && alg != "bcrypt" {
			p.add(0, "a basic_auth block uses %s: only bcrypt hashes can be imported", alg)
			continue
		}
		accounts, _ := basic["accounts"].([]any)
		for _, a := range accounts {
			// As Caddy provisions them: global placeholders ({env.*})
			// are replaced, and a hash not in crypt form is base64.
			name := caddy.Expand(jsonString(a, "username"))
			hash := caddy.Expand(jsonString(a, "password"))
			if err := checkUsername(name); err != nil {
				p.add(0, "%v", err)
				continue
			}
			if !strings.HasPrefix(hash, "$") {
				raw, err := base64.StdEncoding.DecodeString(hash)
				if err != nil {
					p.add(0, "user %s: the hash is neither in crypt form nor base64", name)
					continue
				}
				hash = string(raw)
			}
			if err := checkBcrypt(hash); err != nil {
				p.add(0, "user %s: %v", name, err)
				continue
			}
			if first, dup := byLogin[strings.ToLower(name)]; dup {
				if first.Username != name || first.Hash != hash {
					p.add(0, "user %s: appears more than once with different hashes (or spellings: usernames ignore case); keep one", name)
				}
				continue
			}
			u := importedUser{Username: name, Hash: hash}
			byLogin[strings.ToLower(name)] = u
			users = append(users, u)
		}
	}
	if len(users) == 0 && len(p.list) == 0 {
		p.add(0, "no basic_auth accounts found")
	}
	return users, p.err()
}

// basicAuthProviders walks adapted JSON for the http_basic providers of
// authentication handlers, wherever they are nested (subroutes of handle
// blocks, several servers). Object keys are walked in order so the result
// does not vary from run to run.
func basicAuthProviders(node any) []map[string]any {
	var out []map[string]any
	switch v := node.(type) {
	case map[string]any:
		if v["handler"] == "authentication" {
			if basic, ok := jsonValue(v, "providers", "http_basic").(map[string]any); ok {
				out = append(out, basic)
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			out = append(out, basicAuthProviders(v[k])...)
		}
	case []any:
		for _, e := range v {
			out = append(out, basicAuthProviders(e)...)
		}
	}
	return out
}

func jsonValue(node any, path ...string) any {
	for _, k := range path {
		m, ok := node.(map[string]any)
		if !ok {
			return nil
		}
		node = m[k]
	}
	return node
}

func jsonString(node any, path ...string) string {
	s, _ := jsonValue(node, path...).(string)
	return s
}

// hashLike matches what could be a hash in an adapter error, which quotes
// the token it stopped at: crypt strings, and base64 of one ("$" is "JD").
var hashLike = regexp.MustCompile(`\$[0-9a-z]+\$\S*|JD[A-Za-z0-9+/]{18,}={0,2}`)

func maskHashes(s string) string { return hashLike.ReplaceAllString(s, "<hash>") }

// parseLegacyKeys reads "<username> <key> [permissions] [name]" lines,
// whitespace-separated; the name is the rest of the line and may contain
// spaces. Permissions default to all, the name to legacy-<line>.
func parseLegacyKeys(content string) ([]importedKey, error) {
	p := problems{what: "keys"}
	var keys []importedKey
	seen := map[store.Digest]int{} // key digest → line, so no key is held twice
	for i, l := range importLines(content) {
		n := i + 1
		if skipLine(l) {
			continue
		}
		fields := strings.Fields(l)
		if len(fields) < 2 {
			p.add(n, "want <username> <key> [permissions] [name]")
			continue
		}
		k := importedKey{Line: n, Username: fields[0], Key: fields[1], Permissions: store.PermAll, Name: fmt.Sprintf("legacy-%d", n)}
		if err := checkUsername(k.Username); err != nil {
			p.add(n, "%v", err)
			continue
		}
		if err := checkLegacyKey(k.Key); err != nil {
			p.add(n, "%v", err)
			continue
		}
		if len(fields) > 2 {
			perms, err := store.ParsePermissions(fields[2])
			if err != nil {
				// Not err: should the columns be mixed up it would quote a key.
				p.add(n, "permissions: want a comma-separated list of read, write, delete, create, or all")
				continue
			}
			k.Permissions = perms
		}
		if len(fields) > 3 {
			k.Name = strings.Join(fields[3:], " ")
			if err := store.CheckText("key name", k.Name, false); err != nil {
				p.add(n, "%v", err)
				continue
			}
		}
		d := store.DigestOf(k.Key)
		if first, dup := seen[d]; dup {
			p.add(n, "the same key as on line %d", first)
			continue
		}
		seen[d] = n
		keys = append(keys, k)
	}
	if len(keys) == 0 && len(p.list) == 0 {
		p.add(0, "no key lines found")
	}
	return keys, p.err()
}

// checkLegacyKey bounds a legacy key: long enough not to be guessed, no
// longer than auth.Service.AuthenticateKey looks up, and printable ASCII,
// which is what clients reliably send in a header.
func checkLegacyKey(key string) error {
	if len(key) < minLegacyKey || len(key) > auth.MaxLegacyKey {
		return fmt.Errorf("the key has %d characters; want %d to %d", len(key), minLegacyKey, auth.MaxLegacyKey)
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] >= 0x7f {
			return fmt.Errorf("the key has a control or non-ASCII character at position %d; want printable ASCII", i+1)
		}
	}
	return nil
}

// importUsers creates each user with their bcrypt hash as it is: the
// login path upgrades it to argon2id (internal/auth, upgradeHash). An
// existing username or email is skipped, never overwritten.
func (o Ops) importUsers(users []importedUser, roles []string) (ImportReport, error) {
	roles = cleanList(roles)
	for _, r := range roles {
		if err := store.CheckText("role", r, false); err != nil {
			return ImportReport{}, err
		}
	}
	rep := ImportReport{Results: []ImportOutcome{}}
	for _, iu := range users {
		out := ImportOutcome{Line: iu.Line, Username: iu.Username}
		u := &store.User{Username: iu.Username, Roles: slices.Clone(roles), PasswordHash: iu.Hash}
		switch err := o.Store.CreateUser(u); {
		case err == nil:
			out.UserID = u.ID
			rep.imported(out)
		case errors.Is(err, store.ErrExists):
			if old, err := o.Store.UserByLogin(iu.Username); err == nil {
				out.UserID = old.ID
			}
			rep.skipped(out, "a user with this username (or email) exists; left unchanged")
		default:
			return rep, importFailed(rep, err)
		}
	}
	return rep, nil
}

// importKeys stores each legacy key as a digest, owned by the named user
// (username, email or id), with the permissions and name of its line.
// Unknown users and keys already stored are skipped and reported.
func (o Ops) importKeys(keys []importedKey) (ImportReport, error) {
	rep := ImportReport{Results: []ImportOutcome{}}
	for _, ik := range keys {
		out := ImportOutcome{Line: ik.Line, Username: ik.Username, KeyName: ik.Name, Hint: secret.Mask(ik.Key)}
		u, err := o.findUser(ik.Username)
		if err != nil {
			var oe *Error
			if errors.As(err, &oe) {
				rep.skipped(out, "no such user")
				continue
			}
			return rep, importFailed(rep, err)
		}
		out.UserID = u.ID
		k := &store.APIKey{
			Name: ik.Name, Description: "imported legacy key", OwnerID: u.ID, Permissions: ik.Permissions,
			Digest: store.DigestOf(ik.Key), Hint: out.Hint, CreatedAt: o.now().UTC(), Legacy: true,
		}
		switch err := o.Store.CreateAPIKey(k); {
		case err == nil:
			out.KeyID = k.ID
			rep.imported(out)
		case errors.Is(err, store.ErrExists):
			reason := "this key is already stored"
			if old, err := o.Store.APIKeyByDigest(k.Digest); err == nil {
				out.KeyID = old.ID
				reason = "this key is already stored as " + old.ID
			}
			rep.skipped(out, reason)
		case errors.Is(err, store.ErrNotFound): // the user was deleted meanwhile
			rep.skipped(out, "no such user")
		default:
			return rep, importFailed(rep, err)
		}
	}
	return rep, nil
}

// importFailed is a store failure midway. Each entry is its own write, so
// the entries before it stay; a second run skips them.
func importFailed(rep ImportReport, err error) error {
	return fmt.Errorf("import stopped after %d imported and %d skipped: %w (running it again skips what was imported)", rep.Imported, rep.Skipped, err)
}

// ImportUsersRequest is the body of POST /authgate/import/users.
type ImportUsersRequest struct {
	Format  string   `json:"format"` // "htpasswd" or "caddyfile"
	Content string   `json:"content"`
	Roles   []string `json:"roles,omitempty"`
}

// ImportKeysRequest is the body of POST /authgate/import/keys.
type ImportKeysRequest struct {
	Content string `json:"content"`
}

// addImportRoutes adds the import routes to the admin API.
func addImportRoutes(handle func(pattern string, route route)) {
	handle("POST /authgate/import/users", func(b Backend, r *http.Request) (int, any, error) {
		var req ImportUsersRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		var users []importedUser
		var err error
		switch req.Format {
		case "htpasswd":
			users, err = parseHtpasswd(req.Content)
		case "caddyfile":
			if b.Caddyfile == nil {
				return 0, nil, invalidf("format %q: this server cannot read Caddyfiles", req.Format)
			}
			users, err = parseCaddyfileBasicAuth(req.Content, b.Caddyfile)
		default:
			return 0, nil, invalidf("format %q: want htpasswd or caddyfile", req.Format)
		}
		if err != nil {
			return 0, nil, invalidf("%v", err)
		}
		v, err := b.Ops.importUsers(users, req.Roles)
		return http.StatusOK, v, err
	})
	handle("POST /authgate/import/keys", func(b Backend, r *http.Request) (int, any, error) {
		var req ImportKeysRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		keys, err := parseLegacyKeys(req.Content)
		if err != nil {
			return 0, nil, invalidf("%v", err)
		}
		v, err := b.Ops.importKeys(keys)
		return http.StatusOK, v, err
	})
}
