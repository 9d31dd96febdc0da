package console_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
	"github.com/sidekickhq/sidekick/sidekick/internal/browsertest"
)

// inbox is a triage fake whose queue and conversation c-42 a test changes
// while the browser has them open.
type inbox struct {
	mu    sync.Mutex
	queue []*supportv1.Conversation
	conv  *triagev1.GetConversationResponse
}

func (in *inbox) fake() *fakeTriage {
	return &fakeTriage{
		list: func(*triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
			in.mu.Lock()
			defer in.mu.Unlock()
			out := &triagev1.ListConversationsResponse{}
			for _, c := range in.queue {
				out.Conversations = append(out.Conversations, proto.Clone(c).(*supportv1.Conversation))
			}
			return out, nil
		},
		get: func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
			in.mu.Lock()
			defer in.mu.Unlock()
			return proto.Clone(in.conv).(*triagev1.GetConversationResponse), nil
		},
	}
}

func (in *inbox) change(f func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	f()
}

// startBrowser starts headless Chromium for the test, or skips it.
func startBrowser(t *testing.T) *browsertest.Browser {
	t.Helper()
	return browsertest.Start(t, 90*time.Second)
}

// TestBrowserLiveUpdatesAndKeys: with the queue open, a new conversation
// appears without a reload (what is typed in the search box stays); j/k
// select, o opens; on the conversation, a new message appears without a
// reload, r goes to the reply box, ? shows the shortcuts, e closes.
func TestBrowserLiveUpdatesAndKeys(t *testing.T) {
	b := startBrowser(t)
	step, read := b.Step, b.Read
	first := &supportv1.Conversation{Id: "c-41", Subject: "Older question", Tier: supportv1.Tier_TIER_COMMUNITY, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}
	in := &inbox{queue: []*supportv1.Conversation{first}, conv: sampleConversation()}
	h, pub := startLive(t, console.Config{Token: testToken})
	h.triage.list, h.triage.get = in.fake().list, in.fake().get
	h.signIn("probe")
	subscribed(t, h.openStream("/console/live"), pub)

	type css = chromedp.CSS
	step("sign in",
		chromedp.Navigate(h.srv.URL+"/console/"),
		chromedp.WaitVisible(css("#signin")),
		chromedp.SendKeys(css("#signin input[name=name]"), "Alice Hero"),
		chromedp.SendKeys(css("#signin input[name=token]"), testToken),
		chromedp.Submit(css("#signin")),
		chromedp.WaitVisible(css(`#queue tr[data-id="c-41"]`)),
		chromedp.WaitReady(css(`body[data-live-state="open"]`)),
		chromedp.SendKeys(css("#q"), "half-typed"),
	)
	in.change(func() {
		in.queue = append([]*supportv1.Conversation{{Id: "c-42", Subject: "Pods OOM after upgrade", Tier: supportv1.Tier_TIER_PRIORITY,
			Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN}}, in.queue...)
	})
	publishEvent(t, pub, "opened", "c-42")
	step("see the new conversation arrive", chromedp.WaitVisible(css(`#queue tr[data-id="c-42"]`)))
	typed := read("search box", chromedp.Value(css("#q")))
	updates := read("updates", chromedp.Evaluate[string](`document.body.getAttribute("data-updates") || ""`))

	step("j, j, k selects", chromedp.Click(css("h1")), chromedp.KeyEvent("j"), chromedp.KeyEvent("j"), chromedp.KeyEvent("k"))
	selected := read("selected row", chromedp.Evaluate[string](`(document.querySelector("#queue tr.selected") || {getAttribute: () => ""}).getAttribute("data-id")`))
	step("o opens it", chromedp.KeyEvent("o"), chromedp.WaitVisible(css("#reply-form")), chromedp.WaitReady(css(`body[data-live-state="open"]`)))
	opened := read("location", chromedp.Location())

	in.change(func() {
		in.conv.Messages = append(in.conv.Messages, &supportv1.InboundMessage{Id: "m-new", Text: "Still failing after the restart",
			Author: &supportv1.Author{Name: "Dana Customer", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER}, SentAt: timestamppb.New(t0)})
	})
	publishEvent(t, pub, "message", "c-41") // another conversation's: not this page's
	publishEvent(t, pub, "message", "c-42")
	step("see the new message arrive", chromedp.WaitVisible(css(`[id="m-m-new"]`)))
	messages := read("messages", chromedp.Text(css("#messages")))

	step("r goes to the reply box", chromedp.KeyEvent("r"))
	focused := read("focus", chromedp.Evaluate[string](`document.activeElement.closest("form") ? document.activeElement.closest("form").id : ""`))
	step("Escape leaves it, ? shows the shortcuts", chromedp.KeyEvent("\x1b"), chromedp.KeyEvent("?"), chromedp.WaitVisible(css("#help")))
	step("e closes", chromedp.KeyEvent("\x1b"), chromedp.KeyEvent("e"), chromedp.WaitVisible(css("p.flash")))
	flash := read("flash", chromedp.Text(css("p.flash")))

	if typed != "half-typed" {
		t.Errorf("the live update changed the search box being typed in: %q", typed)
	}
	if updates != "1" {
		t.Errorf("data-updates %q after one change, want 1 (a swap, not a reload)", updates)
	}
	if selected != "c-42" {
		t.Errorf("j, j, k selected %q, want the first row c-42", selected)
	}
	if !strings.HasSuffix(opened, "/console/conversations/c-42") {
		t.Errorf("o opened %s", opened)
	}
	if !strings.Contains(messages, "Still failing after the restart") {
		t.Errorf("messages after the live update:\n%s", messages)
	}
	if focused != "reply-form" {
		t.Errorf("r focused an element of %q, want the reply form", focused)
	}
	closes := callsOf[*triagev1.CloseRequest](h.triage)
	if flash != "Conversation closed." || len(closes) != 1 || closes[0].GetActor() != "Alice Hero" || closes[0].GetId() != "c-42" {
		t.Errorf("e: flash %q, Close calls %v", flash, closes)
	}
}
