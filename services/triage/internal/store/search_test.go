package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/triagetest"
)

// TestSearchRanksTheNewestMatchesFirst: with the two newest matches of
// each kind ranked first, a stronger but older match comes after them
// (and only then by rank among the older ones); pages of any size and
// offset, and a filter that leaves none of the recent part, reach every
// match exactly once.
func TestSearchRanksTheNewestMatchesFirst(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Postgres")
	}
	pool := triagetest.Database(t, triage.Schema, triage.Migrations())
	ctx := context.Background()
	day := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	// Opened (and written) a to e, oldest first; a says webhook three
	// times, d twice, the others once; b came by email.
	texts := map[string]string{
		"a": "webhook webhook webhook down",
		"b": "a webhook question",
		"c": "the webhook again",
		"d": "webhook and webhook",
		"e": "one webhook",
	}
	for i, name := range []string{"a", "b", "c", "d", "e"} {
		ch := supportv1.Channel_CHANNEL_SLACK
		if name == "b" {
			ch = supportv1.Channel_CHANNEL_EMAIL
		}
		at := day.Add(time.Duration(i) * time.Hour)
		c := &supportv1.Conversation{Id: name, ThreadKey: "thread-" + name, Channel: ch,
			Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN, Tier: supportv1.Tier_TIER_COMMUNITY,
			Subject: "question " + name, OpenedAt: timestamppb.New(at), UpdatedAt: timestamppb.New(at),
			Author: &supportv1.Author{Id: "U0" + name, Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER}}
		if err := store.InsertConversations(ctx, pool, []store.ConversationWrite{{Conversation: c}}); err != nil {
			t.Fatal(err)
		}
		m := &supportv1.InboundMessage{Id: "m-" + name, Channel: ch, ThreadKey: c.GetThreadKey(), SourceId: name,
			Text: texts[name], Author: c.GetAuthor(), Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED}
		if err := store.InsertMessages(ctx, pool, []store.MessageRow{{Message: m, ConversationID: name, ReceivedAt: at}}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(f store.Filter, candidates int) []string {
		t.Helper()
		hits, err := store.SearchWith(ctx, pool, "webhook", f, candidates)
		if err != nil {
			t.Fatalf("search %+v: %v", f, err)
		}
		var out []string
		for _, h := range hits {
			out = append(out, h.Conversation.GetId())
		}
		return out
	}

	// Every match among the candidates: ranked as a whole (a equals its
	// three, d its two; b, c and e tie, newest first).
	if got, want := ids(store.Filter{}, 1000), []string{"a", "d", "e", "c", "b"}; !slices.Equal(got, want) {
		t.Fatalf("all ranked: %v, want %v", got, want)
	}
	// The two newest (d, e) first, then the older ones by rank.
	want := []string{"d", "e", "a", "c", "b"}
	if got := ids(store.Filter{}, 2); !slices.Equal(got, want) {
		t.Fatalf("two newest ranked first: %v, want %v", got, want)
	}
	for size := 1; size <= 6; size++ {
		for offset := 0; offset <= 6; offset++ {
			got := ids(store.Filter{Limit: size, Offset: offset}, 2)
			w := want[min(offset, len(want)):min(offset+size, len(want))]
			if !slices.Equal(got, w) {
				t.Errorf("page of %d from %d: %v, want %v", size, offset, got, w)
			}
		}
	}
	// A filter that leaves nothing of the recent part still finds b.
	email := store.Filter{Channel: supportv1.Channel_CHANNEL_EMAIL, Limit: 10}
	if got := ids(email, 2); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("by email: %v, want [b]", got)
	}
	if got := ids(store.Filter{Channel: supportv1.Channel_CHANNEL_EMAIL, Limit: 10, Offset: 1}, 2); len(got) != 0 {
		t.Fatalf("by email, second page: %v, want none", got)
	}
}
