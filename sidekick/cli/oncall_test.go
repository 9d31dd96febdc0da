package cli

import (
	"encoding/json"
	"strings"
	"testing"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// The hero on time off: the table says so in the row, names who a page
// and a ping reach instead, and prints the gap below it, as loudly as
// --json says gap: true.
func TestOnCallTableShowsGapsAndWhoReceives(t *testing.T) {
	h := newHarness(t)
	alice := &rotationv1.OnCall{
		Person: &rotationv1.Person{Id: "alice", Name: "Alice"}, Reason: rotationv1.Reason_REASON_ROTATION,
		Shift:        &rotationv1.Shift{RotationId: "hero", Start: ts("2026-03-02T09:00:00Z"), End: ts("2026-03-09T09:00:00Z")},
		Availability: rotationv1.Availability_AVAILABILITY_TIME_OFF, AvailabilityDetail: "on time off (2026-03-02..2026-03-04, conference)",
	}
	farah := &rotationv1.OnCall{Person: &rotationv1.Person{Id: "farah"}, Reason: rotationv1.Reason_REASON_CATCHER,
		Availability: rotationv1.Availability_AVAILABILITY_AVAILABLE}
	h.respond("WhoIsOnCall", &rotationv1.WhoIsOnCallResponse{
		OnCall: alice, Gap: true, GapReason: "alice is on duty in hero but on time off (2026-03-02..2026-03-04, conference)",
		Chain: []*rotationv1.OnCall{alice, farah},
		High:  &rotationv1.Route{Receiver: farah, ReceiverIndex: 1, Explanation: "farah (catcher) receives: alice (rotation) is on time off"},
		Low:   &rotationv1.Route{Receiver: farah, ReceiverIndex: 1},
	})
	out, err := h.run(t, "oncall", "--rotation", "hero", "--at", "2026-03-03 12:00")
	if err != nil {
		t.Fatal(err)
	}
	want := `ROLE      TEAM  ON DUTY                     UNTIL                 PAGE GOES TO     PING GOES TO
rotation  -     alice (rotation): TIME OFF  2026-03-09 09:00 UTC  farah (catcher)  farah (catcher)
GAP rotation hero: alice is on duty in hero but on time off (2026-03-02..2026-03-04, conference)
    page: farah (catcher) receives: alice (rotation) is on time off
`
	if out != want {
		t.Fatalf("table:\n%s\nwant:\n%s", out, want)
	}

	out, err = h.run(t, "oncall", "--rotation", "hero", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got onCallJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !got.Gap || got.Availability != "time_off" || got.Page.Person != "farah" || got.Ping.Person != "farah" || len(got.Chain) != 2 {
		t.Errorf("--json: %s", out)
	}

	// Nobody at all: said below the table, and the cells say NOBODY or
	// when a ping will be sent.
	h.respond("WhoIsOnCall", &rotationv1.WhoIsOnCallResponse{
		OnCall: alice, Gap: true, GapReason: "alice is on time off", Chain: []*rotationv1.OnCall{alice},
		High: &rotationv1.Route{Nobody: true, Explanation: "nobody can receive: alice (rotation) is on time off"},
		Low:  &rotationv1.Route{Nobody: true, WaitUntil: ts("2026-03-05T09:00:00Z")},
	})
	out, err = h.run(t, "oncall", "--rotation", "hero")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"NOBODY  ", "waits until 2026-03-05 09:00 UTC", "GAP rotation hero: alice is on time off",
		"NOBODY can receive a page for rotation hero: nobody can receive: alice (rotation) is on time off"} {
		if !strings.Contains(out, s) {
			t.Errorf("nobody: missing %q in\n%s", s, out)
		}
	}
}
