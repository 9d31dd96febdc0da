// Package notifiertest has the notifier's test helpers: a fake rotation
// gRPC server on a loopback listener, a recording channel, a migrated
// database, readers of the support.notify stream and fakes at the wire of
// Slack, SMTP, PagerDuty and a webhook receiver. Clocks are clock.Fake,
// starting at Start.
package notifiertest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/pg"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// Alice and Bob are the people the fake rotation knows; Alice is the hero.
var (
	Alice = &rotationv1.Person{Id: "alice", Name: "Alice Liddell", Email: "alice@example.com", SlackId: "U0ALICE", Team: "core"}
	Bob   = &rotationv1.Person{Id: "bob", Name: "Bob Builder", Email: "bob@example.com", SlackId: "U0BOB", Team: "platform"}
)

// Start is where the tests' fake clocks (clock.NewFake) start: a Monday,
// 10:00 UTC.
var Start = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// Rotation is a fake rotation service: WhoIsOnCall answers Hero for
// ROLE_HERO and Secondary[team] for ROLE_SECONDARY; ListPeople lists
// People.
type Rotation struct {
	rotationv1.UnimplementedRotationServiceServer

	mu        sync.Mutex
	Hero      *rotationv1.Person
	Secondary map[string]*rotationv1.Person
	People    []*rotationv1.Person
	calls     int
	failNext  int
	// heroAnswer, when set, is the whole answer for ROLE_HERO (routes,
	// availability), instead of one built from Hero.
	heroAnswer *rotationv1.WhoIsOnCallResponse
	rotations  []*rotationv1.Rotation
	shifts     []*rotationv1.Shift
}

// SetShifts makes ListRotations answer rotations and ListShifts the
// shifts of the rotation asked that overlap the range asked.
func (r *Rotation) SetShifts(rotations []*rotationv1.Rotation, shifts []*rotationv1.Shift) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rotations, r.shifts = rotations, shifts
}

// ListRotations implements rotationv1.RotationServiceServer.
func (r *Rotation) ListRotations(context.Context, *rotationv1.ListRotationsRequest) (*rotationv1.ListRotationsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return &rotationv1.ListRotationsResponse{Rotations: r.rotations}, nil
}

// ListShifts implements rotationv1.RotationServiceServer.
func (r *Rotation) ListShifts(_ context.Context, req *rotationv1.ListShiftsRequest) (*rotationv1.ListShiftsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &rotationv1.ListShiftsResponse{}
	from, to := req.GetFrom().AsTime(), req.GetTo().AsTime()
	for _, s := range r.shifts {
		if s.GetRotationId() == req.GetRotation() && s.GetStart().AsTime().Before(to) && s.GetEnd().AsTime().After(from) {
			out.Shifts = append(out.Shifts, s)
		}
	}
	return out, nil
}

// SetHeroAnswer makes ROLE_HERO answer resp as it is (nil: back to Hero).
func (r *Rotation) SetHeroAnswer(resp *rotationv1.WhoIsOnCallResponse) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heroAnswer = resp
}

// FailNext makes the next n WhoIsOnCall calls answer Unavailable.
func (r *Rotation) FailNext(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext = n
}

// NewRotation returns a fake with Alice as hero and Bob as the platform
// team's secondary.
func NewRotation() *Rotation {
	return &Rotation{Hero: Alice, Secondary: map[string]*rotationv1.Person{"platform": Bob}, People: []*rotationv1.Person{Alice, Bob}}
}

// Carol is on no rotation and has no Slack id: only email reaches her.
var Carol = &rotationv1.Person{Id: "carol", Name: "Carol Chen", Email: "carol@example.com", Team: "core"}

// AddPerson adds p to the directory ListPeople answers from.
func (r *Rotation) AddPerson(p *rotationv1.Person) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.People = append(r.People, p)
}

// SetPerson replaces the person with p's id in the directory ListPeople
// answers from (the hero and secondaries are left as they are).
func (r *Rotation) SetPerson(p *rotationv1.Person) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, q := range r.People {
		if q.GetId() == p.GetId() {
			r.People[i] = p
		}
	}
}

// SetSecondary changes a team's secondary (nil: a gap).
func (r *Rotation) SetSecondary(team string, p *rotationv1.Person) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Secondary[team] = p
}

// SetHero changes who the hero is (nil: a gap).
func (r *Rotation) SetHero(p *rotationv1.Person) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Hero = p
}

// Calls counts WhoIsOnCall calls.
func (r *Rotation) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// WhoIsOnCall implements rotationv1.RotationServiceServer.
func (r *Rotation) WhoIsOnCall(_ context.Context, req *rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.failNext > 0 {
		r.failNext--
		return nil, status.Error(codes.Unavailable, "rotation is restarting")
	}
	var p *rotationv1.Person
	switch req.GetRole() {
	case rotationv1.Role_ROLE_HERO:
		if r.heroAnswer != nil {
			return r.heroAnswer, nil
		}
		p = r.Hero
	case rotationv1.Role_ROLE_SECONDARY:
		p = r.Secondary[req.GetTeam()]
	}
	if p == nil {
		return &rotationv1.WhoIsOnCallResponse{Gap: true, GapReason: "nobody scheduled", OnCall: &rotationv1.OnCall{}}, nil
	}
	return &rotationv1.WhoIsOnCallResponse{OnCall: &rotationv1.OnCall{Person: p, Reason: rotationv1.Reason_REASON_ROTATION}}, nil
}

// ListPeople implements rotationv1.RotationServiceServer.
func (r *Rotation) ListPeople(_ context.Context, req *rotationv1.ListPeopleRequest) (*rotationv1.ListPeopleResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := &rotationv1.ListPeopleResponse{}
	for _, p := range r.People {
		if req.GetTeam() == "" || p.GetTeam() == req.GetTeam() {
			out.People = append(out.People, p)
		}
	}
	return out, nil
}

// Serve serves r on a loopback listener and returns a client for it; both
// stop when the test ends.
func (r *Rotation) Serve(t testing.TB) rotationv1.RotationServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(r.Listen(t), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial fake rotation: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return rotationv1.NewRotationServiceClient(conn)
}

// Listen serves r on a loopback listener until the test ends and returns
// its address.
func (r *Rotation) Listen(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := grpc.NewServer()
	rotationv1.RegisterRotationServiceServer(srv, r)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// Database creates a database, applies the notifier migrations (fsys)
// into schema and returns a pool pinned to it.
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

// Recorder is a channel that records what it sent. Fail, when set, is
// asked before each send; a non-nil error fails that attempt.
type Recorder struct {
	ChannelName string
	Fail        func(attempt int, m notify.Message) error

	mu       sync.Mutex
	attempts int
	sent     []notify.Message
}

var _ notify.Channel = (*Recorder)(nil)

// Name implements notify.Channel.
func (r *Recorder) Name() string {
	if r.ChannelName == "" {
		return "recorder"
	}
	return r.ChannelName
}

// Send implements notify.Channel.
func (r *Recorder) Send(ctx context.Context, m notify.Message) (notify.Receipt, error) {
	r.mu.Lock()
	r.attempts++
	n, fail := r.attempts, r.Fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(n, m); err != nil {
			return notify.Receipt{}, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return notify.Receipt{Ref: "rec/" + m.DeliveryID}, nil
}

// Sent returns the messages sent so far.
func (r *Recorder) Sent() []notify.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]notify.Message(nil), r.sent...)
}

// Attempts counts calls to Send.
func (r *Recorder) Attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts
}

// FailFirst fails the first n attempts with a temporary error.
func FailFirst(n int) func(int, notify.Message) error {
	return func(attempt int, _ notify.Message) error {
		if attempt <= n {
			return errors.New("channel temporarily unavailable")
		}
		return nil
	}
}

// Buffer is a goroutine-safe strings.Builder for console output.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write implements io.Writer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// NotifyEvents returns every DeliveryEvent stored on subject (for example
// bus.NotifySubject("delivered")) in the SUPPORT_NOTIFY stream.
func NotifyEvents(t testing.TB, js jetstream.JetStream, subject string) []*supportv1.DeliveryEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, bus.StreamNotify)
	if err != nil {
		t.Fatalf("stream %s: %v", bus.StreamNotify, err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	want := int(info.State.Subjects[subject])
	if want == 0 {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	var out []*supportv1.DeliveryEvent
	for len(out) < want {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("read %s: %v (have %d of %d)", subject, err, len(out), want)
		}
		var ev supportv1.DeliveryEvent
		if err := bus.Decode(msg, &ev); err != nil {
			t.Fatalf("decode %s: %v", subject, err)
		}
		out = append(out, &ev)
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

// AckedThrough waits until the durable consumer has acknowledged every
// message up to stream sequence seq (handled them, successfully or into a
// dead letter). Polling the consumer's pending counts instead can be
// fooled by a message the server stored but has not counted yet.
func AckedThrough(t testing.TB, js jetstream.JetStream, stream, durable string, seq uint64) {
	t.Helper()
	Eventually(t, fmt.Sprintf("%s acknowledged %s through %d", durable, stream, seq), func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return false
		}
		c, err := s.Consumer(ctx, durable)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= seq
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

// Opened is triage's OPENED event for a Priority Slack conversation from
// Jane Doe of Acme, at at.
func Opened(eventID, conversationID string, at time.Time) *supportv1.ConversationEvent {
	return &supportv1.ConversationEvent{
		Id: eventID, Type: supportv1.ConversationEventType_CONVERSATION_EVENT_TYPE_OPENED,
		OccurredAt: timestamppb.New(at),
		Conversation: &supportv1.Conversation{
			Id: conversationID, Channel: supportv1.Channel_CHANNEL_SLACK, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
			Tier: supportv1.Tier_TIER_PRIORITY, Subject: "Checkout fails since the upgrade",
			Customer:  &supportv1.CustomerRef{Id: "acme", Name: "Acme", Organisation: "Acme Inc"},
			Author:    &supportv1.Author{Id: "U0JANE", Name: "Jane Doe"},
			Permalink: "https://acme.slack.com/archives/C1/p1700000000000100",
		},
		Message: &supportv1.InboundMessage{Id: "in-1", Text: "Since this morning every checkout returns a 500."},
	}
}
