package e2e

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage"
	"github.com/sidekickhq/sidekick/sidekick/fakes"
)

// TestAlertAcknowledgedThroughNotifier: the secondary paged about a
// Sentry alert acknowledges the page through notifier's gRPC Acknowledge,
// the call `sidekick ack --conversation` makes, not Slack's button. Triage
// hears of it from notifier's support.notify.acked and records the alert
// acknowledged by that person at the time notifier recorded, and the
// report's time to acknowledge is that time less the alert's opening. The
// same event delivered again changes nothing.
func TestAlertAcknowledgedThroughNotifier(t *testing.T) {
	stack, console := startStack(t,
		"SIDEKICK_SENTRY_COALESCE_INTERVAL=100ms",
		"SIDEKICK_SENTRY_OWNERSHIP=api=platform",
	)
	a := dialStack(t, stack)
	js := jetStream(t, stack)
	sentry := fakes.Sentry{URL: "http://" + stack.HTTPAddr + "/sentry/webhook", Secret: stack.Env["SIDEKICK_SENTRY_CLIENT_SECRET"]}
	ev := fakes.SentryEvent{Org: "acme", Project: "api", IssueID: "4510000042", EventID: strings.Repeat("4", 32),
		Title: "StripeTimeout: Request to Stripe timed out after 30s", Time: time.Now().Add(-time.Minute).Truncate(time.Second)}
	if code, err := sentry.Send(rpcCtx(t), "error", "ack-1", fakes.SentryErrorCreated(ev)); err != nil || code != http.StatusOK {
		t.Fatalf("Sentry webhook: %d %v", code, err)
	}
	var alert *supportv1.Conversation
	waitFor(t, time.Minute, "the alert and its page", func() bool {
		alert = a.byThread(t, supportv1.Channel_CHANNEL_SENTRY, "sentry:"+ev.IssueID)
		return alert != nil && len(pingsAbout(console.String(), alert.GetId())) > 0
	})
	oc, err := a.rotation.WhoIsOnCall(rpcCtx(t), &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: "platform", At: timestamppb.Now()})
	if err != nil {
		t.Fatal(err)
	}
	secondary := oc.GetOnCall().GetPerson()
	if got := a.get(t, alert.GetId()).GetConversation().GetAlert(); got.GetAcknowledgedAt() != nil {
		t.Fatalf("alert acknowledged before anyone did: %v", got)
	}

	resp, err := a.notifier.Acknowledge(rpcCtx(t), &notifyv1.AcknowledgeRequest{ConversationId: alert.GetId(), Actor: secondary.GetId()})
	if err != nil || resp.GetAcknowledged() == 0 {
		t.Fatalf("Acknowledge: %v, %v", resp, err)
	}
	var acked supportv1.DeliveryEvent
	waitFor(t, time.Minute, "notifier's acked event", func() bool {
		return lastOn(t, js, bus.StreamNotify, bus.NotifySubject("acked"), &acked) && acked.GetConversationId() == alert.GetId()
	})
	var got *triagev1.GetConversationResponse
	waitFor(t, time.Minute, "triage to record the acknowledgement", func() bool {
		got = a.get(t, alert.GetId())
		return got.GetConversation().GetAlert().GetAcknowledgedAt() != nil
	})
	al := got.GetConversation().GetAlert()
	ackAt := acked.GetOccurredAt().AsTime()
	if al.GetAcknowledgedBy() != secondary.GetId() || !al.GetAcknowledgedAt().AsTime().Equal(ackAt) {
		t.Fatalf("acknowledged by %q at %s, want %s at %s (notifier's time)", al.GetAcknowledgedBy(), al.GetAcknowledgedAt().AsTime(), secondary.GetId(), ackAt)
	}
	opened := got.GetConversation().GetOpenedAt().AsTime()
	sum, err := a.report.Summary(rpcCtx(t), &triagev1.SummaryRequest{
		From: timestamppb.New(opened.Add(-time.Hour)), To: timestamppb.New(opened.Add(time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	if r, want := sum.GetAlerts(), ackAt.Sub(opened).Seconds(); r.GetAcknowledged() != 1 || math.Abs(r.GetAcknowledgeMeanSeconds()-want) > 1e-3 {
		t.Errorf("report: %d acknowledged, mean %.3fs to acknowledge, want 1 and %.3fs", r.GetAcknowledged(), r.GetAcknowledgeMeanSeconds(), want)
	}

	// The same event again, as a redelivery or a replay from the stream
	// would bring it (a new message id, or JetStream would drop it as a
	// duplicate): nothing changes.
	raw, err := mustStream(t, js, bus.StreamNotify).GetLastMsgForSubject(rpcCtx(t), bus.NotifySubject("acked"))
	if err != nil {
		t.Fatal(err)
	}
	replay := nats.NewMsg(raw.Subject)
	replay.Data, replay.Header = raw.Data, raw.Header
	replay.Header.Set(jetstream.MsgIDHeader, raw.Header.Get(jetstream.MsgIDHeader)+"/replay")
	pa, err := js.PublishMsg(rpcCtx(t), replay)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "triage to take the replayed event", func() bool {
		c, err := js.Consumer(rpcCtx(t), bus.StreamNotify, triage.DurableAcks)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(rpcCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.AckFloor.Stream >= pa.Sequence
	})
	again := a.get(t, alert.GetId())
	if !proto.Equal(again.GetConversation(), got.GetConversation()) || len(again.GetAudit()) != len(got.GetAudit()) {
		t.Errorf("the replayed event changed the alert:\n%v\nwas\n%v", again.GetConversation(), got.GetConversation())
	}
}

// mustStream looks a stream up.
func mustStream(t *testing.T, js jetstream.JetStream, name string) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(rpcCtx(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	return s
}
