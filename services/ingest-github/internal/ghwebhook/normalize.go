package ghwebhook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// Errors Normalize returns. ErrMalformed means the body is not JSON (400);
// ErrUnusable means a supported event whose payload lacks what a message
// needs (dead letter).
var (
	ErrMalformed = errors.New("malformed payload")
	ErrUnusable  = errors.New("unusable payload")
)

// Reasons a delivery is acknowledged without a message.
const (
	IgnoredEvent      = "event"      // an event type Sidekick does not handle
	IgnoredAction     = "action"     // a handled event with another action
	IgnoredRepository = "repository" // a repository not on the allow-list
)

// Delivery is one webhook delivery as GitHub sent it.
type Delivery struct {
	Event string // X-GitHub-Event
	ID    string // X-GitHub-Delivery
	Body  []byte
}

// Result is what Normalize made of a delivery: a message, or the reason it
// was ignored.
type Result struct {
	Message *supportv1.InboundMessage
	Ignored string
}

// actions lists the handled actions per event.
var actions = map[string]map[string]bool{
	"issues":             {"opened": true, "reopened": true, "closed": true, "edited": true, "labeled": true, "transferred": true},
	"issue_comment":      {"created": true, "edited": true, "deleted": true},
	"discussion":         {"created": true},
	"discussion_comment": {"created": true},
}

// Handled reports whether Sidekick handles event at all.
func Handled(event string) bool { return actions[event] != nil }

type user struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
}

type label struct {
	Name string `json:"name"`
}

type repository struct {
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
}

type issue struct {
	ID                int64           `json:"id"`
	Number            int             `json:"number"`
	Title             string          `json:"title"`
	Body              string          `json:"body"`
	HTMLURL           string          `json:"html_url"`
	State             string          `json:"state"`
	StateReason       string          `json:"state_reason"`
	AuthorAssociation string          `json:"author_association"`
	User              *user           `json:"user"`
	Labels            []label         `json:"labels"`
	CreatedAt         *time.Time      `json:"created_at"`
	UpdatedAt         *time.Time      `json:"updated_at"`
	ClosedAt          *time.Time      `json:"closed_at"`
	PullRequest       json.RawMessage `json:"pull_request"`
}

type comment struct {
	ID                int64      `json:"id"`
	Body              string     `json:"body"`
	HTMLURL           string     `json:"html_url"`
	AuthorAssociation string     `json:"author_association"`
	User              *user      `json:"user"`
	ParentID          *int64     `json:"parent_id"`
	CreatedAt         *time.Time `json:"created_at"`
	UpdatedAt         *time.Time `json:"updated_at"`
}

type discussion struct {
	ID                int64      `json:"id"`
	Number            int        `json:"number"`
	Title             string     `json:"title"`
	Body              string     `json:"body"`
	HTMLURL           string     `json:"html_url"`
	AuthorAssociation string     `json:"author_association"`
	User              *user      `json:"user"`
	Labels            []label    `json:"labels"`
	CreatedAt         *time.Time `json:"created_at"`
	Category          *struct {
		Name string `json:"name"`
	} `json:"category"`
}

type changes struct {
	NewIssue      *issue      `json:"new_issue"`
	NewRepository *repository `json:"new_repository"`
	OldIssue      *issue      `json:"old_issue"`
	OldRepository *repository `json:"old_repository"`
	Title         *struct {
		From string `json:"from"`
	} `json:"title"`
}

type payload struct {
	Action     string      `json:"action"`
	Issue      *issue      `json:"issue"`
	Comment    *comment    `json:"comment"`
	Discussion *discussion `json:"discussion"`
	Repository *repository `json:"repository"`
	Sender     *user       `json:"sender"`
	Label      *label      `json:"label"`
	Changes    *changes    `json:"changes"`
}

// Normalize turns a verified delivery into an InboundMessage, or says why
// it is ignored. now stamps received_at.
func Normalize(d Delivery, repos Repositories, now time.Time) (Result, error) {
	handled := actions[d.Event]
	if handled == nil {
		return Result{Ignored: IgnoredEvent}, nil
	}
	var p payload
	if err := json.Unmarshal(d.Body, &p); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return Result{}, fmt.Errorf("%w: %s: %v", ErrUnusable, d.Event, err)
		}
		return Result{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !handled[p.Action] {
		return Result{Ignored: IgnoredAction}, nil
	}
	if p.Repository == nil || validRepo(p.Repository.FullName) != nil {
		return Result{}, fmt.Errorf("%w: %s.%s without a repository full_name", ErrUnusable, d.Event, p.Action)
	}
	hint, ok := repos.Lookup(p.Repository.FullName)
	if !ok {
		return Result{Ignored: IgnoredRepository}, nil
	}
	m := &supportv1.InboundMessage{
		Id:         "github:" + d.ID,
		Channel:    supportv1.Channel_CHANNEL_GITHUB,
		ReceivedAt: timestamppb.New(now),
		Attributes: map[string]string{
			"github_event":  d.Event,
			"github_action": p.Action,
			"repository":    p.Repository.FullName,
		},
	}
	if hint != "" {
		m.Attributes["priority_hint"] = hint
	}
	var err error
	switch d.Event {
	case "issues":
		err = p.issueEvent(m)
	case "issue_comment":
		err = p.commentEvent(m)
	case "discussion":
		err = p.discussionEvent(m)
	case "discussion_comment":
		err = p.discussionCommentEvent(m)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%w: %s.%s: %v", ErrUnusable, d.Event, p.Action, err)
	}
	if d.Event == "issue_comment" || d.Event == "discussion_comment" {
		// A reply Sidekick posted comes back as a comment webhook: mark it
		// so triage matches it to its staff message, without the marker.
		if id, text := ReplyID(m.Text); id != "" {
			m.Attributes["outbound_id"] = id
			m.Text = text
		}
	}
	if id := p.identity(d.Event); id != "" {
		m.Id = "github:" + d.Event + "." + p.Action + ":" + id
	}
	if m.SentAt == nil {
		m.SentAt = m.ReceivedAt
	}
	return Result{Message: m}, nil
}

// identity is what GitHub itself says about the change a delivery reports:
// the object's id and, for a change that can happen more than once, when
// (and, for edits, what) it became. The message id derives from it rather
// than from X-GitHub-Delivery, so a signed body replayed under a fresh
// delivery id is the same message (dropped by JetStream's duplicate
// window, or by triage's inbox later), and so is GitHub's own redelivery
// of the same delivery. It is "" when the payload lacks the time; the
// delivery id is used then.
func (p *payload) identity(event string) string {
	var id int64
	var at *time.Time
	var extra string
	switch event {
	case "issues":
		is := p.Issue
		id, at = is.ID, is.UpdatedAt
		switch p.Action {
		case "opened":
			at = nil // an issue is opened once
		case "closed":
			at = is.ClosedAt
		case "edited":
			extra = digest(is.Title, is.Body)
		case "labeled":
			if p.Label != nil {
				extra = p.Label.Name
			}
		}
		if p.Action != "opened" && (at == nil || at.IsZero()) {
			return ""
		}
	case "issue_comment":
		c := p.Comment
		id = c.ID
		if p.Action == "edited" {
			if at = c.UpdatedAt; at == nil || at.IsZero() {
				return ""
			}
			extra = digest(c.Body)
		}
	case "discussion":
		id = p.Discussion.ID
	case "discussion_comment":
		id = p.Comment.ID
	}
	if id == 0 {
		return ""
	}
	out := strconv.FormatInt(id, 10)
	if at != nil && !at.IsZero() {
		out += ":" + at.UTC().Format(time.RFC3339Nano)
	}
	if extra != "" {
		out += ":" + extra
	}
	return out
}

// digest is a short hash of an edit's content, which tells apart two
// edits GitHub stamps with the same second.
func digest(parts ...string) string {
	h := sha256.New()
	for _, s := range parts {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// IssueThreadKey is the thread key of an issue or pull request.
func IssueThreadKey(repo string, number int) string {
	return "github:" + repo + "#" + strconv.Itoa(number)
}

// DiscussionThreadKey is the thread key of a discussion.
func DiscussionThreadKey(repo string, number int) string {
	return "github:" + repo + "/discussions#" + strconv.Itoa(number)
}

func (p *payload) issueEvent(m *supportv1.InboundMessage) error {
	is := p.Issue
	if is == nil || is.Number <= 0 {
		return errors.New("no issue number")
	}
	m.ThreadKey = IssueThreadKey(p.Repository.FullName, is.Number)
	m.SourceId = "issue:" + strconv.FormatInt(is.ID, 10)
	m.Subject = is.Title
	m.Permalink = is.HTMLURL
	setLabels(m, is.Labels)
	if len(is.PullRequest) > 0 && string(is.PullRequest) != "null" {
		m.Attributes["pull_request"] = "true"
	}
	author, err := p.actor()
	if err != nil {
		return err
	}
	switch p.Action {
	case "opened":
		if is.User == nil || is.User.Login == "" {
			return errors.New("issue without a user")
		}
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
		m.Author = newAuthor(is.User, role(is.AuthorAssociation, is.User))
		m.Text = is.Body
		m.SentAt = ts(is.CreatedAt)
		if c := p.Changes; c != nil && c.OldIssue != nil && c.OldRepository != nil && c.OldRepository.FullName != "" {
			m.Attributes["transferred_from"] = IssueThreadKey(c.OldRepository.FullName, c.OldIssue.Number)
		}
		setAssociation(m, is.AuthorAssociation)
		return nil
	case "edited":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_EDITED
		m.Text = is.Body
		m.SentAt = ts(is.UpdatedAt)
		if c := p.Changes; c != nil && c.Title != nil {
			m.Attributes["previous_title"] = c.Title.From
		}
	case "closed":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED
		m.SentAt = ts(is.ClosedAt)
		if is.StateReason != "" {
			m.Attributes["state_reason"] = is.StateReason
		}
	case "reopened":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_THREAD_REOPENED
		m.SentAt = ts(is.UpdatedAt)
	case "labeled":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_UPDATED
		m.SentAt = ts(is.UpdatedAt)
		if p.Label != nil {
			m.Attributes["label"] = p.Label.Name
		}
	case "transferred":
		// The issue now lives in another repository, where GitHub sends
		// issues.opened for it; this thread ends here.
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_THREAD_CLOSED
		m.SentAt = ts(is.UpdatedAt)
		m.Attributes["state_reason"] = "transferred"
		if c := p.Changes; c != nil && c.NewIssue != nil && c.NewRepository != nil && c.NewRepository.FullName != "" {
			m.Attributes["transferred_to"] = IssueThreadKey(c.NewRepository.FullName, c.NewIssue.Number)
			m.Attributes["transferred_to_url"] = c.NewIssue.HTMLURL
		}
	}
	m.Author = newAuthor(author, p.actorRole(author, is.User, is.AuthorAssociation))
	return nil
}

func (p *payload) commentEvent(m *supportv1.InboundMessage) error {
	is, c := p.Issue, p.Comment
	if is == nil || is.Number <= 0 {
		return errors.New("no issue number")
	}
	if c == nil || c.ID == 0 || c.User == nil || c.User.Login == "" {
		return errors.New("no comment id or user")
	}
	m.ThreadKey = IssueThreadKey(p.Repository.FullName, is.Number)
	m.SourceId = "comment:" + strconv.FormatInt(c.ID, 10)
	m.Subject = is.Title
	m.Text = c.Body
	m.Permalink = c.HTMLURL
	m.Author = newAuthor(c.User, role(c.AuthorAssociation, c.User))
	setLabels(m, is.Labels)
	setAssociation(m, c.AuthorAssociation)
	if len(is.PullRequest) > 0 && string(is.PullRequest) != "null" {
		m.Attributes["pull_request"] = "true"
	}
	switch p.Action {
	case "created":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
		m.SentAt = ts(c.CreatedAt)
	case "edited":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_EDITED
		m.SentAt = ts(c.UpdatedAt)
	case "deleted":
		m.Kind = supportv1.MessageKind_MESSAGE_KIND_DELETED
		m.SentAt = nil // when it was deleted is not in the payload: received_at
	}
	if p.Sender != nil && p.Sender.Login != "" && !strings.EqualFold(p.Sender.Login, c.User.Login) {
		m.Attributes["changed_by"] = p.Sender.Login
	}
	return nil
}

func (p *payload) discussionEvent(m *supportv1.InboundMessage) error {
	d := p.Discussion
	if d == nil || d.Number <= 0 || d.User == nil || d.User.Login == "" {
		return errors.New("no discussion number or user")
	}
	m.ThreadKey = DiscussionThreadKey(p.Repository.FullName, d.Number)
	m.SourceId = "discussion:" + strconv.FormatInt(d.ID, 10)
	m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
	m.Subject = d.Title
	m.Text = d.Body
	m.Permalink = d.HTMLURL
	m.SentAt = ts(d.CreatedAt)
	m.Author = newAuthor(d.User, role(d.AuthorAssociation, d.User))
	setLabels(m, d.Labels)
	setAssociation(m, d.AuthorAssociation)
	if d.Category != nil && d.Category.Name != "" {
		m.Attributes["category"] = d.Category.Name
	}
	return nil
}

func (p *payload) discussionCommentEvent(m *supportv1.InboundMessage) error {
	d, c := p.Discussion, p.Comment
	if d == nil || d.Number <= 0 {
		return errors.New("no discussion number")
	}
	if c == nil || c.ID == 0 || c.User == nil || c.User.Login == "" {
		return errors.New("no comment id or user")
	}
	m.ThreadKey = DiscussionThreadKey(p.Repository.FullName, d.Number)
	m.SourceId = "discussion_comment:" + strconv.FormatInt(c.ID, 10)
	m.Kind = supportv1.MessageKind_MESSAGE_KIND_POSTED
	m.Subject = d.Title
	m.Text = c.Body
	m.Permalink = c.HTMLURL
	m.SentAt = ts(c.CreatedAt)
	m.Author = newAuthor(c.User, role(c.AuthorAssociation, c.User))
	setLabels(m, d.Labels)
	setAssociation(m, c.AuthorAssociation)
	if d.Category != nil && d.Category.Name != "" {
		m.Attributes["category"] = d.Category.Name
	}
	if c.ParentID != nil && *c.ParentID != 0 {
		m.Attributes["parent_comment_id"] = strconv.FormatInt(*c.ParentID, 10)
	}
	return nil
}

// actor is whoever performed an issue action: the sender.
func (p *payload) actor() (*user, error) {
	if p.Sender != nil && p.Sender.Login != "" {
		return p.Sender, nil
	}
	if p.Action == "opened" {
		return nil, nil // the issue's own user is the author
	}
	return nil, errors.New("no sender")
}

// actorRole is the role of someone acting on an issue (closing, editing,
// labelling, transferring it). The issue's author keeps their own role;
// anyone else acting on someone's issue needs triage or write access to
// the repository, so is staff.
func (p *payload) actorRole(actor, author *user, association string) supportv1.AuthorRole {
	if isBot(actor) {
		return supportv1.AuthorRole_AUTHOR_ROLE_BOT
	}
	if author != nil && strings.EqualFold(actor.Login, author.Login) {
		return role(association, actor)
	}
	return supportv1.AuthorRole_AUTHOR_ROLE_STAFF
}

// role maps GitHub's author_association: OWNER, MEMBER and COLLABORATOR are
// staff; bots are bots; everyone else (CONTRIBUTOR, FIRST_TIME_CONTRIBUTOR,
// FIRST_TIMER, NONE, MANNEQUIN) is a customer.
func role(association string, u *user) supportv1.AuthorRole {
	if isBot(u) {
		return supportv1.AuthorRole_AUTHOR_ROLE_BOT
	}
	switch strings.ToUpper(association) {
	case "OWNER", "MEMBER", "COLLABORATOR":
		return supportv1.AuthorRole_AUTHOR_ROLE_STAFF
	}
	return supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER
}

func isBot(u *user) bool {
	return u != nil && (u.Type == "Bot" || strings.HasSuffix(u.Login, "[bot]"))
}

func newAuthor(u *user, r supportv1.AuthorRole) *supportv1.Author {
	return &supportv1.Author{Id: u.Login, Handle: u.Login, Name: u.Login, Role: r}
}

func setAssociation(m *supportv1.InboundMessage, a string) {
	if a != "" {
		m.Attributes["author_association"] = a
	}
}

func setLabels(m *supportv1.InboundMessage, labels []label) {
	if len(labels) == 0 {
		return
	}
	names := make([]string, 0, len(labels))
	for _, l := range labels {
		if l.Name != "" {
			names = append(names, strings.ReplaceAll(l.Name, ",", " "))
		}
	}
	sort.Strings(names)
	m.Attributes["labels"] = strings.Join(names, ",")
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil || t.IsZero() {
		return nil
	}
	return timestamppb.New(*t)
}

// validRepo checks an "owner/repo" full name.
func validRepo(fullName string) error {
	owner, repo, ok := strings.Cut(fullName, "/")
	if !ok || owner == "" || repo == "" || strings.ContainsAny(repo, "/ ") {
		return fmt.Errorf("bad repository %q", fullName)
	}
	return nil
}
