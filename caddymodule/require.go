package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/httpx"
)

// RequireRule is one `require <path patterns...> [roles <r>...] [methods
// <m>...]` line (API.md section 2): on a path its patterns match, the
// principal must have at least one of Roles, and the request's method and
// every method an override names must be one of Methods. Empty Roles or
// Methods is no condition of that kind; a rule needs one or the other.
type RequireRule struct {
	// Paths are path patterns, as Caddy's path matcher takes them.
	Paths []string `json:"paths"`
	// Roles: the principal (for an API key, its owner) needs one of them.
	Roles []string `json:"roles,omitempty"`
	// Methods lists the methods the request may use and name, in upper case.
	Methods []string `json:"methods,omitempty"`
}

// requireRules are a handler's require rules, built at setup: a matcher,
// a role set and a method set per rule.
//
// Rules run only after authentication, on proxied requests: the handler's
// own routes (login, JWKS, health) and allowed paths never meet them, and
// a request without a valid credential was refused (401) before. A rule
// can therefore only ever refuse more.
//
// The path a rule sees is the path `allow` sees: Caddy's path matcher on
// the request's cleaned, lower-cased path. A path that is not canonical
// (canonicalRequest: dot segments, //, encoded '/', '\' or '.', a '%'
// once decoded, ';', invalid UTF-8, ...) fails closed: it is judged by
// every rule at once, and all of them must hold. Such a path may reach an
// upstream as a path other than the one Caddy's matcher cleans it to
// (Tomcat drops ";x" from "/admin;x", a second decoding turns "%252e" into
// a dot), so no rule can be ruled out for it. Judging it by all rules
// rather than refusing it keeps working a client that sends one (a
// ";jsessionid" parameter, say) as long as its principal passes every
// rule; refusing it would break such clients on every path the moment one
// rule is written.
type requireRules struct {
	rules []requireRule
}

type requireRule struct {
	matcher caddyhttp.MatchPath
	roles   map[string]struct{} // nil: no role condition
	methods map[string]struct{} // nil: no method condition
}

// newRequireRules checks and builds the rules. A rule that could match a
// path an `allow` pattern matches is refused: an allowed path needs no
// credential, so no rule could hold there, and letting either win
// silently would leave the configuration meaning something other than
// what it says.
func newRequireRules(ctx caddy.Context, specs []RequireRule, allow []string) (requireRules, error) {
	var rs requireRules
	if len(specs) == 0 {
		return rs, nil
	}
	allowed := caddyhttp.MatchPath(append([]string(nil), allow...))
	if err := allowed.Provision(ctx); err != nil {
		return rs, err
	}
	for i := range specs {
		spec, err := checkRequireRule(specs[i])
		if err != nil {
			return rs, fmt.Errorf("authgate: %v", err)
		}
		specs[i] = spec
		rule := requireRule{matcher: caddyhttp.MatchPath(append([]string(nil), spec.Paths...))}
		if err := rule.matcher.Provision(ctx); err != nil {
			return rs, err
		}
		for j, p := range rule.matcher {
			for k, a := range allowed {
				if patternsMayOverlap(a, p) {
					return rs, fmt.Errorf("authgate: allow pattern %q and require pattern %q can match the same path; "+
						"an allowed path needs no credential, so no require rule can hold on it: narrow one of them",
						allow[k], spec.Paths[j])
				}
			}
		}
		if len(spec.Roles) > 0 {
			rule.roles = make(map[string]struct{}, len(spec.Roles))
			for _, role := range spec.Roles {
				rule.roles[role] = struct{}{}
			}
		}
		if len(spec.Methods) > 0 {
			rule.methods = make(map[string]struct{}, len(spec.Methods))
			for _, m := range spec.Methods {
				rule.methods[m] = struct{}{}
			}
		}
		rs.rules = append(rs.rules, rule)
	}
	return rs, nil
}

// checkRequireRule validates a rule and returns it with its methods in
// upper case. The Caddyfile parser calls it too, so that `caddy adapt`
// reports a bad rule.
func checkRequireRule(r RequireRule) (RequireRule, error) {
	name := "require " + strings.Join(r.Paths, " ")
	if len(r.Paths) == 0 {
		return r, fmt.Errorf("require needs at least one path pattern")
	}
	for _, p := range r.Paths {
		if !strings.HasPrefix(p, "/") && p != "*" {
			return r, fmt.Errorf("%s: pattern %q must start with / (or be *)", name, p)
		}
	}
	if len(r.Roles) == 0 && len(r.Methods) == 0 {
		return r, fmt.Errorf("%s: give roles, methods or both; a rule with neither would hold for every request", name)
	}
	for _, role := range r.Roles {
		if role == "" || strings.TrimSpace(role) != role || strings.ContainsRune(role, ',') || strings.ContainsFunc(role, unicode.IsControl) {
			return r, fmt.Errorf("%s: role %q can never match: roles have no commas, control characters or surrounding spaces", name, role)
		}
	}
	methods := make([]string, len(r.Methods))
	for i, m := range r.Methods {
		if m == "" || strings.ContainsFunc(m, func(c rune) bool {
			return c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
		}) {
			return r, fmt.Errorf("%s: method %q is not an HTTP method name", name, m)
		}
		methods[i] = strings.ToUpper(m)
	}
	if len(methods) > 0 {
		r.Methods = methods
	}
	return r, nil
}

// patternsMayOverlap reports whether some path could match both patterns
// (as Caddy's Provision leaves them: lower-cased). It may say yes where no
// such path exists, never no where one does: a path a pattern matches
// starts with the pattern's literal part (the part before its first glob,
// escape or placeholder), so two patterns whose literal parts differ
// before either ends share no path. An exact pattern is asked of the
// other pattern's matcher directly.
func patternsMayOverlap(a, b string) bool {
	la, exactA := patternLiteral(a)
	lb, exactB := patternLiteral(b)
	switch {
	case exactA && exactB:
		return a == b
	case exactA && !strings.ContainsAny(b, "{%"):
		return matchesPath(b, a)
	case exactB && !strings.ContainsAny(a, "{%"):
		return matchesPath(a, b)
	}
	return strings.HasPrefix(la, lb) || strings.HasPrefix(lb, la)
}

// patternLiteral is pattern up to its first special character; exact
// reports there is none.
func patternLiteral(pattern string) (literal string, exact bool) {
	end := strings.IndexAny(pattern, "*?[\\{%")
	if end == -1 {
		return pattern, true
	}
	return pattern[:end], false
}

// matchesPath asks Caddy's matcher whether pattern matches path.
func matchesPath(pattern, path string) bool {
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	r := (&http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}}).WithContext(ctx)
	return caddyhttp.MatchPath{pattern}.Match(r)
}

// The refusals of a rule, 403 insufficient_scope (API.md section 3); the
// second of each pair is for a path that is not canonical. They name no
// role or method: the client learns which condition failed, not the policy.
var (
	errRequireRole = [2]*httpx.Refusal{
		httpx.Refuse(http.StatusForbidden, "insufficient_scope", "the user has none of the roles this path requires"),
		httpx.Refuse(http.StatusForbidden, "insufficient_scope", "the path is not in canonical form, so every require rule applies to it, and the user has none of the roles one of them requires"),
	}
	errRequireMethod = [2]*httpx.Refusal{
		httpx.Refuse(http.StatusForbidden, "insufficient_scope", "this path does not permit this method"),
		httpx.Refuse(http.StatusForbidden, "insufficient_scope", "the path is not in canonical form, so every require rule applies to it, and one of them does not permit this method"),
	}
	errRequireOverride = [2]*httpx.Refusal{
		httpx.Refuse(http.StatusForbidden, "insufficient_scope", "this path does not permit a method the request names in a method override"),
		httpx.Refuse(http.StatusForbidden, "insufficient_scope", "the path is not in canonical form, so every require rule applies to it, and one of them does not permit a method the request names in a method override"),
	}
)

// check is the request path's one call: nil unless a rule refuses r by p.
// Without rules it is a length check (and inlined). When the body was
// spooled to look for `_method`, done frees the spool (call it once the
// upstream has read the body), as with httpx.CheckMethodParams.
func (rs *requireRules) check(r *http.Request, p *auth.Principal) (done func() error, err error) {
	if len(rs.rules) == 0 {
		return nil, nil
	}
	return rs.judge(r, p)
}

func (rs *requireRules) judge(r *http.Request, p *auth.Principal) (func() error, error) {
	canonical := canonicalRequest(r)
	which := 0
	if !canonical {
		which = 1
	}
	methodRules := false
	for i := range rs.rules {
		rule := &rs.rules[i]
		if canonical && !rule.matcher.Match(r) {
			continue
		}
		if rule.roles != nil && !rule.hasRole(p.Roles()) {
			return nil, errRequireRole[which]
		}
		if rule.methods != nil {
			if _, ok := rule.methods[r.Method]; !ok {
				return nil, errRequireMethod[which]
			}
			methodRules = true
		}
	}
	if !methodRules {
		return nil, nil
	}
	// The methods the request names in an override: in a header, or as
	// _method in the query or the body (httpx.CheckMethodParams).
	j := &methodJudge{rs: rs, r: r, canonical: canonical}
	if !httpx.AllowsOverrides(r.Header, j.allows) {
		return nil, errRequireOverride[which]
	}
	done, err := httpx.CheckMethodParams(r, j.allows)
	if err != nil {
		if httpx.RefusalOf(err).Status == http.StatusForbidden {
			return nil, errRequireOverride[which]
		}
		return nil, err // 400, 413, 415: the body could not be checked
	}
	return done, nil
}

// hasRole reports whether one of roles (comma-separated, as
// Principal.Roles has them) is one of the rule's.
func (rule *requireRule) hasRole(roles string) bool {
	for roles != "" {
		var role string
		role, roles, _ = strings.Cut(roles, ",")
		if _, ok := rule.roles[role]; ok {
			return true
		}
	}
	return false
}

// methodJudge decides about a method an override names: every rule with
// methods that applies to the request must list it.
type methodJudge struct {
	rs        *requireRules
	r         *http.Request
	canonical bool
}

func (j *methodJudge) allows(method string) bool {
	for i := range j.rs.rules {
		rule := &j.rs.rules[i]
		if rule.methods == nil || j.canonical && !rule.matcher.Match(j.r) {
			continue
		}
		if _, ok := rule.methods[method]; !ok {
			return false
		}
	}
	return true
}
