package grpcapi

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// Overrides are objects: a swap sent twice is one swap, the list shows
// file and API overrides by start, a swap's sides are deleted together by
// either id, and the file's are refused.
func TestOverridesAreObjects(t *testing.T) {
	b := newBackend(t)
	// One override of the organisation file: carol helps in May.
	file := schedule.Override{ID: "cfg-may", Rotation: "hero", Kind: schedule.Add, With: "carol",
		Start: time.Date(2026, 5, 4, 9, 0, 0, 0, london), End: time.Date(2026, 5, 5, 9, 0, 0, 0, london)}
	if err := b.AddOverrides(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	b.fileIDs[file.ID] = true
	s := New(b, func() time.Time { return monday })
	ctx := context.Background()
	wed, nextWed := monday.AddDate(0, 0, 2), monday.AddDate(0, 0, 9)
	req := &rotationv1.SwapShiftsRequest{Rotation: "hero", PersonA: "alice", PersonB: "bob", Note: "dentist",
		ShiftAStart: ts(wed), ShiftAEnd: ts(wed.AddDate(0, 0, 1)), ShiftBStart: ts(nextWed), ShiftBEnd: ts(nextWed.AddDate(0, 0, 1))}
	first, err := s.SwapShifts(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.SwapShifts(ctx, req)
	if err != nil || !proto.Equal(first, again) {
		t.Fatalf("the same swap again: %v %v, want %v", again, err, first)
	}
	if n := len(b.cfg.Overrides); n != countFile(b)+2 {
		t.Fatalf("%d overrides stored, want the file's and one swap's two sides", n)
	}
	// A different note is a different request; alice no longer holds
	// Wednesday, so it is refused rather than recorded twice.
	other := proto.Clone(req).(*rotationv1.SwapShiftsRequest)
	other.Note = "dentist, again"
	_, err = s.SwapShifts(ctx, other)
	wantCode(t, "a second swap of the same day", err, codes.FailedPrecondition)

	list, err := s.ListOverrides(ctx, &rotationv1.ListOverridesRequest{Rotation: "hero", From: ts(monday), To: ts(monday.AddDate(0, 0, 14))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range list.GetOverrides() {
		ids = append(ids, o.GetId())
		if o.GetFromFile() {
			t.Errorf("%s is not the file's", o.GetId())
		}
	}
	if len(ids) != 2 || ids[0] != first.GetSwapId()+"-a" || ids[1] != first.GetSwapId()+"-b" {
		t.Fatalf("listed %v, want the swap's two sides by start", ids)
	}
	all, err := s.ListOverrides(ctx, &rotationv1.ListOverridesRequest{From: ts(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), To: ts(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	fileSeen := false
	for _, o := range all.GetOverrides() {
		fileSeen = fileSeen || o.GetFromFile()
	}
	if !fileSeen || len(all.GetOverrides()) != countFile(b)+2 {
		t.Errorf("every rotation over the year: %v", all)
	}
	_, err = s.ListOverrides(ctx, &rotationv1.ListOverridesRequest{Rotation: "nope"})
	wantCode(t, "list an unknown rotation", err, codes.NotFound)

	// One side's id deletes both.
	del, err := s.DeleteOverride(ctx, &rotationv1.DeleteOverrideRequest{Id: first.GetSwapId() + "-b"})
	if err != nil || len(del.GetDeleted()) != 2 {
		t.Fatalf("delete one side of a swap: %v %v", del, err)
	}
	if n := len(b.cfg.Overrides); n != countFile(b) {
		t.Errorf("%d overrides left, want the file's", n)
	}
	_, err = s.DeleteOverride(ctx, &rotationv1.DeleteOverrideRequest{Id: first.GetSwapId()})
	wantCode(t, "delete it again", err, codes.NotFound)
	_, err = s.DeleteOverride(ctx, &rotationv1.DeleteOverrideRequest{})
	wantCode(t, "delete without an id", err, codes.InvalidArgument)
	_, err = s.DeleteOverride(ctx, &rotationv1.DeleteOverrideRequest{Id: "cfg-may"})
	wantCode(t, "delete the file's override", err, codes.FailedPrecondition)
	// Deleted, the swap can be made again: alice holds Wednesday again.
	if _, err := s.SwapShifts(ctx, req); err != nil {
		t.Errorf("the swap after its deletion: %v", err)
	}

	rots, err := s.ListRotations(ctx, &rotationv1.ListRotationsRequest{})
	if err != nil || len(rots.GetRotations()) == 0 || rots.GetRotations()[0].GetTimezone() == "" {
		t.Errorf("rotations: %v %v", rots, err)
	}
}

func countFile(b *fakeBackend) int { return len(b.fileIDs) }
