package browser

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"regexp"
	"strconv"
)

// The login and sign-out pages: one html/template (ours, or the
// operator's), no script, no external resources, never framed. Nothing a
// client sent is shown but the rd it asked for, and html/template escapes
// that in its attribute (no reflected input: caddy-security
// CVE-2024-21496).

//go:embed login.html
var defaultPage string

// PageData is what the template is given.
type PageData struct {
	Title string
	// Action is where the login form posts; CSRF its token; Redirect the
	// (already safe) path to land on.
	Action, CSRF, Redirect string
	// Error is the one message of a failed login: generic, or when to
	// retry a locked account.
	Error string
	// SignOut selects the sign-out page: a form that posts to
	// LogoutAction, for the signed-in Username.
	SignOut      bool
	LogoutAction string
	Username     string
}

// page is a parsed template with the Content-Security-Policy it needs.
type page struct {
	tmpl *template.Template
	csp  string
}

// cspBase forbids everything the pages do not need.
const cspBase = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var styleBlock = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// loadPage parses the operator's template file, or ours when path is "".
// Ours gets a CSP that allows exactly its inline style (by hash); an
// operator's may use inline styles and same-origin images and styles, but
// still no script and no other origin.
func loadPage(path string) (*page, error) {
	text, csp := defaultPage, cspBase
	if path == "" {
		for _, m := range styleBlock.FindAllStringSubmatch(defaultPage, -1) {
			sum := sha256.Sum256([]byte(m[1]))
			csp += "; style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
		}
	} else {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("browser template: %v", err)
		}
		text = string(raw)
		csp += "; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
	}
	tmpl, err := template.New("login").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, fmt.Errorf("browser template %s: %v", path, err)
	}
	// Render once now: a template that fails on our data fails the config
	// load, not a user's login.
	if err := tmpl.Execute(new(bytes.Buffer), PageData{Title: "Sign in"}); err != nil {
		return nil, fmt.Errorf("browser template %s: %v", path, err)
	}
	return &page{tmpl: tmpl, csp: csp}, nil
}

// render writes the page with status and the headers every page carries.
func (p *page) render(w http.ResponseWriter, status int, data PageData) {
	if data.Title == "" {
		data.Title = "Sign in"
	}
	var body bytes.Buffer
	if err := p.tmpl.Execute(&body, data); err != nil {
		http.Error(w, "the login page could not be rendered", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}
