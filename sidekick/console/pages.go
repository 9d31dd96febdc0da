package console

import (
	"context"
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
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// QueuePageSize is how many conversations one queue page shows.
const QueuePageSize = 50

// Query-string values of the queue filters.
var (
	statusFilters = map[string][]supportv1.ConversationStatus{
		"open":              {supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN},
		"awaiting_customer": {supportv1.ConversationStatus_CONVERSATION_STATUS_AWAITING_CUSTOMER},
		"closed":            {supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED},
		"all":               nil,
	}
	tierFilters = map[string]supportv1.Tier{
		"":           supportv1.Tier_TIER_UNSPECIFIED,
		"priority":   supportv1.Tier_TIER_PRIORITY,
		"subscriber": supportv1.Tier_TIER_SUBSCRIBER,
		"community":  supportv1.Tier_TIER_COMMUNITY,
	}
	channelFilters = map[string]supportv1.Channel{
		"":       supportv1.Channel_CHANNEL_UNSPECIFIED,
		"slack":  supportv1.Channel_CHANNEL_SLACK,
		"email":  supportv1.Channel_CHANNEL_EMAIL,
		"github": supportv1.Channel_CHANNEL_GITHUB,
		"sentry": supportv1.Channel_CHANNEL_SENTRY,
	}
)

// Limits on what the queue's query string may carry.
const (
	maxQueryLen  = 256
	maxFilterLen = 128
)

// queueFilter is the queue's query string: q (words to search for),
// status (open by default, all when searching; awaiting_customer,
// closed), tier, channel, assignee (a person id), unassigned, breached,
// category, tag, from and to (opened on those days, YYYY-MM-DD in the
// console's zone, both included), page (the page token of the next page).
type queueFilter struct {
	Q, Status, Tier, Channel, Assignee, Category, Tag, From, To, Page string
	Unassigned, Breached                                              bool
}

// query renders the filter back into a query string, without the page.
func (f queueFilter) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"q": f.Q, "status": f.Status, "tier": f.Tier, "channel": f.Channel, "assignee": f.Assignee,
		"category": f.Category, "tag": f.Tag, "from": f.From, "to": f.To} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Unassigned {
		q.Set("unassigned", "1")
	}
	if f.Breached {
		q.Set("breached", "1")
	}
	return q
}

// flag reads a checkbox or a view link's flag: 1, on, true or yes.
func flag(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "on", "true", "yes":
		return true
	}
	return false
}

// parseQueueFilter validates the query string into a request; days are
// read in loc.
func parseQueueFilter(q url.Values, loc *time.Location) (queueFilter, *triagev1.ListConversationsRequest, string) {
	f := queueFilter{
		Q:          strings.TrimSpace(q.Get("q")),
		Status:     strings.ToLower(strings.TrimSpace(q.Get("status"))),
		Tier:       strings.ToLower(strings.TrimSpace(q.Get("tier"))),
		Channel:    strings.ToLower(strings.TrimSpace(q.Get("channel"))),
		Assignee:   strings.TrimSpace(q.Get("assignee")),
		Category:   strings.TrimSpace(q.Get("category")),
		Tag:        strings.TrimSpace(q.Get("tag")),
		From:       strings.TrimSpace(q.Get("from")),
		To:         strings.TrimSpace(q.Get("to")),
		Unassigned: flag(q.Get("unassigned")),
		Breached:   flag(q.Get("breached")),
		Page:       q.Get("page"),
	}
	if f.Status == "" {
		// An earlier answer is usually in a closed conversation.
		f.Status = "open"
		if f.Q != "" {
			f.Status = "all"
		}
	}
	req := &triagev1.ListConversationsRequest{
		Assignee: f.Assignee, Unassigned: f.Unassigned, BreachedOnly: f.Breached, Category: f.Category, Tag: f.Tag,
		PageSize: QueuePageSize, PageToken: f.Page,
	}
	statuses, ok := statusFilters[f.Status]
	if !ok {
		return f, nil, "Unknown status " + f.Status + ": use open, awaiting_customer, closed or all."
	}
	req.Statuses = statuses
	if req.Tier, ok = tierFilters[f.Tier]; !ok {
		return f, nil, "Unknown tier " + f.Tier + ": use priority, subscriber or community."
	}
	if req.Channel, ok = channelFilters[f.Channel]; !ok {
		return f, nil, "Unknown channel " + f.Channel + ": use slack, email, github or sentry."
	}
	if len(f.Q) > maxQueryLen {
		return f, nil, fmt.Sprintf("The search is too long (at most %d characters).", maxQueryLen)
	}
	if len(f.Assignee) > maxFilterLen || len(f.Category) > maxFilterLen || len(f.Tag) > maxFilterLen {
		return f, nil, "A filter is too long."
	}
	for _, d := range []struct {
		name, value string
		set         **timestamppb.Timestamp
		days        int
	}{{"from", f.From, &req.OpenedFrom, 0}, {"to", f.To, &req.OpenedTo, 1}} {
		if d.value == "" {
			continue
		}
		day, err := time.ParseInLocation(time.DateOnly, d.value, loc)
		if err != nil {
			return f, nil, "The " + d.name + " date must be a day as YYYY-MM-DD."
		}
		*d.set = timestamppb.New(day.AddDate(0, 0, d.days))
	}
	return f, req, ""
}

// view is one of the queue's ready-made views: a name and the query
// string it stands for.
type view struct {
	Name, Query string
	// Href is the link: the query string is url.Values-encoded, so the
	// template may take it as a URL as it is.
	Href template.URL
	// Current marks the view the page shows.
	Current bool
}

// views are the queue's ready-made views for actor; each is a plain
// link, so any view, and any filtered page, can be bookmarked or shared.
func views(actor string, current queueFilter) []view {
	mine := url.Values{"status": {"all"}, "assignee": {actor}}
	vs := []view{
		{Name: "Open", Query: "status=open"},
		{Name: "Mine", Query: mine.Encode()},
		{Name: "Unassigned", Query: "status=open&unassigned=1"},
		{Name: "Breached", Query: "breached=1&status=open"},
		{Name: "Priority", Query: "status=open&tier=priority"},
		{Name: "Slack", Query: "channel=slack&status=open"},
		{Name: "Email", Query: "channel=email&status=open"},
		{Name: "GitHub", Query: "channel=github&status=open"},
		{Name: "Sentry", Query: "channel=sentry&status=open"},
		{Name: "Awaiting customer", Query: "status=awaiting_customer"},
		{Name: "Closed", Query: "status=closed"},
	}
	here := current.query().Encode()
	for i := range vs {
		vs[i].Current = vs[i].Query == here
		vs[i].Href = template.URL(BasePath + "/?" + vs[i].Query)
	}
	return vs
}

// directory is who can be assigned, from rotation; empty when rotation
// cannot be reached (the pages still work, showing person ids).
type directory struct {
	People []*rotationv1.Person
	Teams  []*rotationv1.Team
	names  map[string]string
}

// Name is a person's name for an id, or the id itself.
func (d directory) Name(id string) string {
	if n, ok := d.names[id]; ok && n != "" {
		return n
	}
	return id
}

// directory asks rotation for people and teams; failures are logged and
// leave the lists empty, because no page should be unusable while
// rotation is down.
func (s *Service) directory(ctx context.Context, teams bool) directory {
	d := directory{names: map[string]string{}}
	ctx, cancel := s.call(ctx)
	defer cancel()
	people, err := s.deps.Rotation.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
	if err != nil {
		s.deps.Logger.Warn("console: list people", "error", err)
	}
	d.People = people.GetPeople()
	for _, p := range d.People {
		d.names[p.GetId()] = p.GetName()
	}
	if teams {
		ts, err := s.deps.Rotation.ListTeams(ctx, &rotationv1.ListTeamsRequest{})
		if err != nil {
			s.deps.Logger.Warn("console: list teams", "error", err)
		}
		d.Teams = ts.GetTeams()
	}
	return d
}

// queueData is the queue page.
type queueData struct {
	Filter queueFilter
	Views  []view
	Rows   []queueRow
	// Searching: Rows are search hits, best first.
	Searching bool
	// NextURL is the link to the next page, empty on the last.
	NextURL string
	// FirstURL is the link back to the first page, empty on the first.
	FirstURL string
	Dir      directory
}

// queueRow is a conversation of the queue, with where a search found it.
type queueRow struct {
	C   *supportv1.Conversation
	Hit *triagev1.SearchHit
}

// Found says where a search hit matched best, in words.
func (r queueRow) Found() string {
	switch r.Hit.GetSource() {
	case triagev1.SearchSource_SEARCH_SOURCE_MESSAGE:
		return "in a message"
	case triagev1.SearchSource_SEARCH_SOURCE_NOTE:
		return "in a note"
	case triagev1.SearchSource_SEARCH_SOURCE_CONVERSATION:
		return "in the subject or author"
	case triagev1.SearchSource_SEARCH_SOURCE_CUSTOMER:
		return "in the customer"
	}
	return ""
}

// queue is GET /console/: conversations ordered by tier, then deadline,
// or, with words to search for, the conversations they find, best first.
func (s *Service) queue(w http.ResponseWriter, r *http.Request, v *visitor) {
	f, req, problem := parseQueueFilter(r.URL.Query(), s.loc)
	d := queueData{Filter: f, Views: views(v.Actor, f), Searching: f.Q != ""}
	if problem != "" {
		s.renderPage(w, r, http.StatusBadRequest, "queue", v, d, "", problem)
		return
	}
	ctx, cancel := s.call(r.Context())
	defer cancel()
	var next string
	if d.Searching {
		resp, err := s.deps.Conversations.SearchConversations(ctx, &triagev1.SearchConversationsRequest{Query: f.Q, Filter: req})
		if status.Code(err) == codes.InvalidArgument {
			// A query of no words, say: the page, with why, and the box
			// to try again.
			s.renderPage(w, r, http.StatusBadRequest, "queue", v, d, "", "Search: "+status.Convert(err).Message()+".")
			return
		}
		if err != nil {
			s.rpcError(w, r, v, "Searching conversations", err)
			return
		}
		for _, h := range resp.GetHits() {
			d.Rows = append(d.Rows, queueRow{C: h.GetConversation(), Hit: h})
		}
		next = resp.GetNextPageToken()
	} else {
		resp, err := s.deps.Conversations.ListConversations(ctx, req)
		if err != nil {
			s.rpcError(w, r, v, "Listing conversations", err)
			return
		}
		for _, c := range resp.GetConversations() {
			d.Rows = append(d.Rows, queueRow{C: c})
		}
		next = resp.GetNextPageToken()
	}
	d.Dir = s.directory(r.Context(), false)
	if next != "" {
		q := f.query()
		q.Set("page", next)
		d.NextURL = BasePath + "/?" + q.Encode()
	}
	if f.Page != "" {
		d.FirstURL = BasePath + "/"
		if q := f.query().Encode(); q != "" {
			d.FirstURL += "?" + q
		}
	}
	s.render(w, r, http.StatusOK, "queue", v, d)
}

// doneMessages confirm an action after its redirect (?done=<action>).
var doneMessages = map[string]string{
	"assign":   "Assignment saved.",
	"tag":      "Tags saved.",
	"note":     "Note added.",
	"reply":    "Reply saved; it is being sent to the customer.",
	"retry":    "Sending the reply again.",
	"close":    "Conversation closed.",
	"reopen":   "Conversation reopened.",
	"escalate": "Escalated.",
}

// conversationData is the conversation page.
type conversationData struct {
	C        *supportv1.Conversation
	Messages []*messageView
	Notes    []*triagev1.Note
	Audit    []*triagev1.AuditEntry
	Dir      directory
	Closed   bool
	// CanReply is false for a channel with no way back (Sentry).
	CanReply bool
	// Details are what the channel reported (Sentry, GitHub).
	Details []detail
	// Related are earlier conversations like this one, best first.
	Related []*triagev1.SearchHit
}

// messageView is a message with what the page needs to style it.
type messageView struct {
	*supportv1.InboundMessage
	Staff bool
	// Delivery is set on a reply sent from Sidekick.
	Delivery *triagev1.OutboundDelivery
	// Edited and Deleted report a message changed or removed at the
	// source after it arrived (triage marks them with the attributes
	// "edited" and "deleted"); a deleted message's text is gone.
	Edited, Deleted bool
}

// DeliveryState is the reply's delivery state in a word: sending, sent
// or failed.
func (m *messageView) DeliveryState() string {
	switch m.Delivery.GetState() {
	case triagev1.DeliveryState_DELIVERY_STATE_SENT:
		return "sent"
	case triagev1.DeliveryState_DELIVERY_STATE_FAILED:
		return "failed"
	}
	return "sending"
}

// conversation is GET /console/conversations/{id}: messages, notes, the
// audit trail, tier with its reason, categories, deadline, permalink, and
// the action forms.
func (s *Service) conversation(w http.ResponseWriter, r *http.Request, v *visitor) {
	id := r.PathValue("id")
	ctx, cancel := s.call(r.Context())
	defer cancel()
	resp, err := s.deps.Conversations.GetConversation(ctx, &triagev1.GetConversationRequest{Id: id})
	if err != nil {
		s.rpcError(w, r, v, "Loading conversation "+id, err)
		return
	}
	d := conversationData{
		C: resp.GetConversation(), Notes: resp.GetNotes(), Audit: resp.GetAudit(),
		Dir:      s.directory(r.Context(), true),
		Closed:   resp.GetConversation().GetStatus() == supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED,
		CanReply: resp.GetConversation().GetChannel() != supportv1.Channel_CHANNEL_SENTRY,
	}
	deliveries := map[string]*triagev1.OutboundDelivery{}
	for _, dl := range resp.GetDeliveries() {
		deliveries[dl.GetMessageId()] = dl
	}
	for _, m := range resp.GetMessages() {
		d.Messages = append(d.Messages, &messageView{
			InboundMessage: m, Staff: m.GetAuthor().GetRole() == supportv1.AuthorRole_AUTHOR_ROLE_STAFF, Delivery: deliveries[m.GetId()],
			Edited:  m.GetAttributes()["edited"] == "true" || m.GetKind() == supportv1.MessageKind_MESSAGE_KIND_EDITED,
			Deleted: m.GetAttributes()["deleted"] == "true" || m.GetKind() == supportv1.MessageKind_MESSAGE_KIND_DELETED,
		})
	}
	if ch := d.C.GetChannel(); ch == supportv1.Channel_CHANNEL_SENTRY || ch == supportv1.Channel_CHANNEL_GITHUB {
		d.Details = details(resp.GetMessages())
	}
	d.Related = s.related(r, d.C)
	s.renderPage(w, r, http.StatusOK, "conversation", v, d, doneMessages[r.URL.Query().Get("done")], "")
}

// onCallRow is one line of the on-call page.
type onCallRow struct {
	Role string
	Team string
	Resp *rotationv1.WhoIsOnCallResponse
	Err  string
}

// oncallData is the on-call page.
type oncallData struct {
	At   *timestamppb.Timestamp
	Rows []onCallRow
	Dir  directory
}

// oncall is GET /console/oncall: the Support Hero and every team's
// secondary now, with when their shift ends.
func (s *Service) oncall(w http.ResponseWriter, r *http.Request, v *visitor) {
	at := timestamppb.New(s.deps.Clock.Now())
	ctx, cancel := s.call(r.Context())
	defer cancel()
	teams, err := s.deps.Rotation.ListTeams(ctx, &rotationv1.ListTeamsRequest{})
	if err != nil {
		s.rpcError(w, r, v, "Listing teams", err)
		return
	}
	d := oncallData{At: at}
	ask := func(role, team string, req *rotationv1.WhoIsOnCallRequest) {
		req.At = at
		row := onCallRow{Role: role, Team: team}
		resp, err := s.deps.Rotation.WhoIsOnCall(ctx, req)
		if err != nil {
			s.deps.Logger.Warn("console: who is on call", "role", role, "team", team, "error", err)
			row.Err = "could not ask rotation: " + statusMessage(err)
		}
		row.Resp = resp
		d.Rows = append(d.Rows, row)
	}
	ask("Support Hero", "", &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	for _, t := range teams.GetTeams() {
		name := t.GetName()
		if name == "" {
			name = t.GetId()
		}
		ask("Secondary", name, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: t.GetId()})
	}
	s.render(w, r, http.StatusOK, "oncall", v, d)
}
