package caddymodule

import (
	"sync/atomic"
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
// The request path costs an array index and an atomic add, never a label
// lookup or a call: the requests counters are plain atomics, read when
// Prometheus scrapes (requestCounters), and the decision cache counts
// itself (auth.Service.CacheStats).

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
	credSession // a browser session cookie
	nCreds
)

var credLabels = [nCreds]string{"none", "bearer", "api_key", "session"}

// metrics are one config's collectors.
type metrics struct {
	requests     requestCounters
	logins       *prometheus.CounterVec
	lockouts     prometheus.Counter
	refreshReuse prometheus.Counter
	storeSeconds *prometheus.HistogramVec
}

// newMetrics makes the collectors and registers them with reg. cacheStats
// reads the decision cache's counts (the service's, once it exists).
func newMetrics(reg prometheus.Registerer, cacheStats func() (hits, misses uint64)) (*metrics, error) {
	m := &metrics{}
	const cacheHelp = "Credential decisions taken from the cache (hit) or made from the store (miss)."
	cacheHit := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "authgate_decision_cache_total", Help: cacheHelp, ConstLabels: prometheus.Labels{"result": "hit"},
	}, func() float64 { hits, _ := cacheStats(); return float64(hits) })
	cacheMiss := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "authgate_decision_cache_total", Help: cacheHelp, ConstLabels: prometheus.Labels{"result": "miss"},
	}, func() float64 { _, misses := cacheStats(); return float64(misses) })
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
	for _, c := range []prometheus.Collector{&m.requests, cacheHit, cacheMiss, m.logins, m.lockouts, m.refreshReuse, m.storeSeconds, hashWaiting} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Every login result of both dialects shows from the first scrape.
	for _, dialect := range []string{"plentymarkets", "babel", "browser"} {
		for _, result := range []string{"ok", auth.ReasonUnknownUser, auth.ReasonWrongPassword, auth.ReasonLocked} {
			m.logins.WithLabelValues(dialect, result)
		}
	}
	return m, nil
}

// request counts one proxied request's outcome.
func (m *metrics) request(result, cred int) { m.requests.counts[result][cred].Add(1) }

// requestCounters is authgate_requests_total: one atomic per result and
// credential, exported as counters when scraped.
type requestCounters struct {
	counts [nResults][nCreds]atomic.Uint64
}

var requestsDesc = prometheus.NewDesc("authgate_requests_total",
	"Proxied requests authgate decided, by result and by the credential they carried.",
	[]string{"result", "method"}, nil)

// Describe and Collect make requestCounters a prometheus.Collector.
func (c *requestCounters) Describe(ch chan<- *prometheus.Desc) { ch <- requestsDesc }

func (c *requestCounters) Collect(ch chan<- prometheus.Metric) {
	for r := range nResults {
		for cred := range nCreds {
			ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue,
				float64(c.counts[r][cred].Load()), resultLabels[r], credLabels[cred])
		}
	}
}

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
