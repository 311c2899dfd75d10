package admin

import "unicode/utf8"

// The password policy of the admin operations: a minimum length, nothing
// else (NIST SP 800-63B: length is what makes a password hard to guess;
// composition rules only make it hard to remember). It is checked wherever
// an operator sets a plaintext password; an imported hash cannot be checked.

// DefaultMinPasswordLength is the minimum when none is configured (the
// Caddyfile's password_min_length; with --db nothing is configured).
const DefaultMinPasswordLength = 8

// minPasswordLength is the minimum o enforces.
func (o Ops) minPasswordLength() int {
	if o.MinPasswordLength > 0 {
		return o.MinPasswordLength
	}
	return DefaultMinPasswordLength
}

// checkPassword refuses an empty or too short password. Length counts
// characters (Unicode code points), not bytes, as NIST asks. The message
// states the rule, never the password nor its length: Caddy's admin
// endpoint logs the errors of its routes.
func (o Ops) checkPassword(password string) error {
	if password == "" {
		return invalidf("a password is required")
	}
	if min := o.minPasswordLength(); utf8.RuneCountInString(password) < min {
		return invalidf("the password is too short: it must have at least %d characters", min)
	}
	return nil
}
