package conv

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

func sentryMessage(kind supportv1.MessageKind, occurrences, first, last, level string) *supportv1.InboundMessage {
	return &supportv1.InboundMessage{
		Id: "m-" + occurrences + first, Channel: supportv1.Channel_CHANNEL_SENTRY, ThreadKey: "sentry:42", Kind: kind,
		Author:  &supportv1.Author{Id: "sentry:api", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER},
		Subject: "StripeTimeout", SentAt: timestamppb.New(now),
		Attributes: map[string]string{AttrOccurrences: occurrences, AttrFirstSeen: first, AttrLastSeen: last, AttrLevel: level, AttrProject: "api"},
	}
}

// TestAlertCountsOccurrences: a Sentry issue opens an alert whose
// occurrences add up over the coalesced messages, with the earliest first
// seen, the latest last seen and the most severe level; a Sentry user's
// comment counts nothing.
func TestAlertCountsOccurrences(t *testing.T) {
	first := sentryMessage(supportv1.MessageKind_MESSAGE_KIND_POSTED, "1", "2026-03-02T09:00:00Z", "2026-03-02T09:00:00Z", "warning")
	c := Open("a1", first, now)
	if !IsAlertConversation(c) || c.GetAlert().GetProject() != "api" {
		t.Fatalf("opened %v", c)
	}
	Apply(c, first, true, now)
	for _, m := range []*supportv1.InboundMessage{
		sentryMessage(supportv1.MessageKind_MESSAGE_KIND_UPDATED, "250", "2026-03-02T09:00:01Z", "2026-03-02T09:05:00Z", "error"),
		sentryMessage(supportv1.MessageKind_MESSAGE_KIND_UPDATED, "49", "2026-03-02T08:59:00Z", "2026-03-02T09:04:00Z", "info"),
	} {
		if o := Apply(c, m, false, now); !o.Changed {
			t.Fatalf("update not counted: %+v", o)
		}
	}
	comment := sentryMessage(supportv1.MessageKind_MESSAGE_KIND_POSTED, "7", "2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z", "fatal")
	comment.Author.Role = supportv1.AuthorRole_AUTHOR_ROLE_STAFF
	Apply(c, comment, false, now)
	a := c.GetAlert()
	if a.GetOccurrences() != 300 || a.GetLevel() != "error" ||
		!a.GetFirstSeen().AsTime().Equal(time.Date(2026, 3, 2, 8, 59, 0, 0, time.UTC)) ||
		!a.GetLastSeen().AsTime().Equal(time.Date(2026, 3, 2, 9, 5, 0, 0, time.UTC)) {
		t.Fatalf("alert %v", a)
	}
	// A customer's conversation is no alert.
	if slack := Open("c1", &supportv1.InboundMessage{Channel: supportv1.Channel_CHANNEL_SLACK, ThreadKey: "t"}, now); IsAlertConversation(slack) || slack.GetAlert() != nil {
		t.Fatalf("slack conversation %v", slack)
	}
}

func TestAcknowledgeOnce(t *testing.T) {
	c := Open("a1", sentryMessage(supportv1.MessageKind_MESSAGE_KIND_POSTED, "1", "", "", ""), now)
	if Acknowledge(c, System, now) {
		t.Fatal("the system acknowledged an alert")
	}
	if !Acknowledge(c, "alice", now) || Acknowledge(c, "bob", now.Add(time.Minute)) {
		t.Fatal("want the first person's acknowledgement only")
	}
	if c.GetAlert().GetAcknowledgedBy() != "alice" || !c.GetAlert().GetAcknowledgedAt().AsTime().Equal(now) {
		t.Fatalf("alert %v", c.GetAlert())
	}
	if Acknowledge(openConversation(t), "alice", now) {
		t.Fatal("a customer conversation acknowledged")
	}
}

func TestAlertReferences(t *testing.T) {
	text := `see https://acme.sentry.io/issues/4505871234/?project=2 and
https://sentry.io/organizations/acme/issues/77/events/abc/, again https://acme.sentry.io/issues/4505871234/;
self-hosted: https://sentry.example.com/organizations/acme/issues/9/ but not https://example.com/issues/5`
	got := AlertReferences(text)
	want := []string{"sentry:4505871234", "sentry:77", "sentry:9"}
	if !slices.Equal(got, want) {
		t.Fatalf("AlertReferences: %v, want %v", got, want)
	}
}
