package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}
}

func sameProto(t *testing.T, what string, want, got proto.Message) {
	t.Helper()
	if !proto.Equal(want, got) {
		t.Errorf("%s:\n got  %s\n want %s", what, prototext.Format(got), prototext.Format(want))
	}
}

func TestQueueFiltersAndOrder(t *testing.T) {
	tr := &fakeTriage{list: func(req *triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
		// triage orders by tier, then deadline; the page keeps that order.
		return &triagev1.ListConversationsResponse{Conversations: []*supportv1.Conversation{
			{Id: "c-1", Subject: "Priority first", Tier: supportv1.Tier_TIER_PRIORITY, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
				DeadlineLevel: supportv1.DeadlineLevel_DEADLINE_LEVEL_BREACHED, Assignee: "alice", Channel: supportv1.Channel_CHANNEL_GITHUB},
			{Id: "c-2", Subject: "Community second", Tier: supportv1.Tier_TIER_COMMUNITY, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
				NextDeadlineAt: timestamppb.New(t0.Add(12 * time.Minute)), Channel: supportv1.Channel_CHANNEL_EMAIL},
		}, NextPageToken: "tok2"}, nil
	}}
	rot := &fakeRotation{people: []*rotationv1.Person{{Id: "alice", Name: "Alice Hero", Team: "platform"}}}
	h := start(t, console.Config{Dev: true}, tr, rot)

	r := h.get("/console/")
	if r.code != http.StatusOK {
		t.Fatalf("GET /console/: %d\n%s", r.code, r.body)
	}
	want := &triagev1.ListConversationsRequest{Statuses: []supportv1.ConversationStatus{supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}, PageSize: console.QueuePageSize}
	sameProto(t, "default queue request", want, h.triage.Calls()[0])
	mustContain(t, r.body, `href="/console/conversations/c-1"`, "Priority first", "Alice Hero", "breached", "in 12m",
		`<option value="alice">Alice Hero (platform)</option>`, `href="/console/?page=tok2&amp;status=open" rel="next"`,
		// Mine: the signed-in person's conversations (in dev, "dev").
		`<a href="/console/?assignee=dev&amp;status=all" id="mine">Mine</a>`,
		// The default view is Open.
		`<a href="/console/?status=open" aria-current="page">Open</a>`)
	if strings.Index(r.body, "Priority first") > strings.Index(r.body, "Community second") {
		t.Error("the page changed triage's order")
	}

	r = h.get("/console/?status=all&tier=priority&channel=github&assignee=alice&page=tok2")
	if r.code != http.StatusOK {
		t.Fatalf("filtered queue: %d\n%s", r.code, r.body)
	}
	want = &triagev1.ListConversationsRequest{Tier: supportv1.Tier_TIER_PRIORITY, Channel: supportv1.Channel_CHANNEL_GITHUB, Assignee: "alice", PageSize: console.QueuePageSize, PageToken: "tok2"}
	sameProto(t, "filtered queue request", want, h.triage.Calls()[1])
	mustContain(t, r.body, `<option value="priority" selected>`, `<option value="github" selected>`, `<option value="all" selected>`, "First page")

	for _, q := range []string{"status=pending", "tier=gold", "channel=fax"} {
		if r := h.get("/console/?" + q); r.code != http.StatusBadRequest {
			t.Errorf("?%s: got %d, want 400", q, r.code)
		}
	}
	if n := len(h.triage.Calls()); n != 2 {
		t.Errorf("bad filters reached triage: %d calls", n)
	}
}

func TestConversationPage(t *testing.T) {
	tr := &fakeTriage{get: func(req *triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
		if req.GetId() != "c-42" {
			return nil, status.Error(codes.NotFound, "no conversation "+req.GetId())
		}
		return sampleConversation(), nil
	}}
	rot := &fakeRotation{
		people: []*rotationv1.Person{{Id: "alice", Name: "Alice Hero"}},
		teams:  []*rotationv1.Team{{Id: "platform", Name: "Platform"}},
	}
	h := start(t, console.Config{Dev: true}, tr, rot)

	r := h.get("/console/conversations/c-42")
	if r.code != http.StatusOK {
		t.Fatalf("%d\n%s", r.code, r.body)
	}
	mustContain(t, r.body,
		"Pods OOM after upgrade",                                                  // subject
		"Our pods are OOM-killed since 1.40.\nHelp!", "Dana Customer", "customer", // message, author, role
		"Looks like the new cache.", "handoff", // note with its handoff flag
		"triaged", "tier priority (plan enterprise)", // audit trail
		">Priority</span>", "plan enterprise", // tier and why
		"Deployments/Scaling, Performance", "k8s", // categories, tags
		`level-okay">okay</span>`, "Mon 2 Mar 2026 10:30 UTC", "(in 30m)", // deadline level and next threshold
		`href="https://example.slack.com/archives/C1/p100" id="permalink"`, "open in Slack",
		"Alice Hero", "Hedgebank", `<option value="platform" selected>Platform</option>`,
		`action="/console/conversations/c-42/note"`, `action="/console/conversations/c-42/close"`,
	)
	if strings.Contains(r.body, "/reopen") {
		t.Error("an open conversation offers reopen")
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	// The console's own script file only: no inline script, no eval, no
	// other origin.
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self';") ||
		strings.Contains(csp, "unsafe") || strings.Count(csp, "script-src") != 1 {
		t.Errorf("Content-Security-Policy %q allows more script than the console's own file", csp)
	}

	if r := h.get("/console/conversations/nope"); r.code != http.StatusNotFound || !strings.Contains(r.body, "no conversation nope") {
		t.Errorf("unknown conversation: %d\n%s", r.code, r.body)
	}

	// An alert shows its occurrences, first and last seen, who acknowledged
	// it and the conversations linked to it.
	tr.get = func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
		resp := sampleConversation()
		c := resp.Conversation
		c.Kind, c.Tier, c.TierReason = supportv1.ConversationKind_CONVERSATION_KIND_ALERT, supportv1.Tier_TIER_UNSPECIFIED, "alert"
		c.Alert = &supportv1.Alert{Occurrences: 180, Level: "error", Project: "api",
			FirstSeen: timestamppb.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), LastSeen: timestamppb.New(time.Date(2026, 3, 2, 9, 8, 0, 0, time.UTC)),
			AcknowledgedAt: timestamppb.New(time.Date(2026, 3, 2, 9, 6, 0, 0, time.UTC)), AcknowledgedBy: "alice"}
		c.LinkedConversationIds = []string{"c-7"}
		return resp, nil
	}
	r = h.get("/console/conversations/c-42")
	mustContain(t, r.body, `<span id="occurrences">180</span> occurrences · error · project api`,
		"first Mon 2 Mar 2026 09:00 UTC · last Mon 2 Mar 2026 09:08 UTC", "Mon 2 Mar 2026 09:06 UTC by alice",
		`<a href="/console/conversations/c-7">c-7</a>`)
}

// TestHostileTextIsInert: whatever a customer writes is shown as text. A
// <script> in a message, markup in a subject or name, and a javascript:
// permalink must not become live markup.
func TestHostileTextIsInert(t *testing.T) {
	conv := sampleConversation()
	conv.Conversation.Subject = `<img src=x onerror=alert(1)>`
	conv.Conversation.TierReason = `"><script>alert(2)</script>`
	conv.Conversation.Permalink = "javascript:alert(3)"
	conv.Conversation.Tags = []string{`</span><script>alert(4)</script>`}
	conv.Messages[0].Text = "hi <script>alert(document.cookie)</script> there"
	conv.Messages[0].Author.Name = `<b onmouseover=alert(5)>Mallory</b>`
	conv.Messages[0].Permalink = "javascript:alert(6)"
	conv.Notes[0].Text = `<iframe src="https://evil.example"></iframe>`
	tr := &fakeTriage{
		get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) { return conv, nil },
		list: func(*triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
			return &triagev1.ListConversationsResponse{Conversations: []*supportv1.Conversation{conv.Conversation}}, nil
		},
	}
	h := start(t, console.Config{Dev: true}, tr, nil)
	for _, path := range []string{"/console/conversations/c-42", "/console/"} {
		r := h.get(path)
		if r.code != http.StatusOK {
			t.Fatalf("%s: %d", path, r.code)
		}
		for _, live := range []string{"<script>", "<img", "<iframe", "<b onmouseover", "javascript:"} {
			if strings.Contains(r.body, live) {
				t.Errorf("%s: hostile %q reached the page as markup", path, live)
			}
		}
		if path == "/console/" {
			mustContain(t, r.body, "&lt;img src=x onerror=alert(1)&gt;")
			continue
		}
		mustContain(t, r.body,
			"hi &lt;script&gt;alert(document.cookie)&lt;/script&gt; there",
			"&lt;img src=x onerror=alert(1)&gt;",
			"&lt;b onmouseover=alert(5)&gt;Mallory&lt;/b&gt;",
			"&lt;iframe src=&#34;https://evil.example&#34;&gt;&lt;/iframe&gt;",
			`href="#ZgotmplZ" id="permalink"`,
		)
	}
}

// Messages edited or deleted at the source after they arrived are marked,
// as triage reports them (attributes "edited" and "deleted"); a deleted
// message says so instead of showing an empty text.
func TestEditedAndDeletedMessagesAreMarked(t *testing.T) {
	conv := sampleConversation()
	first := conv.Messages[0]
	edited := proto.Clone(first).(*supportv1.InboundMessage)
	edited.Id, edited.Text, edited.Attributes = "m2", "Fixed a typo", map[string]string{"edited": "true"}
	deleted := proto.Clone(first).(*supportv1.InboundMessage)
	deleted.Id, deleted.Text, deleted.Attributes = "m3", "", map[string]string{"deleted": "true", "edited": "true"}
	conv.Messages = append(conv.Messages, edited, deleted)
	tr := &fakeTriage{get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) { return conv, nil }}
	h := start(t, console.Config{Dev: true}, tr, nil)
	r := h.get("/console/conversations/c-42")
	if r.code != http.StatusOK {
		t.Fatalf("%d\n%s", r.code, r.body)
	}
	article := func(id string) string {
		i := strings.Index(r.body, `id="m-`+id+`"`)
		if i < 0 {
			t.Fatalf("no message %s:\n%s", id, r.body)
		}
		end := strings.Index(r.body[i:], "</article>")
		return r.body[i : i+end]
	}
	if a := article("m1"); strings.Contains(a, `class="kind mark"`) {
		t.Errorf("an untouched message is marked:\n%s", a)
	}
	mustContain(t, article("m2"), `<span class="kind mark">edited</span>`, "Fixed a typo")
	mustContain(t, article("m3"), `<span class="kind mark">deleted</span>`, "Deleted at the source.")
	if a := article("m3"); strings.Contains(a, ">edited<") {
		t.Errorf("a deleted message is marked edited too:\n%s", a)
	}
}

func TestOnCallPage(t *testing.T) {
	end := timestamppb.New(time.Date(2026, 3, 9, 9, 0, 0, 0, time.UTC))
	var asked []*rotationv1.WhoIsOnCallRequest
	rot := &fakeRotation{
		teams: []*rotationv1.Team{{Id: "core", Name: "Core Experience"}, {Id: "platform", Name: "Platform"}},
		onCall: func(req *rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error) {
			asked = append(asked, req)
			switch {
			case req.GetRole() == rotationv1.Role_ROLE_HERO:
				// On time off: the page and the ping go to a catcher.
				farah := &rotationv1.OnCall{Person: &rotationv1.Person{Id: "farah", Name: "Farah Catcher"}, Reason: rotationv1.Reason_REASON_CATCHER}
				return &rotationv1.WhoIsOnCallResponse{OnCall: &rotationv1.OnCall{
					Person: &rotationv1.Person{Id: "alice", Name: "Alice Hero"}, Reason: rotationv1.Reason_REASON_ROTATION,
					Shift: &rotationv1.Shift{End: end}, Explanation: "week 10 of the hero rotation",
					Availability: rotationv1.Availability_AVAILABILITY_TIME_OFF, AvailabilityDetail: "on time off (2026-03-02..2026-03-04)",
				}, Gap: true, GapReason: "alice is on duty in hero but on time off",
					High: &rotationv1.Route{Receiver: farah, Explanation: "farah (catcher) receives: alice (rotation) is on time off"},
					Low:  &rotationv1.Route{Receiver: farah},
				}, nil
			case req.GetTeam() == "core":
				return &rotationv1.WhoIsOnCallResponse{OnCall: &rotationv1.OnCall{
					Person: &rotationv1.Person{Id: "bob", Name: "Bob Second"}, Reason: rotationv1.Reason_REASON_SWAP,
					Shift: &rotationv1.Shift{End: end},
				}}, nil
			}
			return &rotationv1.WhoIsOnCallResponse{Gap: true, GapReason: "nobody in working hours"}, nil
		},
	}
	h := start(t, console.Config{Dev: true}, nil, rot)
	r := h.get("/console/oncall")
	if r.code != http.StatusOK {
		t.Fatalf("%d\n%s", r.code, r.body)
	}
	mustContain(t, r.body, "Support Hero", "Alice Hero", "rotation", "week 10 of the hero rotation",
		"Core Experience", "Bob Second", "swap", "Mon 9 Mar 2026 09:00 UTC", "(in 6d 23h)",
		"Platform", "Nobody on duty", "Gap: nobody in working hours",
		"on time off (2026-03-02..2026-03-04)", "Gap: alice is on duty in hero but on time off", "Farah Catcher", "farah (catcher)",
		"farah (catcher) receives: alice (rotation) is on time off")
	if len(asked) != 3 {
		t.Fatalf("asked rotation %d times, want 3 (hero + 2 teams)", len(asked))
	}
	for _, q := range asked {
		if !q.GetAt().AsTime().Equal(t0) {
			t.Errorf("asked at %v, want the console's clock %v", q.GetAt().AsTime(), t0)
		}
	}
}

// TestActions: each form calls the right RPC with the right fields, the
// signed-in name as actor, and redirects back to the conversation.
func TestActions(t *testing.T) {
	h := start(t, console.Config{Token: testToken}, &fakeTriage{get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
		return sampleConversation(), nil
	}}, nil)
	h.signIn("Alice Hero")
	csrf := h.csrf("/console/conversations/c-42")

	cases := []struct {
		action string
		form   url.Values
		want   proto.Message
	}{
		{"assign", url.Values{"assignee": {" bob "}}, &triagev1.AssignRequest{Id: "c-42", Assignee: "bob", Actor: "Alice Hero"}},
		{"assign", url.Values{"assignee": {""}}, &triagev1.AssignRequest{Id: "c-42", Actor: "Alice Hero"}},
		{"tag", url.Values{"add": {"k8s, helm ,"}, "remove": {"old"}, "categories": {"Deployments, Performance"}},
			&triagev1.TagRequest{Id: "c-42", Add: []string{"k8s", "helm"}, Remove: []string{"old"}, Categories: []string{"Deployments", "Performance"}, Actor: "Alice Hero"}},
		{"note", url.Values{"text": {"  Handing over: waiting on logs.  "}, "handoff": {"on"}},
			&triagev1.AddNoteRequest{Id: "c-42", Text: "Handing over: waiting on logs.", Handoff: true, Actor: "Alice Hero"}},
		{"note", url.Values{"text": {"just a note"}}, &triagev1.AddNoteRequest{Id: "c-42", Text: "just a note", Actor: "Alice Hero"}},
		{"close", url.Values{"reason": {"spam"}}, &triagev1.CloseRequest{Id: "c-42", Reason: supportv1.CloseReason_CLOSE_REASON_SPAM, Actor: "Alice Hero"}},
		{"close", url.Values{}, &triagev1.CloseRequest{Id: "c-42", Reason: supportv1.CloseReason_CLOSE_REASON_RESOLVED, Actor: "Alice Hero"}},
		{"reopen", url.Values{}, &triagev1.ReopenRequest{Id: "c-42", Actor: "Alice Hero"}},
		{"escalate", url.Values{"reason": {"deployments, out of my depth"}, "team": {"platform"}},
			&triagev1.EscalateRequest{Id: "c-42", Reason: "deployments, out of my depth", Team: "platform", Actor: "Alice Hero"}},
		{"reply", url.Values{"text": {"  Fixed in 1.41, **please upgrade**.\n"}},
			&triagev1.ReplyRequest{ConversationId: "c-42", Text: "Fixed in 1.41, **please upgrade**.", Actor: "Alice Hero"}},
		{"retry", url.Values{"outbound_id": {"o-7"}}, &triagev1.RetryOutboundRequest{OutboundId: "o-7", Actor: "Alice Hero"}},
	}
	for _, c := range cases {
		before := len(h.triage.Calls())
		c.form.Set("csrf", csrf)
		r := h.post("/console/conversations/c-42/"+c.action, c.form)
		if r.code != http.StatusSeeOther || r.header.Get("Location") != "/console/conversations/c-42?done="+c.action {
			t.Errorf("%s: %d %q\n%s", c.action, r.code, r.header.Get("Location"), r.body)
			continue
		}
		calls := h.triage.Calls()
		if len(calls) != before+1 {
			t.Errorf("%s: %d RPCs, want 1", c.action, len(calls)-before)
			continue
		}
		sameProto(t, c.action+" request", c.want, calls[before])
	}

	// The page after the redirect confirms.
	mustContain(t, h.get("/console/conversations/c-42?done=note").body, "Note added.")

	// Invalid forms never reach triage.
	before := len(h.triage.Calls())
	for action, form := range map[string]url.Values{
		"note":  {"text": {"   "}},
		"reply": {"text": {" \n "}},
		"retry": {"outbound_id": {""}},
		"tag":   {"add": {" , "}},
		"close": {"reason": {"bored"}},
	} {
		form.Set("csrf", csrf)
		if r := h.post("/console/conversations/c-42/"+action, form); r.code != http.StatusBadRequest {
			t.Errorf("invalid %s: %d, want 400", action, r.code)
		}
	}
	if r := h.post("/console/conversations/c-42/delete", url.Values{"csrf": {csrf}}); r.code != http.StatusNotFound {
		t.Errorf("unknown action: %d, want 404", r.code)
	}
	if n := len(h.triage.Calls()) - before; n != 0 {
		t.Errorf("invalid forms made %d RPCs", n)
	}
}

// TestActionErrors: triage's refusals come back as the matching HTTP
// status with triage's message; an unreachable triage is a 502.
func TestActionErrors(t *testing.T) {
	tr := &fakeTriage{}
	h := start(t, console.Config{Dev: true}, tr, nil)
	csrf := h.csrf("/console/conversations/c-42")
	for _, c := range []struct {
		err  error
		code int
		msg  string
	}{
		{status.Error(codes.FailedPrecondition, "conversation c-42 is closed"), http.StatusConflict, "conversation c-42 is closed"},
		{status.Error(codes.NotFound, "no conversation c-42"), http.StatusNotFound, "no conversation c-42"},
		{status.Error(codes.InvalidArgument, "unknown team"), http.StatusBadRequest, "unknown team"},
		{status.Error(codes.Unavailable, "connection refused"), http.StatusBadGateway, "unreachable"},
	} {
		tr.mutation = func(proto.Message) error { return c.err }
		r := h.post("/console/conversations/c-42/escalate", url.Values{"csrf": {csrf}, "reason": {"stuck"}})
		if r.code != c.code || !strings.Contains(r.body, c.msg) {
			t.Errorf("%v: got %d, want %d with %q\n%s", c.err, r.code, c.code, c.msg, r.body)
		}
	}
}

// TestRotationDownDegrades: without rotation the conversation page still
// works (person ids instead of names, no team list); the on-call page
// says rotation is unreachable.
func TestRotationDownDegrades(t *testing.T) {
	rot := &fakeRotation{down: status.Error(codes.Unavailable, "rotation down")}
	h := start(t, console.Config{Dev: true}, &fakeTriage{get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
		return sampleConversation(), nil
	}}, rot)
	r := h.get("/console/conversations/c-42")
	if r.code != http.StatusOK {
		t.Fatalf("conversation with rotation down: %d\n%s", r.code, r.body)
	}
	mustContain(t, r.body, `id="assignee">alice`)
	if r := h.get("/console/oncall"); r.code != http.StatusBadGateway || !strings.Contains(r.body, "unreachable") {
		t.Errorf("on-call with rotation down: %d\n%s", r.code, r.body)
	}
}

// TestReplyDeliveries: each reply sent from Sidekick shows where its
// delivery stands (sending, sent with a link, failed with the provider's
// reason and a button to send it again); a Sentry alert has no reply box.
func TestReplyDeliveries(t *testing.T) {
	page := sampleConversation()
	staff := &supportv1.Author{Id: "alice", Name: "Alice Hero", Role: supportv1.AuthorRole_AUTHOR_ROLE_STAFF}
	for i, text := range []string{"Looking into it.", "Try 1.41.", "Does it work now?"} {
		page.Messages = append(page.Messages, &supportv1.InboundMessage{Id: fmt.Sprintf("r%d", i), Channel: supportv1.Channel_CHANNEL_SLACK,
			Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED, Author: staff, Text: text, SentAt: timestamppb.New(t0)})
	}
	page.Deliveries = []*triagev1.OutboundDelivery{
		{OutboundId: "o-0", MessageId: "r0", State: triagev1.DeliveryState_DELIVERY_STATE_SENT, Permalink: "https://example.slack.com/archives/C1/p200"},
		{OutboundId: "o-1", MessageId: "r1", State: triagev1.DeliveryState_DELIVERY_STATE_FAILED, Reason: "not_in_channel", Permanent: true},
		{OutboundId: "o-2", MessageId: "r2", State: triagev1.DeliveryState_DELIVERY_STATE_SENDING},
	}
	alert := false
	h := start(t, console.Config{Token: testToken}, &fakeTriage{get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
		if alert {
			p := sampleConversation()
			p.Conversation.Channel = supportv1.Channel_CHANNEL_SENTRY
			return p, nil
		}
		return page, nil
	}}, nil)
	h.signIn("Alice Hero")
	body := h.get("/console/conversations/c-42").body
	mustContain(t, body,
		`id="reply-form"`,
		`id="delivery-o-0"`, "Sent to the customer", `href="https://example.slack.com/archives/C1/p200"`,
		`id="delivery-o-1"`, "Not delivered: not_in_channel", `name="outbound_id" value="o-1"`, "Send again",
		`id="delivery-o-2"`, "Sending to the customer",
		"Alice Hero",
	)
	if strings.Count(body, `name="outbound_id"`) != 1 {
		t.Errorf("want a send-again button on the failed reply only")
	}
	alert = true
	if body := h.get("/console/conversations/c-42").body; strings.Contains(body, `id="reply-form"`) {
		t.Errorf("a Sentry alert offers a reply box")
	}
}

// TestSentryViewShowsAlertCounts: the queue's Sentry view lists alerts
// with their occurrences and first and last seen, as every view of an
// alert does (issue 17).
func TestSentryViewShowsAlertCounts(t *testing.T) {
	tr := &fakeTriage{list: func(req *triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
		return &triagev1.ListConversationsResponse{Conversations: []*supportv1.Conversation{
			{Id: "a-7", Subject: "StripeTimeout", Kind: supportv1.ConversationKind_CONVERSATION_KIND_ALERT, Channel: supportv1.Channel_CHANNEL_SENTRY,
				Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN, Team: "platform",
				Alert: &supportv1.Alert{Occurrences: 180, FirstSeen: timestamppb.New(t0), LastSeen: timestamppb.New(t0.Add(8 * time.Minute))}},
		}}, nil
	}}
	h := start(t, console.Config{Dev: true}, tr, nil)
	r := h.get("/console/?channel=sentry&status=open")
	if r.code != http.StatusOK {
		t.Fatalf("Sentry view: %d\n%s", r.code, r.body)
	}
	mustContain(t, r.body, `href="/console/conversations/a-7"`, "180 occurrences · first ", " · last ")
}
