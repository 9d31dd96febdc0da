package triage

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/worktime"
)

// fakeRotation is the rotation service as triage sees it, over real gRPC:
// working windows from a roster of office hours, and a fixed next hero.
type fakeRotation struct {
	rotationv1.UnimplementedRotationServiceServer

	mu      sync.Mutex
	roster  []office
	hero    string
	windows int // WorkingWindows calls
	asked   []*rotationv1.WhoIsOnCallRequest
}

// office is one person's working hours: weekdays from start to end, local
// time in loc.
type office struct {
	loc        *time.Location
	start, end time.Duration // since local midnight
	days       []time.Weekday
}

func weekdays() []time.Weekday {
	return []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

// hours is "09:00" to "17:30" office hours on weekdays in loc.
func hours(loc *time.Location, start, end string) office {
	parse := func(s string) time.Duration {
		t, err := time.Parse("15:04", s)
		if err != nil {
			panic(err)
		}
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute
	}
	return office{loc: loc, start: parse(start), end: parse(end), days: weekdays()}
}

// windowsOf builds the union of the roster's office hours within
// [from, to), computing each day in its own time zone (so DST changes are
// honoured).
func windowsOf(roster []office, from, to time.Time) worktime.Windows {
	var ivs []worktime.Interval
	for _, o := range roster {
		day := from.In(o.loc).AddDate(0, 0, -1)
		day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, o.loc)
		for ; day.Before(to); day = day.AddDate(0, 0, 1) {
			workday := false
			for _, d := range o.days {
				workday = workday || d == day.Weekday()
			}
			if !workday {
				continue
			}
			y, m, d := day.Date()
			start := time.Date(y, m, d, 0, 0, 0, 0, o.loc).Add(o.start)
			end := time.Date(y, m, d, 0, 0, 0, 0, o.loc).Add(o.end)
			ivs = append(ivs, worktime.Interval{Start: start, End: end})
		}
	}
	return worktime.Normalize(ivs).Clip(from, to)
}

func (f *fakeRotation) WorkingWindows(_ context.Context, req *rotationv1.WorkingWindowsRequest) (*rotationv1.WorkingWindowsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.windows++
	resp := &rotationv1.WorkingWindowsResponse{}
	for _, iv := range windowsOf(f.roster, req.GetFrom().AsTime(), req.GetTo().AsTime()) {
		resp.Windows = append(resp.Windows, &rotationv1.Interval{Start: timestamppb.New(iv.Start), End: timestamppb.New(iv.End)})
	}
	return resp, nil
}

func (f *fakeRotation) WhoIsOnCall(_ context.Context, req *rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, req)
	return &rotationv1.WhoIsOnCallResponse{OnCall: &rotationv1.OnCall{Person: &rotationv1.Person{Id: f.hero}}}, nil
}

// calls returns how often WorkingWindows was called and the WhoIsOnCall
// requests.
func (f *fakeRotation) calls() (int, []*rotationv1.WhoIsOnCallRequest) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.windows, append([]*rotationv1.WhoIsOnCallRequest(nil), f.asked...)
}

func (f *fakeRotation) setRoster(roster ...office) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roster = roster
}

// serveRotation serves f on a loopback listener and returns a client.
func serveRotation(t testing.TB, f *fakeRotation) rotationv1.RotationServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rotationv1.RegisterRotationServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return rotationv1.NewRotationServiceClient(cc)
}

// testPeople are the people of the tests' organisation, with the
// identities staff authors are recognised by.
func testPeople() []*rotationv1.Person {
	return []*rotationv1.Person{
		{Id: "alice", Name: "Alice Anders", Email: "alice@example.com", SlackId: "U0ALICE", Github: "alice-anders"},
		{Id: "bob", Name: "Bob Brown", Email: "bob@example.com", SlackId: "U0BOB"},
		{Id: "carol", Name: "Carol Chen", Email: "carol@example.com", SlackId: "U0CAROL"},
		{Id: "farah", Name: "Farah Faruqi", Email: "farah@example.com", Emails: []string{"farah@acme.example"}, SlackId: "U0FARAH", Github: "farah-f"},
	}
}

// at stamps m as sent at the clock's time.
func at(c *clock.Fake, m *supportv1.InboundMessage) *supportv1.InboundMessage {
	m.SentAt = timestamppb.New(c.Now())
	return m
}

// eventsOf returns the events of one type.
func eventsOf(evs []*supportv1.ConversationEvent, typ supportv1.ConversationEventType) []*supportv1.ConversationEvent {
	var out []*supportv1.ConversationEvent
	for _, e := range evs {
		if e.GetType() == typ {
			out = append(out, e)
		}
	}
	return out
}
