package notifier

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/consume"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/pagerduty"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// withAckTimeout is threeSteps with an acknowledgement timeout: an
// acknowledged conversation with no staff reply 30 minutes after the
// acknowledgement escalates again.
const withAckTimeout = threeSteps + "      ack_timeout: 30m\n"

// The acknowledgement timeout, on the fake clock and at the wire: alice
// acknowledges the ping and never replies; 30 minutes later she is pinged
// again, 10 minutes after that bob is paged, 5 after that carol mailed,
// and then nothing more: one timeout, one re-escalation. A conversation answered after its
// acknowledgement never escalates again.
func TestAckTimeoutEscalatesAgainOnce(t *testing.T) {
	st := newStack(t, withAckTimeout)
	s, _ := st.run(t)
	client := st.grpcClient(t, s)
	ctx := context.Background()

	st.publish(t, bus.ConversationSubject("opened"), "ev-t1", openedFor("ev-t1", "conv-t1", "platform", st.clock.Now()))
	st.publish(t, bus.ConversationSubject("opened"), "ev-t2", openedFor("ev-t2", "conv-t2", "platform", st.clock.Now()))
	notifiertest.Eventually(t, "the hero's two pings", func() bool { return len(st.posts("U0ALICE")) == 2 })
	st.advance(t, 3*time.Minute)
	for _, conv := range []string{"conv-t1", "conv-t2"} {
		if resp, err := client.Acknowledge(ctx, &notifyv1.AcknowledgeRequest{ConversationId: conv, Actor: "alice"}); err != nil || resp.GetAcknowledged() != 1 {
			t.Fatalf("acknowledge %s: %v, %v", conv, resp, err)
		}
	}
	acked := st.escalation(t, consume.OpenedKey("ev-t1"))
	if acked.Status != store.EscalationAcked || !acked.AckDueAt.Equal(st.clock.Now().Add(30*time.Minute)) {
		t.Fatalf("acknowledged escalation: %s, re-escalating at %s; want acked, at %s", acked.Status, acked.AckDueAt, st.clock.Now().Add(30*time.Minute))
	}
	// conv-t2 is answered 20 minutes after its acknowledgement.
	st.advance(t, 20*time.Minute)
	st.handled(t, bus.ConversationSubject("responded"), "ev-t2r", &supportv1.ConversationEvent{
		Id: "ev-t2r", Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_RESPONDED, Actor: "alice",
		OccurredAt: timestamppb.New(st.clock.Now()), Conversation: &supportv1.Conversation{Id: "conv-t2"},
	})

	st.advance(t, 10*time.Minute-time.Second)
	st.tick(t, s)
	if n := len(st.posts("")); n != 2 {
		t.Fatalf("%d Slack posts a second before the timeout, want the 2 first pings", n)
	}
	st.advance(t, time.Second)
	st.tick(t, s)
	notifiertest.Eventually(t, "alice pinged again", func() bool { return len(st.posts("U0ALICE")) == 3 })
	if text := st.posts("U0ALICE")[2].Form.Get("text"); !strings.Contains(text, "acknowledged, still no reply") {
		t.Errorf("the second ping says %q", text)
	}
	if n := len(st.pd.Events("")); n != 0 {
		t.Fatalf("%d PagerDuty events at the re-escalation's first step", n)
	}

	st.advance(t, 10*time.Minute)
	st.tick(t, s)
	notifiertest.Eventually(t, "bob paged", func() bool {
		return len(st.posts("U0BOB")) == 1 && len(st.pd.Events(pagerduty.ActionTrigger)) == 1
	})
	if text := st.posts("U0BOB")[0].Form.Get("text"); !strings.Contains(text, "acknowledged, still no reply") {
		t.Errorf("bob's page says %q", text)
	}

	st.advance(t, 5*time.Minute)
	st.tick(t, s)
	notifiertest.Eventually(t, "carol mailed", func() bool { return len(st.smtp.Mail("carol@example.com")) == 1 })

	// Once: nothing more, ever, and nothing at all about conv-t2.
	st.advance(t, 24*time.Hour)
	st.tick(t, s)
	if len(st.posts("")) != 4 || len(st.pd.Events("")) != 1 || len(st.smtp.Mail("")) != 1 {
		t.Errorf("after the re-escalation: %d posts, %d PagerDuty events and %d mails, want 4, 1 and 1",
			len(st.posts("")), len(st.pd.Events("")), len(st.smtp.Mail("")))
	}
	if esc := st.escalation(t, consume.OpenedKey("ev-t1")); !esc.AckDueAt.IsZero() {
		t.Errorf("the timeout is still armed: %s", esc.AckDueAt)
	}
	re := st.escalation(t, consume.OpenedKey("ev-t1")+"/ack-timeout/1")
	if re.Status != store.EscalationDone || re.NextStep != 3 || re.ConversationID != "conv-t1" {
		t.Errorf("re-escalation %s at step %d about %s, want done after 3 about conv-t1", re.Status, re.NextStep, re.ConversationID)
	}
	if esc := st.escalation(t, consume.OpenedKey("ev-t2")); esc.Status != store.EscalationStopped {
		t.Errorf("the answered conversation's escalation is %s, want stopped", esc.Status)
	}
}
