package cli

import (
	"strings"
	"testing"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// A time without a zone is the rotation's, as in the organisation file;
// with Z or an offset it is what it says, and rotation is not asked.
func TestOverrideTimesInTheRotationsZone(t *testing.T) {
	h := newHarness(t)
	h.respond("ListRotations", &rotationv1.ListRotationsResponse{Rotations: []*rotationv1.Rotation{
		{Id: "other", Timezone: "Asia/Tokyo"}, {Id: "hero", Timezone: "Europe/London"},
	}})
	created := &rotationv1.Override{Id: "ovr-1", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_ADD, WithPersonId: "carol"}
	h.respond("CreateOverride", &rotationv1.CreateOverrideResponse{Override: created})
	// June: London is UTC+1.
	if _, err := h.run(t, "override", "--rotation", "hero", "--start", "2026-06-04 09:00", "--end", "2026-06-05T09:00:00Z", "--add", "carol"); err != nil {
		t.Fatal(err)
	}
	h.want(t, "CreateOverride", &rotationv1.CreateOverrideRequest{Override: &rotationv1.Override{
		RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_ADD, WithPersonId: "carol",
		Start: ts("2026-06-04T08:00:00Z"), End: ts("2026-06-05T09:00:00Z"),
	}})
	asked := h.total()
	if _, err := h.run(t, "override", "--rotation", "hero", "--start", "2026-06-04T09:00:00+01:00", "--end", "2026-06-05T09:00:00Z", "--add", "carol"); err != nil {
		t.Fatal(err)
	}
	if got := h.total() - asked; got != 1 {
		t.Errorf("%d calls for times with zones, want CreateOverride alone", got)
	}
	if _, err := h.run(t, "override", "--rotation", "nope", "--start", "2026-06-04", "--end", "2026-06-05", "--add", "carol"); err == nil || !strings.Contains(err.Error(), `unknown rotation "nope"`) {
		t.Errorf("an unknown rotation: %v", err)
	}
}

func TestOverridesListAndDelete(t *testing.T) {
	h := newHarness(t)
	h.respond("ListRotations", &rotationv1.ListRotationsResponse{Rotations: []*rotationv1.Rotation{{Id: "hero", Timezone: "Europe/London"}}})
	h.respond("ListOverrides", &rotationv1.ListOverridesResponse{Overrides: []*rotationv1.Override{
		{Id: "cfg-1", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_ADD, WithPersonId: "carol",
			Start: ts("2026-06-01T08:00:00Z"), End: ts("2026-06-02T08:00:00Z"), FromFile: true},
		{Id: "swap-9-a", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "bob", WithPersonId: "alice",
			Start: ts("2026-06-03T08:00:00Z"), End: ts("2026-06-04T08:00:00Z"), SwapId: "swap-9", Note: "dentist"},
	}})
	out, err := h.run(t, "overrides", "list", "--rotation", "hero", "--from", "2026-06-01", "--to", "2026-07-01")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "ListOverrides", &rotationv1.ListOverridesRequest{Rotation: "hero", From: ts("2026-05-31T23:00:00Z"), To: ts("2026-06-30T23:00:00Z")})
	want := `ID        ROTATION  START                 END                   WHAT                                  SWAP    FROM  NOTE
cfg-1     hero      2026-06-01 08:00 UTC  2026-06-02 08:00 UTC  carol is added to whoever is on duty  -       file  
swap-9-a  hero      2026-06-03 08:00 UTC  2026-06-04 08:00 UTC  alice replaces bob                    swap-9  api   dentist
`
	if out != want {
		t.Fatalf("list:\n%s\nwant:\n%s", out, want)
	}
	// Without a rotation, times without a zone are UTC.
	if _, err := h.run(t, "overrides", "list", "--from", "2026-06-01"); err != nil {
		t.Fatal(err)
	}
	h.want(t, "ListOverrides", &rotationv1.ListOverridesRequest{From: ts("2026-06-01T00:00:00Z")})

	h.respond("DeleteOverride", &rotationv1.DeleteOverrideResponse{Deleted: []*rotationv1.Override{
		{Id: "swap-9-a", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "bob", WithPersonId: "alice",
			Start: ts("2026-06-03T08:00:00Z"), End: ts("2026-06-04T08:00:00Z"), SwapId: "swap-9"},
		{Id: "swap-9-b", RotationId: "hero", Kind: rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, PersonId: "alice", WithPersonId: "bob",
			Start: ts("2026-06-10T08:00:00Z"), End: ts("2026-06-11T08:00:00Z"), SwapId: "swap-9"},
	}})
	out, err = h.run(t, "overrides", "delete", "swap-9-a")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "DeleteOverride", &rotationv1.DeleteOverrideRequest{Id: "swap-9-a"})
	if !strings.Contains(out, "deleted override swap-9-a on hero: alice replaces bob") || !strings.Contains(out, "deleted override swap-9-b on hero: bob replaces alice") {
		t.Fatalf("delete printed:\n%s", out)
	}
	if _, err := h.run(t, "overrides", "delete"); err == nil {
		t.Error("delete without an id was accepted")
	}
}
