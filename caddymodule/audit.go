package caddymodule

import (
	"context"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/authgate/authgate/internal/admin"
	"github.com/authgate/authgate/internal/auth"
)

// The audit trail (API.md section 10): one JSON entry per
// security-relevant event on the logger authgate.audit, which an operator
// routes with Caddy's `log` global option (include authgate.audit). Each
// entry names the user, the session or key, Caddy's client_ip and the
// request id (Caddy's {http.request.uuid}, which it then adds to the
// request's access log entry as "uuid" too), and never a secret: an Event
// cannot hold one, and an unknown login is not repeated.

// auditLogName is the logger's name under Caddy's.
const auditLogName = "authgate.audit"

// observer is the service's auth.Observer: the metrics and the audit log.
type observer struct {
	metrics *metrics
	audit   *zap.Logger
}

// Event counts e and writes its audit entry.
func (o *observer) Event(ctx context.Context, e auth.Event) {
	dialect := auth.DialectOf(ctx)
	o.metrics.event(dialect, &e)
	level := zapcore.InfoLevel
	switch e.Kind {
	case auth.EventLoginFailed, auth.EventLocked, auth.EventRefreshReused:
		level = zapcore.WarnLevel
	}
	ce := o.audit.Check(level, string(e.Kind))
	if ce == nil {
		return
	}
	fields := append(requestFields(ctx), zap.String("event", string(e.Kind)))
	fields = appendIf(fields, "dialect", dialect)
	fields = appendIf(fields, "reason", e.Reason)
	fields = appendIf(fields, "check", e.Check)
	fields = appendIf(fields, "user_id", e.UserID)
	fields = appendIf(fields, "username", e.Username)
	fields = appendIf(fields, "session_id", e.SessionID)
	fields = appendIf(fields, "key_id", e.KeyID)
	fields = appendIf(fields, "kid", e.SigningKID)
	if !e.Until.IsZero() {
		fields = append(fields, zap.String("locked_until", e.Until.UTC().Format(time.RFC3339)))
	}
	if e.Count > 0 {
		fields = append(fields, zap.Int("count", e.Count))
	}
	ce.Write(fields...)
}

// requestFields are who asked: Caddy's client_ip and the request id, read
// from the request's context (none for the upkeep).
func requestFields(ctx context.Context) []zap.Field {
	fields := make([]zap.Field, 0, 12)
	if ip, ok := caddyhttp.GetVar(ctx, caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		fields = append(fields, zap.String("client_ip", ip))
	}
	if repl, ok := ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		if id, ok := repl.GetString("http.request.uuid"); ok && id != "" {
			fields = append(fields, zap.String("request_id", id))
		}
	}
	return fields
}

func appendIf(fields []zap.Field, key, value string) []zap.Field {
	if value == "" {
		return fields
	}
	return append(fields, zap.String(key, value))
}

// auditAdmin writes the audit entry of a change made through the admin
// routes: the route, what it named, the id of what changed, and the admin
// client's address.
func auditAdmin(audit *zap.Logger, e admin.AdminEvent) {
	fields := []zap.Field{zap.String("event", "admin"), zap.String("action", e.Action), zap.String("admin_addr", e.RemoteAddr)}
	fields = appendIf(fields, "target", e.Target)
	fields = appendIf(fields, "subject_id", e.SubjectID)
	fields = appendIf(fields, "username", e.Username)
	audit.Info("admin", fields...)
}
