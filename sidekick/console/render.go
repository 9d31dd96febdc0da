package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// pageNames are the templates under templates/, each rendered inside
// layout.html.
var pageNames = []string{"queue", "conversation", "customer", "reports", "calendar", "oncall", "signin", "error", "bounce"}

// pageData is what every template receives.
type pageData struct {
	// Visitor is nil on the sign-in and error pages before sign-in.
	Visitor *visitor
	// Open is true in dev mode without a token.
	Open bool
	// Nav names the current section for the menu.
	Nav   string
	Flash string
	Error string
	Body  any
	// Live is the page's live-update stream, empty for a page that does
	// not change while open.
	Live string
}

func (s *Service) parseTemplates() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"tier":        tierName,
		"tierClass":   func(t supportv1.Tier) string { return enumWord(t.String(), "TIER_") },
		"status":      func(v supportv1.ConversationStatus) string { return enumWords(v.String(), "CONVERSATION_STATUS_") },
		"statusClass": func(v supportv1.ConversationStatus) string { return enumWord(v.String(), "CONVERSATION_STATUS_") },
		"channel":     channelName,
		"level":       func(v supportv1.DeadlineLevel) string { return enumWords(v.String(), "DEADLINE_LEVEL_") },
		"role":        func(v supportv1.AuthorRole) string { return enumWords(v.String(), "AUTHOR_ROLE_") },
		"kind":        messageKind,
		"closeReason": func(v supportv1.CloseReason) string { return enumWords(v.String(), "CLOSE_REASON_") },
		"why":         func(v rotationv1.Reason) string { return enumWords(v.String(), "REASON_") },
		"when":        s.when,
		"rel":         s.rel,
		"iso":         iso,
		"join":        strings.Join,
		"seconds":     seconds,
		"money":       money,
		"kindName":    func(k rotationv1.OverrideKind) string { return enumWords(k.String(), "OVERRIDE_KIND_") },
		"mul":         func(a, b int) int { return a * b },
		"dict":        dict,
		"share":       share,
		"base":        func() string { return BasePath },
	}
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page with no message.
func (s *Service) render(w http.ResponseWriter, r *http.Request, code int, name string, v *visitor, body any) {
	s.renderPage(w, r, code, name, v, body, "", "")
}

// renderPage executes a page into a buffer first, so a template error
// becomes a clean 500 instead of half a page.
func (s *Service) renderPage(w http.ResponseWriter, r *http.Request, code int, name string, v *visitor, body any, flash, errMsg string) {
	nav := name
	switch name {
	case "conversation", "customer":
		nav = "queue"
	case "calendar":
		nav = "oncall"
	}
	var buf bytes.Buffer
	data := pageData{Visitor: v, Open: s.open(), Nav: nav, Flash: flash, Error: errMsg, Body: body}
	if v != nil && s.deps.NATS != nil {
		switch b := body.(type) {
		case queueData:
			data.Live = LivePath
		case conversationData:
			data.Live = LivePath + "?" + url.Values{"conversation": {b.C.GetId()}}.Encode()
		}
	}
	err := s.pages[name].ExecuteTemplate(&buf, "layout", data)
	if err != nil {
		s.deps.Logger.Error("render console page", "page", name, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
}

// renderError shows msg on the error page with the given status.
func (s *Service) renderError(w http.ResponseWriter, r *http.Request, v *visitor, code int, msg string) {
	s.renderPage(w, r, code, "error", v, http.StatusText(code), "", msg)
}

// rpcError maps a failed gRPC call to an HTTP status and a message, in
// one place: what the person can fix (not found, invalid, wrong state)
// keeps triage's message; the console's own trouble says so.
func (s *Service) rpcError(w http.ResponseWriter, r *http.Request, v *visitor, what string, err error) {
	st := status.Convert(err)
	code, msg := http.StatusBadGateway, fmt.Sprintf("%s failed: %s", what, st.Message())
	switch st.Code() {
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.InvalidArgument, codes.OutOfRange:
		code = http.StatusBadRequest
	case codes.FailedPrecondition, codes.AlreadyExists, codes.Aborted:
		code = http.StatusConflict
	case codes.DeadlineExceeded:
		code, msg = http.StatusGatewayTimeout, what+" timed out; try again."
	case codes.Unavailable:
		msg = what + " failed: the service behind the console is unreachable; try again shortly."
	case codes.Unauthenticated, codes.PermissionDenied:
		msg = what + " failed: the console's gRPC token was refused (check SIDEKICK_GRPC_TOKEN)."
	case codes.Canceled:
		return // the browser went away
	}
	level := s.deps.Logger.Warn
	if code >= 500 {
		level = s.deps.Logger.Error
	}
	level("console call failed", "what", what, "code", st.Code().String(), "error", st.Message())
	s.renderError(w, r, v, code, msg)
}

// rejected reports whether a gRPC error means the request itself was
// refused (the person's fault), not that something broke.
func rejected(err error) bool {
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition, codes.AlreadyExists, codes.Aborted:
		return true
	}
	return false
}

// enumWord turns TIER_PRIORITY into "priority".
func enumWord(s, prefix string) string {
	s = strings.TrimPrefix(s, prefix)
	if s == "UNSPECIFIED" {
		return ""
	}
	return strings.ToLower(s)
}

// enumWords turns CONVERSATION_STATUS_AWAITING_CUSTOMER into "awaiting customer".
func enumWords(s, prefix string) string {
	return strings.ReplaceAll(enumWord(s, prefix), "_", " ")
}

func tierName(t supportv1.Tier) string {
	switch t {
	case supportv1.Tier_TIER_PRIORITY:
		return "Priority"
	case supportv1.Tier_TIER_SUBSCRIBER:
		return "Subscriber"
	case supportv1.Tier_TIER_COMMUNITY:
		return "Community"
	}
	return "Untiered"
}

func channelName(c supportv1.Channel) string {
	switch c {
	case supportv1.Channel_CHANNEL_SLACK:
		return "Slack"
	case supportv1.Channel_CHANNEL_EMAIL:
		return "email"
	case supportv1.Channel_CHANNEL_GITHUB:
		return "GitHub"
	case supportv1.Channel_CHANNEL_SENTRY:
		return "Sentry"
	}
	return "unknown channel"
}

// messageKind is empty for an ordinary posted message, and for edits and
// deletions, which the page marks from the message's attributes.
func messageKind(k supportv1.MessageKind) string {
	switch k {
	case supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.MessageKind_MESSAGE_KIND_EDITED, supportv1.MessageKind_MESSAGE_KIND_DELETED:
		return ""
	}
	return enumWords(k.String(), "MESSAGE_KIND_")
}

// when formats a timestamp in the console's zone; "" when unset.
func (s *Service) when(ts *timestamppb.Timestamp) string {
	if ts == nil || !ts.IsValid() {
		return ""
	}
	return ts.AsTime().In(s.loc).Format("Mon 2 Jan 2006 15:04 MST")
}

// rel says how far a timestamp is from now: "in 12m", "3h 5m ago".
func (s *Service) rel(ts *timestamppb.Timestamp) string {
	if ts == nil || !ts.IsValid() {
		return ""
	}
	d := ts.AsTime().Sub(s.deps.Clock.Now())
	if d >= 0 {
		return "in " + shortDuration(d)
	}
	return shortDuration(-d) + " ago"
}

func iso(ts *timestamppb.Timestamp) string {
	if ts == nil || !ts.IsValid() {
		return ""
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// shortDuration rounds to the two largest units: 45s, 12m, 3h 5m, 2d 4h.
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh %dm", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd %dh", days, h)
}

// money shows cents as dollars: $1,250.00.
func money(cents int64) string {
	d := fmt.Sprintf("%d", cents/100)
	for i := len(d) - 3; i > 0; i -= 3 {
		d = d[:i] + "," + d[i:]
	}
	return fmt.Sprintf("$%s.%02d", d, cents%100)
}

// dict builds a map from key, value pairs, for passing several values to
// a template.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}
