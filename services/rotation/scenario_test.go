package rotation

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/pg/pgtest"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// handbookOrg is testdata/org.yaml: hero rotation alice, bob, carol, eve,
// weekly from Monday 5 January 2026 09:00 London; alice is on Platform,
// whose secondary rotation is gus, dmitri, alice (New York); bob and eve are
// on Core Experience (secondary eve, bob).
func handbookOrg(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/org.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestHandbookDayOffScenario is the handbook's scenario end to end, through
// the service's gRPC API (the production server, with its bearer token) and
// Postgres:
//
// Alice is Support Hero the week of Monday 30 March 2026 and takes
// Wednesday 1 April off. Bob, next week's hero, covers it and alice covers
// Wednesday 8 April for him: a swap, recorded as two overrides. The hero
// on each day is right, the order of the following weeks is unchanged, and
// during her hero week alice is Platform's secondary (DERIVED), with the
// rotation's own secondary as backup in `also`. A second replica sees the
// same schedule.
func TestHandbookDayOffScenario(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	london, _ := time.LoadLocation("Europe/London")
	at := func(month time.Month, day, hour int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, month, day, hour, 0, 0, 0, london))
	}
	now := time.Date(2026, 3, 23, 10, 0, 0, 0, london) // a week before, planning
	svc := newService(t, url, clock.NewFake(now))
	c := serve(t, svc)

	if _, err := c.ApplyConfig(ctx, &rotationv1.ApplyConfigRequest{Config: handbookOrg(t)}); err != nil {
		t.Fatal(err)
	}
	hero := func(ts *timestamppb.Timestamp) *rotationv1.OnCall {
		t.Helper()
		resp, err := c.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: ts})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetOnCall()
	}
	heroShifts := func() string {
		t.Helper()
		resp, err := c.ListShifts(ctx, &rotationv1.ListShiftsRequest{Rotation: "hero", From: at(3, 16, 12), To: at(5, 11, 12)})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, sh := range resp.GetShifts() {
			out = append(out, sh.GetPersonId()+"@"+sh.GetStart().AsTime().In(london).Format("01-02T15"))
		}
		return strings.Join(out, " ")
	}

	// Before: alice holds the week of 30 March, bob the week of 6 April.
	if got := heroShifts(); got != "carol@03-16T09 eve@03-23T09 alice@03-30T09 bob@04-06T09 carol@04-13T09 eve@04-20T09 alice@04-27T09 bob@05-04T09 carol@05-11T09" {
		t.Fatalf("hero shifts before the swap: %s", got)
	}
	if p := hero(at(4, 1, 12)).GetPerson().GetId(); p != "alice" {
		t.Fatalf("hero on 1 April before the swap: %s", p)
	}

	// The swap: alice gives Wednesday 1 April to bob, bob gives Wednesday
	// 8 April to alice.
	swap, err := c.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{
		Rotation: "hero",
		PersonA:  "alice", ShiftAStart: at(4, 1, 9), ShiftAEnd: at(4, 2, 9),
		PersonB: "bob", ShiftBStart: at(4, 8, 9), ShiftBEnd: at(4, 9, 9),
		Note: "alice: day off",
	})
	if err != nil {
		t.Fatal(err)
	}
	ovs := swap.GetOverrides()
	if len(ovs) != 2 || swap.GetSwapId() == "" ||
		ovs[0].GetPersonId() != "alice" || ovs[0].GetWithPersonId() != "bob" || ovs[1].GetPersonId() != "bob" || ovs[1].GetWithPersonId() != "alice" {
		t.Fatalf("swap: %v", swap)
	}
	for _, o := range ovs {
		if o.GetKind() != rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE || o.GetSwapId() != swap.GetSwapId() || o.GetNote() != "alice: day off" {
			t.Errorf("swap side %v", o)
		}
	}
	// Stored as two overrides, one per side.
	var stored int
	if err := svc.deps.Pool.QueryRow(ctx, `SELECT count(*) FROM overrides WHERE swap_id = $1 AND kind = 'replace'`, swap.GetSwapId()).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 2 {
		t.Fatalf("%d overrides stored for the swap, want 2", stored)
	}

	replica := newService(t, url, clock.NewFake(now))
	for name, c := range map[string]rotationv1.RotationServiceClient{"replica a": c, "replica b": serve(t, replica)} {
		t.Run(name, func(t *testing.T) {
			who := func(req *rotationv1.WhoIsOnCallRequest) *rotationv1.WhoIsOnCallResponse {
				t.Helper()
				resp, err := c.WhoIsOnCall(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				return resp
			}
			for _, tc := range []struct {
				at        *timestamppb.Timestamp
				want      string
				reason    rotationv1.Reason
				scheduled string
			}{
				{at(3, 31, 12), "alice", rotationv1.Reason_REASON_ROTATION, ""},
				{at(4, 1, 8), "alice", rotationv1.Reason_REASON_ROTATION, ""}, // before the swapped day starts
				{at(4, 1, 12), "bob", rotationv1.Reason_REASON_SWAP, "alice"},
				{at(4, 2, 12), "alice", rotationv1.Reason_REASON_ROTATION, ""},
				{at(4, 7, 12), "bob", rotationv1.Reason_REASON_ROTATION, ""},
				{at(4, 8, 12), "alice", rotationv1.Reason_REASON_SWAP, "bob"},
				{at(4, 9, 12), "bob", rotationv1.Reason_REASON_ROTATION, ""},
			} {
				oc := who(&rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: tc.at}).GetOnCall()
				if oc.GetPerson().GetId() != tc.want || oc.GetReason() != tc.reason || oc.GetShift().GetScheduledPersonId() != tc.scheduled {
					t.Errorf("hero at %s: %s (%v, for %q), want %s (%v, for %q)", tc.at.AsTime().In(london), oc.GetPerson().GetId(), oc.GetReason(),
						oc.GetShift().GetScheduledPersonId(), tc.want, tc.reason, tc.scheduled)
				}
			}
			// The swapped day is exactly Wednesday 09:00 to Thursday 09:00.
			sh := who(&rotationv1.WhoIsOnCallRequest{At: at(4, 1, 12)}).GetOnCall().GetShift()
			if !sh.GetStart().AsTime().Equal(at(4, 1, 9).AsTime()) || !sh.GetEnd().AsTime().Equal(at(4, 2, 9).AsTime()) {
				t.Errorf("bob's swapped shift %s..%s", sh.GetStart().AsTime(), sh.GetEnd().AsTime())
			}

			// The derived rule: alice is Platform's secondary during her
			// hero week; the rotation's own secondary (gus, New York handoff
			// at 09:00 EDT = 14:00 London) is the backup in also.
			for _, ts := range []*timestamppb.Timestamp{at(3, 31, 12), at(4, 2, 12), at(4, 3, 23), at(4, 5, 20)} {
				resp := who(&rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: "platform", At: ts})
				oc, also := resp.GetOnCall(), resp.GetAlso()
				if oc.GetPerson().GetId() != "alice" || oc.GetReason() != rotationv1.Reason_REASON_DERIVED || oc.GetShift().GetRotationId() != "hero" {
					t.Errorf("platform secondary at %s: %v", ts.AsTime().In(london), oc)
				}
				if len(also) != 1 || also[0].GetPerson().GetId() != "gus" || also[0].GetReason() != rotationv1.Reason_REASON_ROTATION || also[0].GetShift().GetRotationId() != "platform-secondary" {
					t.Errorf("platform backup at %s: %v", ts.AsTime().In(london), also)
				}
			}
			// On the swapped day bob is hero, so he is Core Experience's
			// secondary (eve backing him up) and Platform has its own.
			if resp := who(&rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: "core-experience", At: at(4, 1, 12)}); resp.GetOnCall().GetPerson().GetId() != "bob" ||
				resp.GetOnCall().GetReason() != rotationv1.Reason_REASON_DERIVED || len(resp.GetAlso()) != 1 || resp.GetAlso()[0].GetPerson().GetId() != "eve" {
				t.Errorf("core-experience secondary on 1 April: %v", resp)
			}
			if resp := who(&rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: "platform", At: at(4, 1, 12)}); resp.GetOnCall().GetPerson().GetId() != "gus" ||
				resp.GetOnCall().GetReason() != rotationv1.Reason_REASON_ROTATION || len(resp.GetAlso()) != 0 {
				t.Errorf("platform secondary on 1 April: %v", resp)
			}
			// And on 8 April alice is Platform's secondary again, for the day.
			if resp := who(&rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: "platform", At: at(4, 8, 12)}); resp.GetOnCall().GetPerson().GetId() != "alice" ||
				resp.GetOnCall().GetReason() != rotationv1.Reason_REASON_DERIVED || len(resp.GetAlso()) != 1 || resp.GetAlso()[0].GetPerson().GetId() != "dmitri" {
				t.Errorf("platform secondary on 8 April: %v", resp)
			}
			// On 9 April bob is hero again: Platform has its own (dmitri's week).
			if resp := who(&rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: "platform", At: at(4, 9, 12)}); resp.GetOnCall().GetPerson().GetId() != "dmitri" ||
				resp.GetOnCall().GetReason() != rotationv1.Reason_REASON_ROTATION || len(resp.GetAlso()) != 0 {
				t.Errorf("platform secondary on 9 April: %v", resp)
			}

			// The order of the weeks is unchanged: only the two days moved.
			resp, err := c.ListShifts(ctx, &rotationv1.ListShiftsRequest{Rotation: "hero", From: at(3, 16, 12), To: at(5, 11, 12)})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, sh := range resp.GetShifts() {
				got = append(got, sh.GetPersonId()+"@"+sh.GetStart().AsTime().In(london).Format("01-02T15"))
			}
			want := "carol@03-16T09 eve@03-23T09 alice@03-30T09 bob@04-01T09 alice@04-02T09 bob@04-06T09 alice@04-08T09 bob@04-09T09 carol@04-13T09 eve@04-20T09 alice@04-27T09 bob@05-04T09 carol@05-11T09"
			if strings.Join(got, " ") != want {
				t.Errorf("hero shifts after the swap:\n got %s\nwant %s", strings.Join(got, " "), want)
			}

			// Platform's shift list shows alice's DERIVED stretches beside
			// the rotation's own shifts (handing off at 09:00 New York: 13:00
			// London on 23 March, 14:00 once London is on summer time too).
			team, err := c.ListShifts(ctx, &rotationv1.ListShiftsRequest{Team: "platform", From: at(3, 30, 12), To: at(4, 10, 12)})
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, sh := range team.GetShifts() {
				got = append(got, sh.GetPersonId()+"/"+strings.ToLower(strings.TrimPrefix(sh.GetReason().String(), "REASON_"))+"@"+sh.GetStart().AsTime().In(london).Format("01-02T15"))
			}
			want = "alice/rotation@03-23T13 alice/derived@03-30T09 gus/rotation@03-30T14 alice/derived@04-02T09 dmitri/rotation@04-06T14 alice/derived@04-08T09"
			if strings.Join(got, " ") != want {
				t.Errorf("platform shifts:\n got %s\nwant %s", strings.Join(got, " "), want)
			}
		})
	}

	// The same swap cannot be recorded twice: alice no longer holds
	// Wednesday.
	_, err = c.SwapShifts(ctx, &rotationv1.SwapShiftsRequest{
		Rotation: "hero", PersonA: "alice", ShiftAStart: at(4, 1, 9), ShiftAEnd: at(4, 2, 9),
		PersonB: "bob", ShiftBStart: at(4, 8, 9), ShiftBEnd: at(4, 9, 9),
	})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "alice is not on duty") {
		t.Errorf("second identical swap: %v", err)
	}
}
