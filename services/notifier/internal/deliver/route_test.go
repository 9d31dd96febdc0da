package deliver_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
)

// The person shown as on call is the person who gets paged: with the hero
// on time off the page and the ping reach who rotation says receives
// (never the hero), and at night a page wakes the hero while a ping goes
// to the catcher at work.
func TestRoleRecipientsFollowAvailability(t *testing.T) {
	carol := &rotationv1.Person{Id: "carol", Name: "Carol", SlackId: "U0CAROL"}
	onCall := func(p *rotationv1.Person, r rotationv1.Reason, a rotationv1.Availability) *rotationv1.OnCall {
		return &rotationv1.OnCall{Person: p, Reason: r, Availability: a}
	}
	aliceAway := onCall(notifiertest.Alice, rotationv1.Reason_REASON_ROTATION, rotationv1.Availability_AVAILABILITY_TIME_OFF)
	aliceAsleep := onCall(notifiertest.Alice, rotationv1.Reason_REASON_ROTATION, rotationv1.Availability_AVAILABILITY_OUTSIDE_HOURS)
	bobBackup := onCall(notifiertest.Bob, rotationv1.Reason_REASON_BACKUP, rotationv1.Availability_AVAILABILITY_AVAILABLE)
	carolCatches := onCall(carol, rotationv1.Reason_REASON_CATCHER, rotationv1.Availability_AVAILABILITY_AVAILABLE)
	tests := []struct {
		name       string
		answer     *rotationv1.WhoIsOnCallResponse
		page, ping string
	}{
		{"the hero on time off", &rotationv1.WhoIsOnCallResponse{OnCall: aliceAway, Gap: true, Chain: []*rotationv1.OnCall{aliceAway, bobBackup},
			High: &rotationv1.Route{Receiver: bobBackup, ReceiverIndex: 1}, Low: &rotationv1.Route{Receiver: bobBackup, ReceiverIndex: 1}}, "bob", "bob"},
		{"03:00 for the hero, a catcher at work", &rotationv1.WhoIsOnCallResponse{OnCall: aliceAsleep, Chain: []*rotationv1.OnCall{aliceAsleep, carolCatches},
			High: &rotationv1.Route{Receiver: aliceAsleep}, Low: &rotationv1.Route{Receiver: carolCatches, ReceiverIndex: 1}}, "alice", "carol"},
		{"nobody works within a year: the ping goes to whoever a page would wake", &rotationv1.WhoIsOnCallResponse{OnCall: aliceAsleep, Chain: []*rotationv1.OnCall{aliceAsleep},
			High: &rotationv1.Route{Receiver: aliceAsleep}, Low: &rotationv1.Route{Nobody: true}}, "alice", "alice"},
		{"nobody at all", &rotationv1.WhoIsOnCallResponse{OnCall: aliceAway, Gap: true, Chain: []*rotationv1.OnCall{aliceAway},
			High: &rotationv1.Route{Nobody: true}, Low: &rotationv1.Route{Nobody: true}}, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.rot.SetHeroAnswer(tc.answer)
			rec := &notifiertest.Recorder{}
			eng := e.dispatcher(t, deliver.Config{}, rec)
			for _, u := range []notify.Urgency{notify.Page, notify.Ping} {
				req := heroRequest(tc.name + u.String())
				req.Urgency = u
				if _, _, err := eng.Notify(context.Background(), req); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for _, m := range rec.Sent() {
				got = append(got, m.Urgency.String()+":"+m.Recipient.PersonID)
			}
			var want []string
			if tc.page != "" {
				want = append(want, "page:"+tc.page)
			}
			if tc.ping != "" {
				want = append(want, "ping:"+tc.ping)
			}
			if len(got) != len(want) {
				t.Fatalf("sent %v, want %v", got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("sent %v, want %v", got, want)
				}
			}
		})
	}
}

// At 23:00 nobody works: rotation's low route has nobody now and waits
// for the hero's next working hour, as `sidekick oncall` prints ("waits
// until 08:00"); the ping does exactly that: it goes to her at 08:00, not
// before, and an acknowledgement in between cancels it. The page wakes
// her now.
func TestAPingWaitsForTheNextWorkingHour(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	asleep := &rotationv1.OnCall{Person: notifiertest.Alice, Reason: rotationv1.Reason_REASON_ROTATION, Availability: rotationv1.Availability_AVAILABILITY_OUTSIDE_HOURS}
	morning := e.clock.Now().Add(9 * time.Hour)
	e.rot.SetHeroAnswer(&rotationv1.WhoIsOnCallResponse{OnCall: asleep, Chain: []*rotationv1.OnCall{asleep},
		High: &rotationv1.Route{Receiver: asleep},
		Low:  &rotationv1.Route{Nobody: true, WaitUntil: timestamppb.New(morning), Explanation: "nobody within working hours can receive"}})
	rec := &notifiertest.Recorder{}
	eng := e.dispatcher(t, deliver.Config{RateLimit: -1}, rec)
	page := heroRequest("night-page")
	page.Urgency = notify.Page
	for _, req := range []deliver.Request{page, heroRequest("night-ping"), heroRequest("night-ping-acked")} {
		if _, _, err := eng.Notify(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	if sent := rec.Sent(); len(sent) != 1 || sent[0].Urgency != notify.Page {
		t.Fatalf("sent at night %+v, want the page only", sent)
	}
	if _, err := eng.Acknowledge(ctx, deliver.Ack{ConversationID: "conv-night-ping-acked", Actor: "bob", Source: "test"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(morning.Sub(e.clock.Now()) - time.Second)
	if n, err := eng.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("a second before 08:00 the sweep attempted %d (%v)", n, err)
	}
	e.clock.Advance(time.Second)
	if _, err := eng.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	sent := rec.Sent()
	if len(sent) != 2 || sent[1].Urgency != notify.Ping || sent[1].Recipient.PersonID != "alice" || sent[1].ConversationID != "conv-night-ping" {
		t.Fatalf("sent %+v, want the page and, at 08:00, the unacknowledged ping to alice", sent)
	}
}

// Nobody in the backup chain can receive: with an ops channel configured,
// it is told instead of nobody.
func TestNobodyOnCallTellsTheOpsChannel(t *testing.T) {
	e := newEnv(t)
	away := &rotationv1.OnCall{Person: notifiertest.Alice, Availability: rotationv1.Availability_AVAILABILITY_TIME_OFF}
	e.rot.SetHeroAnswer(&rotationv1.WhoIsOnCallResponse{OnCall: away, Gap: true, Chain: []*rotationv1.OnCall{away},
		High: &rotationv1.Route{Nobody: true, Explanation: "nobody can receive: alice is on time off"}, Low: &rotationv1.Route{Nobody: true}})
	rec := &notifiertest.Recorder{}
	eng := e.dispatcher(t, deliver.Config{OpsChannel: "#support-ops"}, rec)
	req := heroRequest("nobody")
	req.Urgency = notify.Page
	if _, _, err := eng.Notify(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	sent := rec.Sent()
	if len(sent) != 1 || sent[0].Recipient.SlackChannel != "#support-ops" || sent[0].Recipient.PersonID != "" {
		t.Fatalf("sent %+v, want one message to the ops channel", sent)
	}
}
