package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/sidekickhq/sidekick/platform/natsauth"
)

// TestNATSKeys: nats-keys writes a seed per user and the public keys as
// the variables the servers' users.conf refers to; naming a user makes
// only that one (a rotation), and an unknown user is refused.
func TestNATSKeys(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"nats-keys", dir}, IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatal(err)
	}
	keys, err := os.ReadFile(filepath.Join(dir, "keys.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range natsauth.UserNames() {
		seed, err := os.ReadFile(filepath.Join(dir, name+".nk"))
		if err != nil {
			t.Fatal(err)
		}
		kp, err := nkeys.FromSeed(seed)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pub, _ := kp.PublicKey()
		if line := natsauth.NKeyVar(name) + ` = "` + pub + `"`; !strings.Contains(string(keys), line) {
			t.Errorf("keys.conf lacks %s", line)
		}
	}
	rot := t.TempDir()
	if err := Run(context.Background(), []string{"nats-keys", rot, "triage"}, IO{Stdout: &out, Stderr: &out}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := os.ReadFile(filepath.Join(rot, "keys.conf")); strings.Count(string(keys), " = ") != 1 || !strings.Contains(string(keys), "SIDEKICK_NKEY_TRIAGE") {
		t.Errorf("rotating triage: keys.conf\n%s", keys)
	}
	if err := Run(context.Background(), []string{"nats-keys", rot, "triag"}, IO{Stdout: &out, Stderr: &out}); err == nil {
		t.Error("an unknown user: no error")
	}
}
