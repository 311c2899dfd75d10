package store

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// Logins: what a username or an email may be, and the key both are indexed
// and compared under (LoginKey). A username or an email is a login
// identifier (UserByLogin takes either), so both share one namespace: no
// login may name two users, whichever index it sits in. Every backend
// validates with PrepareLogins and indexes under LoginKey, so a login
// means the same user whichever store holds it.
//
// Two spellings name the same login when their PRECIS UsernameCaseMapped
// forms (RFC 8265) are equal: width, Unicode normalisation (NFC) and case
// are folded, so "ＡＬＩＣＥ", "alice" and "Alice" are one login, and NFD
// "jose\u0301" is NFC "josé". What PRECIS lets through but still looks like
// another login is refused here: invisible characters, and letters of
// several scripts (a Cyrillic "а" in "аlice").

// Length caps of the public contract, in bytes of the stored form (and of
// the input: a longer input is refused before any normalising). The HTTP
// layer caps identifiers with them before a lookup.
const (
	MaxUsernameBytes = 64
	MaxEmailBytes    = 254 // RFC 5321's path limit
)

// idPrefixes are the prefixes of generated ids (ids.go).
var idPrefixes = []string{UserIDPrefix, KeyIDPrefix, SessionIDPrefix}

// IDShaped reports whether s could be an id: it starts with an id prefix
// (in any case) and has no '@', which no id has. No login may be id-shaped,
// so a name that is can only ever mean an id.
func IDShaped(s string) bool {
	if strings.ContainsRune(s, '@') {
		return false
	}
	for _, p := range idPrefixes {
		if len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) {
			return true
		}
	}
	return false
}

// NormalizeLogin returns the comparison key of a username or an email: the
// form UserByLogin looks up, for counting attempts per login. A string that
// cannot be a login is an error wrapping ErrInvalid; it never quotes the
// input (it may be a password typed into the wrong field).
func NormalizeLogin(login string) (string, error) {
	key, _, err := checkLogin("login", login, MaxEmailBytes)
	return key, err
}

// validateUsername returns the form of a username to store (width and
// normalisation folded, case kept) or why it is refused.
func validateUsername(name string) (string, error) {
	_, stored, err := checkLogin("username", name, MaxUsernameBytes)
	return stored, err
}

// validateEmail returns the form of an email to store, or why it is
// refused: it must be exactly one plain addr-spec, local@domain, and pass
// the checks of every login.
func validateEmail(email string) (string, error) {
	if len(email) > MaxEmailBytes {
		return "", fmt.Errorf("%w: email is longer than %d bytes", ErrInvalid, MaxEmailBytes)
	}
	if err := checkAddrSpec(email); err != nil {
		return "", err
	}
	_, stored, err := checkLogin("email", email, MaxEmailBytes)
	if err != nil {
		return "", err
	}
	// Width folding can make punctuation of fullwidth forms ("，", "﹫"),
	// which would turn one address into a list: check what is stored too.
	if err := checkAddrSpec(stored); err != nil {
		return "", err
	}
	return stored, nil
}

// checkAddrSpec accepts one RFC 5322 addr-spec, as it is written: no
// display name, angle brackets, list, comments or surrounding space (the
// parsed address must be the input itself), no quoted local part.
func checkAddrSpec(email string) error {
	a, err := mail.ParseAddress(email)
	if err != nil || a.Name != "" || a.Address != email {
		return fmt.Errorf("%w: email %q must be a single plain address such as name@example.com (no name, brackets, list or comments)", ErrInvalid, email)
	}
	if strings.ContainsRune(email, '"') {
		return fmt.Errorf("%w: email %q has a quoted local part, which is not accepted", ErrInvalid, email)
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return fmt.Errorf("%w: email %q needs a local part and a domain", ErrInvalid, email)
	}
	return nil
}

// checkLogin validates s as a login of at most max bytes and returns its
// comparison key and its form to store. Its errors name what (username,
// email, login) but never quote s.
func checkLogin(what, s string, max int) (key, stored string, err error) {
	// The raw length first: a huge input costs no normalising.
	if s == "" {
		return "", "", fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(s) > max {
		return "", "", fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, what, max)
	}
	if !utf8.ValidString(s) {
		return "", "", fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	// PRECIS refuses these already; checked again so a change of its
	// tables cannot let an invisible character into a login.
	for _, r := range s {
		if invisible(r) {
			return "", "", fmt.Errorf("%w: %s contains an invisible, control, space or text-direction character (U+%04X)", ErrInvalid, what, r)
		}
	}
	stored, err = precis.UsernameCasePreserved.String(s)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s has a character a login may not contain (%v)", ErrInvalid, what, err)
	}
	key, err = precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", "", fmt.Errorf("%w: %s has a character a login may not contain (%v)", ErrInvalid, what, err)
	}
	if len(stored) > max || len(key) > max {
		return "", "", fmt.Errorf("%w: %s is longer than %d bytes once normalised", ErrInvalid, what, max)
	}
	if !singleScript(key) {
		return "", "", fmt.Errorf("%w: %s mixes letters of several scripts (allowed together: Latin with Han, Hiragana and Katakana, Bopomofo or Hangul)", ErrInvalid, what)
	}
	if IDShaped(key) {
		return "", "", fmt.Errorf("%w: %s must not start with usr_, key_ or ses_ (the prefixes of generated ids) unless it has an @", ErrInvalid, what)
	}
	return key, stored, nil
}

// invisible reports a rune that shows as nothing, or changes how the rest
// shows: controls, spaces, format characters (Cf: zero-width, soft hyphen,
// bidi controls) and the other Default_Ignorable code points.
func invisible(r rune) bool {
	return unicode.IsControl(r) || unicode.IsSpace(r) ||
		unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Bidi_Control, r) ||
		unicode.Is(unicode.Variation_Selector, r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
}

// scriptTables are the unicode script tables but Common and Inherited
// (digits, punctuation, combining marks), which go with any script.
var scriptTables = func() []scriptTable {
	var list []scriptTable
	for name, t := range unicode.Scripts {
		if name != "Common" && name != "Inherited" {
			list = append(list, scriptTable{name, t})
		}
	}
	// Most non-ASCII logins are of one of these: try them first.
	first := []string{"Latin", "Han", "Cyrillic", "Greek", "Hiragana", "Katakana", "Hangul", "Arabic"}
	slices.SortFunc(list, func(a, b scriptTable) int {
		ia, ib := slices.Index(first, a.name), slices.Index(first, b.name)
		if ia < 0 {
			ia = len(first)
		}
		if ib < 0 {
			ib = len(first)
		}
		if ia != ib {
			return ia - ib
		}
		return strings.Compare(a.name, b.name)
	})
	return list
}()

type scriptTable struct {
	name  string
	table *unicode.RangeTable
}

// scriptSets are the combinations of scripts UTS #39's "highly restrictive"
// level allows in one identifier (the usual ways to write Japanese, Chinese
// and Korean beside Latin); any other mix is refused.
var scriptSets = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// singleScript reports whether the runes of s are of one script, or of
// scripts one of scriptSets allows together. Common and Inherited runes
// do not count.
func singleScript(s string) bool {
	var scripts []string
	for _, r := range s {
		name := scriptOf(r)
		if name != "" && !slices.Contains(scripts, name) {
			scripts = append(scripts, name)
		}
	}
	if len(scripts) <= 1 {
		return true
	}
	for _, set := range scriptSets {
		if !slices.ContainsFunc(scripts, func(name string) bool { return !slices.Contains(set, name) }) {
			return true
		}
	}
	return false
}

// scriptOf returns the script of r, or "" for Common, Inherited and
// unassigned runes.
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return ""
	}
	for _, st := range scriptTables {
		if unicode.Is(st.table, r) {
			return st.name
		}
	}
	return ""
}

// LoginKey is the key a stored login is indexed under. Logins stored
// before the PRECIS rules may no longer validate; they keep an entry under
// the best key there is, their PRECIS key when it can be computed, else
// their lowercase as before, so an old record is never lost or blocked.
// The empty login has the empty key: it is not indexed.
func LoginKey(login string) string {
	if login == "" {
		return ""
	}
	if key, err := precis.UsernameCaseMapped.String(login); err == nil {
		return key
	}
	return strings.ToLower(login)
}

// PrepareLogins checks the logins of u and replaces them by their stored
// forms (validateUsername, validateEmail), before a backend claims them.
// On an update (old not nil) a login left unchanged is not checked again:
// a record stored under older rules can still be edited (disabled, given
// roles) before it is renamed.
func PrepareLogins(u, old *User) error {
	if old == nil || u.Username != old.Username {
		name, err := validateUsername(u.Username)
		if err != nil {
			return err
		}
		u.Username = name
	}
	if u.Email != "" && (old == nil || u.Email != old.Email) {
		email, err := validateEmail(u.Email)
		if err != nil {
			return err
		}
		u.Email = email
	}
	return nil
}
