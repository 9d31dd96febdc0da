package sentryhook

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Errors Parse returns: ErrMalformed means the body is not JSON (400);
// ErrUnusable means a handled resource whose payload lacks what a message
// needs (dead letter).
var (
	ErrMalformed = errors.New("malformed payload")
	ErrUnusable  = errors.New("unusable payload")
)

// Reasons a webhook is acknowledged without a message.
const (
	IgnoredResource     = "resource"     // a resource Sidekick does not handle
	IgnoredAction       = "action"       // a handled resource with another action
	IgnoredInstallation = "installation" // installation created/deleted: logged only
)

// Event is what Parse made of one webhook.
type Event struct {
	// Message is the normalized message; nil when Ignored is set.
	Message *supportv1.InboundMessage
	Ignored string
	// Key groups the messages of one thread for coalescing and ordering:
	// the Sentry issue id, or "incident-<id>" for a metric alert.
	Key string
	// Occurrence is set for an error occurrence (error.created,
	// event_alert.triggered, issue.created): these are counted and
	// coalesced per issue. Other messages (state changes, comments, metric
	// alerts) pass through in order.
	Occurrence bool
	// Project is the Sentry project slug and Tags the event's tags, for the
	// ownership rules.
	Project string
	Tags    map[string]string
	// Installation is the installation payload's uuid, for logging.
	Installation string
}

// Attribute keys set on messages.
const (
	AttrIssueID     = "issue_id"
	AttrShortID     = "short_id"
	AttrProject     = "project"
	AttrLevel       = "level"
	AttrCulprit     = "culprit"
	AttrOccurrences = "occurrences"
	AttrFirstSeen   = "first_seen"
	AttrLastSeen    = "last_seen"
	AttrMuted       = "muted"
)

// flexString accepts a JSON string, number or null: Sentry sends ids as
// either.
type flexString string

func (f *flexString) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	switch tok.Kind() {
	case 'n':
		*f = ""
	case '"', '0':
		// For a number, String is its text as sent, as json.Number kept it.
		*f = flexString(tok.String())
	default:
		return fmt.Errorf("id is %v, neither a string nor a number", tok.Kind())
	}
	return nil
}

type actor struct {
	Type string     `json:"type"`
	ID   flexString `json:"id"`
	Name string     `json:"name"`
}

type project struct {
	ID   flexString `json:"id"`
	Name string     `json:"name"`
	Slug string     `json:"slug"`
}

type assignee struct {
	Type  string     `json:"type"`
	ID    flexString `json:"id"`
	Name  string     `json:"name"`
	Email string     `json:"email"`
}

type issue struct {
	ID         flexString `json:"id"`
	ShortID    string     `json:"shortId"`
	Title      string     `json:"title"`
	Culprit    string     `json:"culprit"`
	Level      string     `json:"level"`
	Status     string     `json:"status"`
	Substatus  string     `json:"substatus"`
	Count      flexString `json:"count"`
	UserCount  flexString `json:"userCount"`
	FirstSeen  *time.Time `json:"firstSeen"`
	LastSeen   *time.Time `json:"lastSeen"`
	Permalink  *string    `json:"permalink"`
	WebURL     string     `json:"web_url"`
	Project    *project   `json:"project"`
	AssignedTo *assignee  `json:"assignedTo"`
	Metadata   struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"metadata"`
}

type sentryUser struct {
	ID       flexString `json:"id"`
	Email    string     `json:"email"`
	Username string     `json:"username"`
	Name     string     `json:"name"`
}

type event struct {
	EventID  string      `json:"event_id"`
	IssueID  flexString  `json:"issue_id"`
	Title    string      `json:"title"`
	Message  string      `json:"message"`
	Culprit  string      `json:"culprit"`
	Level    string      `json:"level"`
	Datetime *time.Time  `json:"datetime"`
	User     *sentryUser `json:"user"`
	Tags     [][]string  `json:"tags"`
	URL      string      `json:"url"`
	WebURL   string      `json:"web_url"`
	Release  *string     `json:"release"`
}

type metricAlert struct {
	ID         flexString `json:"id"`
	Identifier flexString `json:"identifier"`
	Title      string     `json:"title"`
	Projects   []string   `json:"projects"`
	AlertRule  struct {
		ID       flexString `json:"id"`
		Name     string     `json:"name"`
		Projects []string   `json:"projects"`
	} `json:"alert_rule"`
	DateStarted *time.Time `json:"date_started"`
}

type data struct {
	Issue            *issue       `json:"issue"`
	Error            *event       `json:"error"`
	Event            *event       `json:"event"`
	TriggeredRule    string       `json:"triggered_rule"`
	MetricAlert      *metricAlert `json:"metric_alert"`
	DescriptionTitle string       `json:"description_title"`
	DescriptionText  string       `json:"description_text"`
	WebURL           string       `json:"web_url"`
	Comment          *string      `json:"comment"`
	CommentID        flexString   `json:"comment_id"`
	IssueID          flexString   `json:"issue_id"`
	ProjectSlug      string       `json:"project_slug"`
	Timestamp        *time.Time   `json:"timestamp"`
	Installation     *struct {
		UUID string `json:"uuid"`
	} `json:"installation"`
}

type payload struct {
	Action string `json:"action"`
	Actor  *actor `json:"actor"`
	Data   data   `json:"data"`
}

var handled = map[string]map[string]bool{
	"installation": {"created": true, "deleted": true},
	"issue":        {"created": true, "resolved": true, "assigned": true, "archived": true, "ignored": true, "unresolved": true},
	"event_alert":  {"triggered": true},
	"metric_alert": {"critical": true, "warning": true, "resolved": true},
	"error":        {"created": true},
	"comment":      {"created": true, "updated": true, "deleted": true},
}

// decodeOptions make the decoder as lenient as encoding/json was about
// what does not matter here (a repeated member: the last wins; invalid
// UTF-8: replaced). Members match by their exact names, as Sentry writes
// them.
//
// Why not encoding/json: an error.created webhook is about 6 kB, most of
// it the event's stack trace and contexts, which Parse does not read.
// encoding/json scans the whole body to validate it and then again to
// skip what it does not decode, which no shape of the target struct
// avoids (json.RawMessage is scanned too): that was 26.6% of the CPU of a
// Sentry storm. This decoder (the one ingest-slack's slackevent uses, and
// the design of encoding/json/v2) validates and skips in one pass.
var decodeOptions = json.JoinOptions(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))

// Handled reports whether Sidekick handles resource at all.
func Handled(resource string) bool { return handled[resource] != nil }

// Parse normalizes a verified webhook. The message id derives from what
// Sentry says about the change (see identity), or from requestID (the
// Request-ID header) when the payload lacks it; now stamps received_at.
func Parse(resource, requestID string, body []byte, now time.Time) (Event, error) {
	actions := handled[resource]
	if actions == nil {
		return Event{Ignored: IgnoredResource}, nil
	}
	var p payload
	if err := json.Unmarshal(body, &p, decodeOptions); err != nil {
		if jsontext.Value(body).IsValid(decodeOptions) {
			// JSON, but not shaped as Sentry documents it (a number where
			// a string belongs, a bad timestamp).
			return Event{}, fmt.Errorf("%w: %s: %v", ErrUnusable, resource, err)
		}
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !actions[p.Action] {
		return Event{Ignored: IgnoredAction}, nil
	}
	m := &supportv1.InboundMessage{
		Id:         "sentry:" + requestID,
		Channel:    supportv1.Channel_CHANNEL_SENTRY,
		ReceivedAt: timestamppb.New(now),
		Attributes: map[string]string{"sentry_resource": resource, "sentry_action": p.Action},
	}
	ev := Event{Message: m}
	var err error
	switch resource {
	case "installation":
		if p.Data.Installation != nil {
			ev.Installation = p.Data.Installation.UUID
		}
		return Event{Ignored: IgnoredInstallation, Installation: ev.Installation}, nil
	case "issue":
		err = p.parseIssue(&ev)
	case "error":
		err = p.parseOccurrence(&ev, p.Data.Error)
	case "event_alert":
		err = p.parseOccurrence(&ev, p.Data.Event)
		if err == nil && p.Data.TriggeredRule != "" {
			m.Attributes["triggered_rule"] = p.Data.TriggeredRule
		}
	case "metric_alert":
		err = p.parseMetricAlert(&ev)
	case "comment":
		err = p.parseComment(&ev)
	}
	if err != nil {
		return Event{}, fmt.Errorf("%w: %s.%s: %v", ErrUnusable, resource, p.Action, err)
	}
	id := p.identity(resource, body)
	for _, v := range []string{ev.Key, id} {
		if !isToken(v) {
			// The id names the issue's thread and the message (a NATS
			// header): Sentry's ids are numbers and hex strings.
			return Event{}, fmt.Errorf("%w: %s.%s: id %q has blanks or control characters", ErrUnusable, resource, p.Action, v)
		}
	}
	if id != "" {
		m.Id = "sentry:" + resource + "." + p.Action + ":" + id
	}
	if m.SentAt == nil {
		m.SentAt = m.ReceivedAt
	}
	if ev.Project != "" {
		m.Attributes[AttrProject] = ev.Project
	}
	return ev, nil
}

// identity is Sentry's own identity of what a webhook reports, from which
// the message id derives instead of from Request-ID: a signed body replayed
// under a fresh Request-ID is then the same message (dropped by JetStream's
// duplicate window, or by triage's inbox later). An occurrence is its
// event id; an issue is created once; a comment is created and deleted
// once. Changes that can happen more than once (an issue resolved,
// reopened and resolved again; a comment edited; a metric alert's state)
// carry no time of their own in the payload, so the body itself, which
// differs from one change to the next (counts, last seen, status details,
// the text), is their identity. "" when the payload lacks the id: the
// Request-ID is used then.
func (p *payload) identity(resource string, body []byte) string {
	var id string
	once := false
	switch resource {
	case "error":
		if p.Data.Error != nil {
			id, once = p.Data.Error.EventID, true
		}
	case "event_alert":
		if p.Data.Event != nil {
			id, once = p.Data.Event.EventID, true
		}
	case "issue":
		if p.Data.Issue != nil {
			id, once = string(p.Data.Issue.ID), p.Action == "created"
		}
	case "comment":
		id, once = string(p.Data.CommentID), p.Action != "updated"
	case "metric_alert":
		if p.Data.MetricAlert != nil {
			id = string(p.Data.MetricAlert.ID)
		}
	}
	if id == "" || once {
		return id
	}
	sum := sha256.Sum256(body)
	return id + ":" + hex.EncodeToString(sum[:12])
}

// isToken reports whether s has no blank or control character.
func isToken(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// ThreadKey is the thread key of a Sentry issue.
func ThreadKey(issueID string) string { return "sentry:" + issueID }

// sentryAuthor stands for Sentry itself when an occurrence names no
// affected user. Occurrences are customer-facing problems: they open
// conversations, so the role is customer either way.
func sentryAuthor(project string) *supportv1.Author {
	id := "sentry"
	if project != "" {
		id += ":" + project
	}
	return &supportv1.Author{Id: id, Name: "Sentry", Handle: "sentry", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER}
}

// actorAuthor is who changed an issue or commented: a Sentry user is
// staff (only organization members act in Sentry); Sentry itself is a bot.
func (p *payload) actorAuthor() *supportv1.Author {
	a := p.Actor
	if a == nil || a.Type != "user" {
		return &supportv1.Author{Id: "sentry", Name: "Sentry", Handle: "sentry", Role: supportv1.AuthorRole_AUTHOR_ROLE_BOT}
	}
	id := string(a.ID)
	if id == "" {
		id = a.Name
	}
	return &supportv1.Author{Id: "sentry-user:" + id, Name: a.Name, Role: supportv1.AuthorRole_AUTHOR_ROLE_STAFF}
}

func (p *payload) parseIssue(ev *Event) error {
	is := p.Data.Issue
	if is == nil || is.ID == "" {
		return errors.New("no issue id")
	}
	m := ev.Message
	ev.Key = string(is.ID)
	m.ThreadKey = ThreadKey(ev.Key)
	m.SourceId = "issue:" + string(is.ID)
	m.Subject = is.Title
	m.Text = issueText(is.Title, is.Culprit, is.Metadata.Value)
	m.Permalink = is.WebURL
	if is.Permalink != nil && *is.Permalink != "" {
		m.Permalink = *is.Permalink
	}
	if is.Project != nil {
		ev.Project = is.Project.Slug
	}
	setIf(m, AttrIssueID, string(is.ID))
	setIf(m, AttrShortID, is.ShortID)
	setIf(m, AttrLevel, is.Level)
	setIf(m, AttrCulprit, is.Culprit)
	setIf(m, "status", is.Status)
	setIf(m, "substatus", is.Substatus)
	setIf(m, "sentry_count", string(is.Count))
	setIf(m, "user_count", string(is.UserCount))
	switch p.Action {
	case "created":
		ev.Occurrence = true
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
		m.Author = sentryAuthor(ev.Project)
		m.SentAt = ts(is.FirstSeen)
		if is.FirstSeen != nil {
			m.Attributes[AttrFirstSeen] = is.FirstSeen.UTC().Format(time.RFC3339Nano)
		}
		if is.LastSeen != nil {
			m.Attributes[AttrLastSeen] = is.LastSeen.UTC().Format(time.RFC3339Nano)
		}
		return nil
	case "resolved":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED
	case "unresolved":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_THREAD_REOPENED
		m.Attributes[AttrMuted] = "false"
	case "archived", "ignored":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_UPDATED
		m.Attributes[AttrMuted] = "true"
	case "assigned":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_UPDATED
		if a := is.AssignedTo; a != nil {
			setIf(m, "assigned_to", firstNonEmpty(a.Email, a.Name, string(a.ID)))
			setIf(m, "assigned_to_type", a.Type)
		}
	}
	m.Author = p.actorAuthor()
	return nil
}

func (p *payload) parseOccurrence(ev *Event, e *event) error {
	if e == nil || e.IssueID == "" {
		return errors.New("no event or issue_id")
	}
	m := ev.Message
	ev.Occurrence = true
	ev.Key = string(e.IssueID)
	ev.Project = projectFromURL(e.URL)
	ev.Tags = tagMap(e.Tags)
	if ev.Project == "" {
		ev.Project = ev.Tags["project"]
	}
	m.ThreadKey = ThreadKey(ev.Key)
	m.SourceId = "event:" + e.EventID
	m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
	m.Subject = e.Title
	m.Text = issueText(e.Title, e.Culprit, e.Message)
	m.Permalink = issuePermalink(e.WebURL, ev.Key)
	m.SentAt = ts(e.Datetime)
	level := e.Level
	if level == "" {
		level = ev.Tags["level"]
	}
	setIf(m, AttrIssueID, ev.Key)
	setIf(m, AttrLevel, level)
	setIf(m, AttrCulprit, e.Culprit)
	setIf(m, "event_id", e.EventID)
	setIf(m, "event_url", e.WebURL)
	if e.Release != nil {
		setIf(m, "release", *e.Release)
	}
	setIf(m, "environment", ev.Tags["environment"])
	if e.Datetime != nil {
		at := e.Datetime.UTC().Format(time.RFC3339Nano)
		m.Attributes[AttrFirstSeen], m.Attributes[AttrLastSeen] = at, at
	}
	m.Author = sentryAuthor(ev.Project)
	if u := e.User; u != nil && (u.ID != "" || u.Email != "" || u.Username != "") {
		m.Author = &supportv1.Author{
			Id:     firstNonEmpty(string(u.ID), u.Email, u.Username),
			Email:  u.Email,
			Handle: u.Username,
			Name:   firstNonEmpty(u.Name, u.Username, u.Email),
			Role:   supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER,
		}
	}
	return nil
}

func (p *payload) parseMetricAlert(ev *Event) error {
	a := p.Data.MetricAlert
	if a == nil || a.ID == "" {
		return errors.New("no metric_alert id")
	}
	m := ev.Message
	ev.Key = "incident-" + string(a.ID)
	m.ThreadKey = "sentry:incident:" + string(a.ID)
	m.SourceId = "metric_alert:" + string(a.ID) + ":" + p.Action
	m.Subject = firstNonEmpty(p.Data.DescriptionTitle, a.AlertRule.Name, a.Title)
	m.Text = p.Data.DescriptionText
	m.Permalink = p.Data.WebURL
	m.Author = sentryAuthor("")
	projects := a.AlertRule.Projects
	if len(projects) == 0 {
		projects = a.Projects
	}
	if len(projects) > 0 {
		ev.Project = projects[0]
		m.Attributes["projects"] = strings.Join(projects, ",")
	}
	setIf(m, "alert_rule", a.AlertRule.Name)
	setIf(m, "alert_rule_id", string(a.AlertRule.ID))
	setIf(m, "incident_id", string(a.ID))
	switch p.Action {
	case "resolved":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED
	default:
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
		m.Attributes[AttrLevel] = map[string]string{"critical": "fatal", "warning": "warning"}[p.Action]
		m.SentAt = ts(a.DateStarted)
	}
	return nil
}

func (p *payload) parseComment(ev *Event) error {
	d := p.Data
	if d.IssueID == "" || d.CommentID == "" {
		return errors.New("no issue_id or comment_id")
	}
	m := ev.Message
	ev.Key = string(d.IssueID)
	ev.Project = d.ProjectSlug
	m.ThreadKey = ThreadKey(ev.Key)
	m.SourceId = "comment:" + string(d.CommentID)
	if d.Comment != nil {
		m.Text = *d.Comment
	}
	m.SentAt = ts(d.Timestamp)
	m.Author = p.actorAuthor()
	setIf(m, AttrIssueID, ev.Key)
	switch p.Action {
	case "created":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
	case "updated":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_EDITED
	case "deleted":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_DELETED
	}
	return nil
}

func issueText(title, culprit, detail string) string {
	var b strings.Builder
	b.WriteString(title)
	if culprit != "" {
		b.WriteString("\nin ")
		b.WriteString(culprit)
	}
	if detail != "" && !strings.Contains(title, detail) {
		b.WriteString("\n")
		b.WriteString(detail)
	}
	return b.String()
}

// projectFromURL takes the project slug from an event's API URL:
// https://sentry.io/api/0/projects/{org}/{project}/events/{id}/.
func projectFromURL(u string) string {
	_, rest, ok := strings.Cut(u, "/projects/")
	if !ok {
		return ""
	}
	parts := strings.Split(rest, "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// issuePermalink turns an event's web URL
// (…/organizations/{org}/issues/{id}/events/{event}/) into the issue's.
func issuePermalink(webURL, issueID string) string {
	if i := strings.Index(webURL, "/issues/"+issueID+"/"); i >= 0 {
		return webURL[:i+len("/issues/"+issueID+"/")]
	}
	return webURL
}

func tagMap(tags [][]string) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string]string, len(tags))
	for _, kv := range tags {
		if len(kv) == 2 {
			out[kv[0]] = kv[1]
		}
	}
	return out
}

func setIf(m *supportv1.InboundMessage, k, v string) {
	if v != "" {
		m.Attributes[k] = v
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil || t.IsZero() {
		return nil
	}
	return timestamppb.New(*t)
}

// LevelRank orders Sentry levels, lowest first; unknown levels rank 0.
func LevelRank(level string) int {
	switch level {
	case "debug":
		return 1
	case "info":
		return 2
	case "warning":
		return 3
	case "error":
		return 4
	case "fatal":
		return 5
	}
	return 0
}
