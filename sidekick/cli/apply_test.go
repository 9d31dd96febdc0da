package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sidekickhq/sidekick/platform/orgfile"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	notifierconf "github.com/sidekickhq/sidekick/services/notifier/orgconf"
	triageconf "github.com/sidekickhq/sidekick/services/triage/orgconf"
	"github.com/sidekickhq/sidekick/sidekick/devstack"
)

const applyOrg = `people:
  - {id: alice, timezone: UTC}
teams:
  - {id: platform, secondary: platform-secondary}
rotations:
  - {id: platform-secondary, type: weekly, start: "2026-01-05 09:00", timezone: UTC, participants: [alice]}
`

// Rotation checks the whole file (docs/rotation.md); what it refuses is
// printed with its line and "nothing applied", and the version applied is
// named.
func TestApplyShowsWhatRotationRefuses(t *testing.T) {
	h := newHarness(t)
	path := filepath.Join(t.TempDir(), "sidekick.yaml")
	if err := os.WriteFile(path, []byte(applyOrg), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := `invalid configuration: escalation: policy "p1" (line 9): step 1: notify: unknown target "team_secondry"`
	h.fail("ApplyConfig", status.Error(codes.InvalidArgument, refused))
	_, err := h.run(t, "apply", "-f", path)
	if err == nil || err.Error() != path+": nothing applied: "+refused {
		t.Fatalf("error %v, want the refusal with the file's name", err)
	}
	h.fail("ApplyConfig", nil)
	h.respond("ApplyConfig", &rotationv1.ApplyConfigResponse{Changes: []string{"~ escalation.policies[p1].steps[1].notify: hero → team_secondary"},
		Applied: true, Version: "0123456789abcdef0123"})
	out, err := h.run(t, "apply", "-f", path)
	if want := "~ escalation.policies[p1].steps[1].notify: hero → team_secondary\napplied 1 change(s): version 0123456789ab\n"; err != nil || out != want {
		t.Fatalf("apply: %q %v, want %q", out, err, want)
	}
	h.want(t, "ApplyConfig", &rotationv1.ApplyConfigRequest{Config: []byte(applyOrg)})
}

// The demo organisation, the one `sidekick dev` runs, passes the checks
// rotation makes of the notifier's and triage's sections.
func TestDemoOrgPassesTheCheck(t *testing.T) {
	f, err := orgfile.Parse(devstack.DemoOrg)
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(notifierconf.Check(f), triageconf.Check(f)); err != nil {
		t.Fatal(err)
	}
}
