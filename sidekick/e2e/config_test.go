package e2e

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestServiceRefusesToStartWithoutSecret builds each service binary and
// runs it without its required secret: it must exit non-zero and name the
// variable, before trying to reach NATS or Postgres.
func TestServiceRefusesToStartWithoutSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the service binaries")
	}
	cases := []struct {
		service string
		want    string
	}{
		{"ingest-slack", "SIDEKICK_SLACK_SIGNING_SECRET"},
		{"ingest-github", "SIDEKICK_GITHUB_WEBHOOK_SECRET"},
		{"ingest-sentry", "SIDEKICK_SENTRY_CLIENT_SECRET"},
		{"ingest-email", "SIDEKICK_EMAIL_INBOUND_TOKEN"},
		{"notifier", "SIDEKICK_DATABASE_URL"},
		{"triage", "SIDEKICK_DATABASE_URL"},
		{"rotation", "SIDEKICK_GRPC_TOKEN"},
	}
	dir := t.TempDir()
	for _, tc := range cases {
		t.Run(tc.service, func(t *testing.T) {
			bin := filepath.Join(dir, tc.service)
			build := exec.Command("go", "build", "-o", bin, "./services/"+tc.service+"/cmd/"+tc.service)
			build.Dir = filepath.Join("..", "..")
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build %s: %v\n%s", tc.service, err, out)
			}
			cmd := exec.Command(bin)
			// Only what the service would need besides the missing variable;
			// NATS points nowhere, so reaching it would be a failure too.
			cmd.Env = []string{"PATH=/usr/bin:/bin", "SIDEKICK_NATS_URL=nats://127.0.0.1:1"}
			if tc.service == "rotation" {
				cmd.Env = append(cmd.Env, "SIDEKICK_DATABASE_URL=postgres://nowhere/db")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Fatalf("%s started without %s (err %v)", tc.service, tc.want, err)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("%s: stderr does not name %s:\n%s", tc.service, tc.want, stderr.String())
			}
		})
	}
}
