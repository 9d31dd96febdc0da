package ingestslack

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// rotation is a RotationService with a fixed schedule, served over real
// gRPC on a loopback listener.
type rotation struct {
	rotationv1.UnimplementedRotationServiceServer
	stuck bool
}

var alice = &rotationv1.Person{Id: "alice", Name: "Alice Example", SlackId: "U024BE7LH", Team: "core-experience"}

func (r *rotation) WhoIsOnCall(ctx context.Context, req *rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error) {
	if r.stuck {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	switch {
	case req.GetRole() == rotationv1.Role_ROLE_HERO:
		return &rotationv1.WhoIsOnCallResponse{OnCall: &rotationv1.OnCall{Person: alice, Reason: rotationv1.Reason_REASON_ROTATION, Shift: &rotationv1.Shift{RotationId: "hero"}}}, nil
	case req.GetTeam() == "core-experience":
		return &rotationv1.WhoIsOnCallResponse{OnCall: &rotationv1.OnCall{Person: alice, Reason: rotationv1.Reason_REASON_DERIVED}}, nil
	case req.GetTeam() == "core-analytics":
		return &rotationv1.WhoIsOnCallResponse{
			OnCall: &rotationv1.OnCall{Person: &rotationv1.Person{Id: "bob", Name: "Bob Builder"}, Reason: rotationv1.Reason_REASON_SWAP, Explanation: "swapped with Carol for Monday"},
			Also:   []*rotationv1.OnCall{{Person: &rotationv1.Person{Id: "carol", Name: "Carol", SlackId: "U0CAROL"}}},
		}, nil
	}
	return &rotationv1.WhoIsOnCallResponse{Gap: true, GapReason: "nobody in working hours until 09:00 Europe/Berlin"}, nil
}

func (r *rotation) ListTeams(context.Context, *rotationv1.ListTeamsRequest) (*rotationv1.ListTeamsResponse, error) {
	return &rotationv1.ListTeamsResponse{Teams: []*rotationv1.Team{
		{Id: "platform", Name: "Platform"}, {Id: "core-experience", Name: "Core Experience"}, {Id: "core-analytics", Name: "Core Analytics"},
	}}, nil
}

func serveRotation(t *testing.T, r *rotation) rotationv1.RotationServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	rotationv1.RegisterRotationServiceServer(gs, r)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return rotationv1.NewRotationServiceClient(conn)
}

// slashCommand is the form Slack posts for a slash command.
func slashCommand(command, text string) []byte {
	return []byte(url.Values{
		"token": {"gIkuvaNzQIHg97ATvDxqgjtO"}, "team_id": {"T061EG9R6"}, "team_domain": {"acme"},
		"enterprise_id": {""}, "channel_id": {"C0LAN2Q65"}, "channel_name": {"support"},
		"user_id": {"U024BE7LH"}, "user_name": {"alice"}, "command": {command}, "text": {text},
		"api_app_id": {"A0MDYCDME"}, "is_enterprise_install": {"false"},
		"response_url": {"https://hooks.slack.com/commands/T061EG9R6/1234567890/abcdefghijkl"},
		"trigger_id":   {"13345224609.738474920.8088930838d88f008e0"},
	}.Encode())
}

func ephemeralText(t *testing.T, body []byte) string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	if m["response_type"] != "ephemeral" {
		t.Fatalf("answer not ephemeral: %v", m)
	}
	return m["text"]
}

func TestHeroCommand(t *testing.T) {
	f := newFixture(t, Config{}, Deps{OnCall: serveRotation(t, &rotation{})})
	rec := f.post(t, "/slack/commands", "application/x-www-form-urlencoded", slashCommand("/hero", ""), signed)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	got := ephemeralText(t, rec.Body.Bytes())
	want := strings.Join([]string{
		"*Support Hero now:* Alice Example (<@U024BE7LH>)",
		"*Secondary on-call:*",
		"• Core Analytics: Bob Builder — swapped with Carol for Monday; also Carol (<@U0CAROL>)",
		"• Core Experience: Alice Example (<@U024BE7LH>) — this week's hero, secondary for their own team",
		"• Platform: nobody (gap: nobody in working hours until 09:00 Europe/Berlin)",
	}, "\n")
	if got != want {
		t.Fatalf("answer\n%s\nwant\n%s", got, want)
	}
	if f.count("command", "answered") != 1 {
		t.Fatal("answer not counted")
	}
}

func TestHeroCommandAnswersWhenRotationIsStuck(t *testing.T) {
	f := newFixture(t, Config{Timeout: 300 * time.Millisecond}, Deps{OnCall: serveRotation(t, &rotation{stuck: true})})
	rec := f.post(t, "/slack/commands", "application/x-www-form-urlencoded", slashCommand("/hero", ""), signed)
	if rec.Code != http.StatusOK || !strings.Contains(ephemeralText(t, rec.Body.Bytes()), "could not ask the rotation service") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestOtherCommands(t *testing.T) {
	f := newFixture(t, Config{}, Deps{})
	for cmd, want := range map[string]string{
		"/hero":   "not configured",
		"/oncall": "does not know /oncall",
	} {
		rec := f.post(t, "/slack/commands", "application/x-www-form-urlencoded", slashCommand(cmd, ""), signed)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", cmd, rec.Code)
		}
		if got := ephemeralText(t, rec.Body.Bytes()); !strings.Contains(got, want) {
			t.Fatalf("%s: %q, want %q", cmd, got, want)
		}
	}
	rec := f.post(t, "/slack/commands", "application/x-www-form-urlencoded", slashCommand("/hero", "help"), signed)
	if !strings.Contains(ephemeralText(t, rec.Body.Bytes()), "shows who is Support Hero") {
		t.Fatalf("help: %s", rec.Body)
	}
}

func (r *rotation) ListPeople(context.Context, *rotationv1.ListPeopleRequest) (*rotationv1.ListPeopleResponse, error) {
	return &rotationv1.ListPeopleResponse{People: []*rotationv1.Person{alice, {Id: "bob", Name: "Bob Builder", SlackId: "U0BOB"}}}, nil
}

// ListShifts: alice is the hero from 2 March; bob is the hero from 9
// March and Core Analytics' secondary from 16 March.
func (r *rotation) ListShifts(_ context.Context, req *rotationv1.ListShiftsRequest) (*rotationv1.ListShiftsResponse, error) {
	at := func(d int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 3, d, 9, 0, 0, 0, time.UTC))
	}
	switch {
	case req.GetRotation() == "hero":
		return &rotationv1.ListShiftsResponse{Shifts: []*rotationv1.Shift{
			{RotationId: "hero", PersonId: "alice", Start: at(2), End: at(9)}, {RotationId: "hero", PersonId: "bob", Start: at(9), End: at(16)},
		}}, nil
	case req.GetTeam() == "core-analytics":
		return &rotationv1.ListShiftsResponse{Shifts: []*rotationv1.Shift{{RotationId: "ca", PersonId: "bob", Start: at(16), End: at(23)}}}, nil
	}
	return &rotationv1.ListShiftsResponse{}, nil
}

func TestHeroCommandArguments(t *testing.T) {
	// Wednesday 4 March 2026: alice's week as hero.
	clk := clock.NewFake(time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC))
	f := newFixture(t, Config{}, Deps{OnCall: serveRotation(t, &rotation{}), Clock: clk})
	ask := func(text string) string {
		t.Helper()
		rec := f.post(t, "/slack/commands", "application/x-www-form-urlencoded", slashCommand("/hero", text), signed)
		if rec.Code != http.StatusOK {
			t.Fatalf("%q: %d %s", text, rec.Code, rec.Body)
		}
		return ephemeralText(t, rec.Body.Bytes())
	}
	for text, want := range map[string]string{
		"core-analytics": "*Core Analytics secondary on-call now:* Bob Builder — swapped with Carol for Monday; also Carol (<@U0CAROL>)",
		"Platform":       "*Platform secondary on-call now:* nobody (gap: nobody in working hours until 09:00 Europe/Berlin)",
		"<@U0BOB|bob>":   "Bob Builder (<@U0BOB>) is next on call as *Support Hero* from <!date^1773046800^{date_short_pretty} {time}|2026-03-09 09:00 UTC> to <!date^1773651600^{date_short_pretty} {time}|2026-03-16 09:00 UTC>.",
		"nobody-here":    `I know no team or person "nobody-here". Teams: platform, core-experience, core-analytics.`,
	} {
		if got := ask(text); !strings.HasPrefix(got, want) {
			t.Errorf("/hero %s:\n%s\nwant\n%s", text, got, want)
		}
	}
	if got := ask("next   week"); !strings.HasPrefix(got, "*Support Hero a week from now:* Alice Example") {
		t.Errorf("/hero next week: %s", got)
	}
	if got := ask("help"); !strings.Contains(got, "when they are next on call") {
		t.Errorf("/hero help: %s", got)
	}
}
