package coalesce

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func rank(l string) int {
	return map[string]int{"info": 1, "warning": 2, "error": 3, "fatal": 4}[l]
}

func occ(id string, at time.Time, level, user string) *supportv1.InboundMessage {
	return &supportv1.InboundMessage{
		Id: "sentry:" + id, ThreadKey: "sentry:1", SentAt: timestamppb.New(at),
		Author:     &supportv1.Author{Id: user},
		Attributes: map[string]string{"level": level},
	}
}

func TestFirstImmediatelyThenOneUpdatePerInterval(t *testing.T) {
	c := New(time.Minute, time.Hour, rank)
	now := t0
	b := c.Add("1", Occurrence{Message: occ("r1", now, "error", "u1"), Seq: 1}, now)
	if b == nil || !b.First || b.Count != 1 {
		t.Fatalf("first occurrence not sent at once: %+v", b)
	}
	m := b.Message()
	if m.GetKind() != supportv1.MessageKind_MESSAGE_KIND_POSTED || m.GetId() != "sentry:r1" || m.GetAttributes()["occurrences"] != "1" {
		t.Fatalf("first message %v", m)
	}
	c.Sent("1", now)

	// 100 more within the interval wait.
	for i := 2; i <= 101; i++ {
		now = now.Add(100 * time.Millisecond)
		level := "warning"
		if i == 50 {
			level = "fatal"
		}
		if b := c.Add("1", Occurrence{Message: occ("r"+strconv.Itoa(i), now, level, fmt.Sprintf("u%d", i%7)), Seq: uint64(i)}, now); b != nil {
			t.Fatalf("occurrence %d sent before the interval", i)
		}
	}
	if c.Pending() != 100 {
		t.Fatalf("pending %d", c.Pending())
	}
	if got := c.Due(now); len(got) != 0 {
		t.Fatalf("due too early: %d", len(got))
	}
	at, ok := c.NextDue()
	if !ok || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("next due %v %v", at, ok)
	}
	due := c.Due(at)
	if len(due) != 1 {
		t.Fatalf("due at the interval: %d", len(due))
	}
	u := due[0]
	m = u.Message()
	if u.First || m.GetKind() != supportv1.MessageKind_MESSAGE_KIND_UPDATED || u.Count != 100 || len(u.Seqs) != 100 {
		t.Fatalf("update %+v", u)
	}
	if m.GetId() != "sentry:r101" || m.GetAttributes()["level"] != "fatal" || m.GetAttributes()["affected_users"] != "7" {
		t.Fatalf("update message %v", m.GetAttributes())
	}
	if m.GetAttributes()["first_seen"] != t0.Add(100*time.Millisecond).Format(time.RFC3339Nano) {
		t.Fatalf("first_seen %s", m.GetAttributes()["first_seen"])
	}
	c.Sent("1", at)
	if c.Pending() != 0 {
		t.Fatalf("pending after send %d", c.Pending())
	}

	// After a quiet interval, the next occurrence goes at once, as an update.
	now = at.Add(2 * time.Minute)
	if b := c.Add("1", Occurrence{Message: occ("late", now, "error", "u1"), Seq: 500}, now); b == nil || b.First {
		t.Fatalf("occurrence after a quiet interval: %+v", b)
	}
}

func TestFailedBatchIsRetriedWithNewArrivals(t *testing.T) {
	c := New(time.Minute, time.Hour, rank)
	b := c.Add("9", Occurrence{Message: occ("a", t0, "error", "u"), Seq: 1}, t0)
	c.Failed(b, t0.Add(time.Second))
	if b := c.Add("9", Occurrence{Message: occ("b", t0.Add(500*time.Millisecond), "error", "u"), Seq: 2}, t0.Add(500*time.Millisecond)); b != nil {
		t.Fatal("sent before the retry time")
	}
	due := c.Due(t0.Add(time.Second))
	if len(due) != 1 || !due[0].First || due[0].Count != 2 || due[0].Seqs[0] != 1 || due[0].Seqs[1] != 2 {
		t.Fatalf("retry %+v", due)
	}
	if due[0].Message().GetKind() != supportv1.MessageKind_MESSAGE_KIND_POSTED {
		t.Fatal("a retried first batch must stay POSTED")
	}
}

func TestFlushForgetEvict(t *testing.T) {
	c := New(time.Minute, 10*time.Minute, rank)
	c.Sent("1", t0)
	c.Add("1", Occurrence{Message: occ("a", t0, "error", "u"), Seq: 1}, t0.Add(time.Second))
	b := c.Flush("1")
	if b == nil || b.Count != 1 || c.Flush("1") != nil {
		t.Fatalf("flush %+v", b)
	}
	c.Sent("1", t0.Add(time.Second))
	c.Forget("1")
	if b := c.Add("1", Occurrence{Message: occ("b", t0, "error", "u"), Seq: 2}, t0.Add(2*time.Second)); b == nil || !b.First {
		t.Fatal("after Forget the next occurrence is a first one")
	}
	c.Sent("1", t0.Add(2*time.Second))
	c.Evict(t0.Add(5 * time.Minute))
	if c.Keys() != 1 {
		t.Fatal("evicted too early")
	}
	c.Evict(t0.Add(13 * time.Minute))
	if c.Keys() != 0 {
		t.Fatal("not evicted")
	}
}

// TestCountsAddUp drives random storms over a few keys with random send
// failures and checks that every occurrence is in exactly one sent batch.
func TestCountsAddUp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := New(time.Second, time.Minute, rank)
	now := t0
	seen := map[uint64]bool{}
	sent, messages := 0, 0
	send := func(b *Batch) {
		if r.IntN(10) == 0 {
			c.Failed(b, now.Add(200*time.Millisecond))
			return
		}
		for _, s := range b.Seqs {
			if seen[s] {
				t.Fatalf("seq %d sent twice", s)
			}
			seen[s] = true
		}
		sent += b.Count
		messages++
		c.Sent(b.Key, now)
	}
	const n = 50000
	for i := range uint64(n) {
		now = now.Add(time.Duration(r.IntN(200)) * time.Microsecond)
		key := strconv.Itoa(r.IntN(10))
		if b := c.Add(key, Occurrence{Message: occ(strconv.FormatUint(i, 10), now, "error", "u"), Seq: i, EventID: strconv.FormatUint(i, 10)}, now); b != nil {
			send(b)
		}
		for _, b := range c.Due(now) {
			send(b)
		}
	}
	for c.Pending() > 0 {
		now = now.Add(time.Second)
		for _, b := range c.Due(now) {
			send(b)
		}
	}
	if sent != n || len(seen) != n {
		t.Fatalf("sent %d occurrences (%d distinct), want %d", sent, len(seen), n)
	}
	// ~5 s of storm, 10 keys, 1 s interval: a handful of messages per key.
	if messages > 10*12 {
		t.Fatalf("%d messages for 10 keys", messages)
	}
	t.Logf("%d occurrences over 10 issues in %v became %d messages", n, now.Sub(t0), messages)
}

// TestSameEventCountedOnce: an error webhook and an issue alert report the
// same event id; issue.created reports the first event without an id.
func TestSameEventCountedOnce(t *testing.T) {
	c := New(time.Minute, time.Hour, rank)
	first := t0
	second := t0.Add(time.Second)
	// issue.created arrives first, then the error webhook of the same (first) event.
	b := c.Add("1", Occurrence{Message: occ("created", first, "error", ""), Seq: 1, IssueCreated: true}, t0)
	if b == nil || b.Count != 1 {
		t.Fatalf("issue.created: %+v", b)
	}
	c.Sent("1", t0)
	c.Add("1", Occurrence{Message: occ("err-1", first, "error", "u"), Seq: 2, EventID: "e1"}, t0)
	c.Add("1", Occurrence{Message: occ("alert-1", first, "error", "u"), Seq: 3, EventID: "e1"}, t0)
	c.Add("1", Occurrence{Message: occ("err-2", second, "error", "u"), Seq: 4, EventID: "e2"}, t0)
	c.Add("1", Occurrence{Message: occ("alert-2", second, "error", "u"), Seq: 5, EventID: "e2"}, t0)
	u := c.Flush("1")
	if u.Count != 1 || u.Duplicates != 3 || len(u.Seqs) != 4 {
		t.Fatalf("update: count %d duplicates %d seqs %v", u.Count, u.Duplicates, u.Seqs)
	}

	// The other order: the first event's error webhook, then issue.created.
	c = New(time.Minute, time.Hour, rank)
	c.Add("2", Occurrence{Message: occ("err-1", first, "error", "u"), Seq: 1, EventID: "e1"}, t0)
	c.Sent("2", t0)
	c.Add("2", Occurrence{Message: occ("created", first, "error", ""), Seq: 2, IssueCreated: true}, t0)
	if d := c.Flush("2"); d.Count != 0 || d.Duplicates != 1 {
		t.Fatalf("issue.created after its event: %+v", d)
	}
}

func BenchmarkAdd(b *testing.B) {
	c := New(time.Minute, time.Hour, rank)
	m := occ("x", t0, "error", "u")
	now := t0
	for i := range b.N {
		if batch := c.Add(strconv.Itoa(i%10), Occurrence{Message: m, Seq: uint64(i)}, now); batch != nil {
			c.Sent(batch.Key, now)
		}
	}
}
