// Package triagetest has triage's test helpers: a fake clock's start, a migrated
// database, inbound message builders, readers of the conversation stream
// and waits on outcomes (never on durations).
package triagetest

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// NewClock returns a fake clock at the tests' usual instant, Monday 2
// March 2026, 09:00 UTC.
func NewClock() *clock.Fake { return clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) }

// SetClock moves c to t (backwards too), firing the timers due on the way.
func SetClock(c *clock.Fake, t time.Time) { c.Advance(t.Sub(c.Now())) }

// Database returns a pool on a fresh database migrated with fsys into
// schema. It skips under -short.
func Database(t testing.TB, schema string, fsys fs.FS) *pgxpool.Pool {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pg.Migrate(ctx, url, schema, fsys, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pool, err := pg.Connect(ctx, url, schema)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Count runs a count(*) query.
func Count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// Message builds inbound messages for one thread.
type Message struct {
	Channel   supportv1.Channel
	ThreadKey string
	n         int
}

// Slack returns a builder for a Slack thread.
func Slack(thread string) *Message {
	return &Message{Channel: supportv1.Channel_CHANNEL_SLACK, ThreadKey: "T0WORK/C0SUPPORT/" + thread}
}

func (b *Message) next(kind supportv1.MessageKind, role supportv1.AuthorRole, authorID, text string) *supportv1.InboundMessage {
	b.n++
	return &supportv1.InboundMessage{
		Id:        fmt.Sprintf("%s#%d", b.ThreadKey, b.n),
		Channel:   b.Channel,
		SourceId:  fmt.Sprintf("%s.%06d", b.ThreadKey, b.n),
		ThreadKey: b.ThreadKey,
		Author:    &supportv1.Author{Id: authorID, Name: authorID, Role: role},
		Text:      text,
		Kind:      kind,
		SentAt:    timestamppb.New(time.Date(2026, 3, 2, 9, 0, b.n, 0, time.UTC)),
		Permalink: "https://example.slack.com/archives/C0SUPPORT/p" + fmt.Sprint(b.n),
	}
}

// Customer is a new message by a customer.
func (b *Message) Customer(author, text string) *supportv1.InboundMessage {
	return b.next(supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, author, text)
}

// Staff is a new message by a staff member.
func (b *Message) Staff(author, text string) *supportv1.InboundMessage {
	return b.next(supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_STAFF, author, text)
}

// Bot is a new message by a bot.
func (b *Message) Bot(text string) *supportv1.InboundMessage {
	return b.next(supportv1.MessageKind_MESSAGE_KIND_POSTED, supportv1.AuthorRole_AUTHOR_ROLE_BOT, "B0BOT", text)
}

// Kind is a message of another kind (edit, delete, closed, automated…);
// source, when not empty, is the source id it refers to.
func (b *Message) Kind(kind supportv1.MessageKind, author, source, text string) *supportv1.InboundMessage {
	m := b.next(kind, supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER, author, text)
	if source != "" {
		m.SourceId = source
	}
	return m
}

// PublishInbound publishes m on support.inbound.<channel> the way an ingest
// service does, with msgID as Nats-Msg-Id (empty: m's id). A different
// msgID replays m past JetStream's duplicate window, as a redelivery days
// later would.
func PublishInbound(t testing.TB, js jetstream.JetStream, m *supportv1.InboundMessage, msgID string) {
	t.Helper()
	if msgID == "" {
		msgID = m.GetId()
	}
	channel := strings.ToLower(strings.TrimPrefix(m.GetChannel().String(), "CHANNEL_"))
	pub := bus.NewPublisher(js, "test/ingest")
	msg, err := pub.Msg(bus.Event{Subject: bus.InboundSubject(channel), ID: m.GetId(), Message: m})
	if err != nil {
		t.Fatal(err)
	}
	msg.Header.Set(nats.MsgIdHdr, msgID)
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatalf("publish inbound %s: %v", m.GetId(), err)
	}
}

// ConversationEvents returns every event stored in SUPPORT_CONVERSATIONS in
// stream order, with the Nats-Msg-Id each was published with.
func ConversationEvents(t testing.TB, js jetstream.JetStream) ([]*supportv1.ConversationEvent, []string) {
	t.Helper()
	var out []*supportv1.ConversationEvent
	ids := read(t, js, bus.StreamConversations, func(msg jetstream.Msg) error {
		var ev supportv1.ConversationEvent
		if err := bus.Decode(msg, &ev); err != nil {
			return err
		}
		if want, got := "support.conversation."+strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "CONVERSATION_EVENT_TYPE_")), msg.Subject(); want != got {
			t.Errorf("event %s of type %s on subject %s", ev.GetId(), ev.GetType(), got)
		}
		out = append(out, &ev)
		return nil
	})
	return out, ids
}

// Outbound returns every OutboundMessage stored in SUPPORT_OUTBOUND (the
// replies and mirror posts triage published, not the receipts) in stream
// order, with the subject and the Nats-Msg-Id each was published with.
func Outbound(t testing.TB, js jetstream.JetStream) (msgs []*supportv1.OutboundMessage, subjects, ids []string) {
	t.Helper()
	read(t, js, bus.StreamOutbound, func(msg jetstream.Msg) error {
		if strings.HasSuffix(msg.Subject(), ".receipt") {
			return nil
		}
		var m supportv1.OutboundMessage
		if err := bus.Decode(msg, &m); err != nil {
			return err
		}
		msgs, subjects = append(msgs, &m), append(subjects, msg.Subject())
		ids = append(ids, msg.Headers().Get(nats.MsgIdHdr))
		return nil
	})
	return msgs, subjects, ids
}

// read reads every message a stream holds now, in order, through f, and
// returns their Nats-Msg-Ids.
func read(t testing.TB, js jetstream.JetStream, name string, f func(jetstream.Msg) error) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	want := int(info.State.Msgs)
	if want == 0 {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	var ids []string
	for len(ids) < want {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read %s: %v (have %d of %d)", name, err, len(ids), want)
		}
		if err := f(msg); err != nil {
			t.Fatalf("decode %s: %v", msg.Subject(), err)
		}
		ids = append(ids, msg.Headers().Get(nats.MsgIdHdr))
	}
	return ids
}

// Types lists event types, for comparisons.
func Types(evs []*supportv1.ConversationEvent) []supportv1.ConversationEventType {
	out := make([]supportv1.ConversationEventType, len(evs))
	for i, e := range evs {
		out[i] = e.GetType()
	}
	return out
}

// Eventually polls cond until it holds, failing the test with what after a
// generous bound. It checks outcomes, not durations.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Drained waits until the durable consumer has acknowledged every message
// stored in the stream so far. (NumPending alone can read zero for an
// instant after a publish, before the consumer has seen the message.)
func Drained(t testing.TB, js jetstream.JetStream, stream, durable string) {
	t.Helper()
	Eventually(t, durable+" drained "+stream, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		si, err := s.Info(ctx)
		if err != nil {
			return false
		}
		c, err := s.Consumer(ctx, durable)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return false
		}
		return ci.AckFloor.Stream >= si.State.LastSeq && ci.NumAckPending == 0 && ci.NumPending == 0
	})
}

// Logger logs to t.Log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Clone copies a message (so a test can replay it unchanged).
func Clone(m *supportv1.InboundMessage) *supportv1.InboundMessage {
	return proto.Clone(m).(*supportv1.InboundMessage)
}
