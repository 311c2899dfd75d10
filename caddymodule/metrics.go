package caddymodule

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authgate/authgate/internal/auth"
	"github.com/authgate/authgate/internal/httpx"
	"github.com/authgate/authgate/internal/secret"
)

// Metrics (API.md section 10), in the registry of the config's Caddy
// context: Caddy serves them where it serves its own (the admin
// endpoint's /metrics), and a reload starts them afresh with Caddy's. No
// label ever holds a user, a key or a path: every label value is one of a
// fixed set, so no client can grow the series.
//
// The request path's counters are bound once, here: a request costs an
// array index and an atomic add, never a label lookup.

// The results of a proxied request (authgate_requests_total's result).
const (
	resultAuthenticated  = iota // a valid credential; passed upstream
	resultAllowed               // an allowed path; passed without one
	resultUnauthorized          // no credential (401)
	resultInvalidToken          // a bad, expired or revoked credential (401)
	resultForbidden             // insufficient_scope (403)
	resultInvalidRequest        // two credentials, a bad override (400)
	resultUnavailable           // the store could not decide (503)
	nResults
)

var resultLabels = [nResults]string{"authenticated", "allowed", "unauthorized", "invalid_token", "insufficient_scope", "invalid_request", "unavailable"}

// The credential a request carried (authgate_requests_total's method).
const (
	credNone = iota
	credBearer
	credAPIKey
	nCreds
)

var credLabels = [nCreds]string{"none", "bearer", "api_key"}

// metrics are one config's collectors.
type metrics struct {
	requests     [nResults][nCreds]prometheus.Counter
	cacheHit     prometheus.Counter
	cacheMiss    prometheus.Counter
	logins       *prometheus.CounterVec
	lockouts     prometheus.Counter
	refreshReuse prometheus.Counter
	storeSeconds *prometheus.HistogramVec
}

// newMetrics makes the collectors and registers them with reg.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_requests_total",
		Help: "Proxied requests authgate decided, by result and by the credential they carried.",
	}, []string{"result", "method"})
	for r := range nResults {
		for c := range nCreds {
			m.requests[r][c] = requests.WithLabelValues(resultLabels[r], credLabels[c])
		}
	}
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_decision_cache_total",
		Help: "Credential decisions taken from the cache (hit) or made from the store (miss).",
	}, []string{"result"})
	m.cacheHit, m.cacheMiss = cache.WithLabelValues("hit"), cache.WithLabelValues("miss")
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authgate_logins_total",
		Help: "Logins (password, quick_login) and secret checks, by dialect and result.",
	}, []string{"dialect", "result"})
	m.lockouts = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "authgate_lockouts_total",
		Help: "Accounts locked by a failed attempt.",
	})
	m.refreshReuse = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "authgate_refresh_reuse_total",
		Help: "Spent refresh tokens presented again; each revoked its session.",
	})
	m.storeSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "authgate_store_seconds",
		Help:    "Time of the credential store's operations, by operation.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"op"})
	hashWaiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "authgate_hash_waiting",
		Help: "Password and PIN checks waiting for a hashing slot now.",
	}, func() float64 {
		_, waiting := secret.HashStats()
		return float64(waiting)
	})
	for _, c := range []prometheus.Collector{requests, cache, m.logins, m.lockouts, m.refreshReuse, m.storeSeconds, hashWaiting} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Every login result of both dialects shows from the first scrape.
	for _, dialect := range []string{"plentymarkets", "babel"} {
		for _, result := range []string{"ok", auth.ReasonUnknownUser, auth.ReasonWrongPassword, auth.ReasonLocked} {
			m.logins.WithLabelValues(dialect, result)
		}
	}
	return m, nil
}

// request counts one proxied request's outcome.
func (m *metrics) request(result, cred int) { m.requests[result][cred].Inc() }

// refusalResult is the result label of a refusal.
func refusalResult(r *httpx.Refusal) int {
	switch r.Code {
	case "unauthorized":
		return resultUnauthorized
	case "invalid_token":
		return resultInvalidToken
	case "insufficient_scope":
		return resultForbidden
	case "invalid_request":
		return resultInvalidRequest
	}
	return resultUnavailable
}

// storeOp observes one store operation (store/timed).
func (m *metrics) storeOp(op string, d time.Duration) {
	m.storeSeconds.WithLabelValues(op).Observe(d.Seconds())
}

// CacheLookup counts a decision cache lookup (auth.Observer).
func (m *metrics) CacheLookup(hit bool) {
	if hit {
		m.cacheHit.Inc()
	} else {
		m.cacheMiss.Inc()
	}
}

// event counts what the metrics count of an audit event.
func (m *metrics) event(dialect string, e *auth.Event) {
	if dialect == "" {
		dialect = "none"
	}
	switch e.Kind {
	case auth.EventLogin:
		m.logins.WithLabelValues(dialect, "ok").Inc()
	case auth.EventLoginFailed:
		m.logins.WithLabelValues(dialect, e.Reason).Inc()
	case auth.EventLocked:
		m.lockouts.Inc()
	case auth.EventRefreshReused:
		m.refreshReuse.Inc()
	}
}
