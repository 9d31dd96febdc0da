package app

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

type secretConfig struct {
	Secret string `env:"SIDEKICK_TEST_SIGNING_SECRET,required,notEmpty"`
}

func never(context.Context, *Kit) (Service, error) {
	panic("the constructor must not run when configuration is incomplete")
}

func TestMissingSecretFailsBeforeConnecting(t *testing.T) {
	// SIDEKICK_NATS_URL points nowhere: the error must be about the secret,
	// found before any connection is attempted.
	env := []string{"SIDEKICK_NATS_URL=nats://127.0.0.1:1"}
	err := MainIO(context.Background(), Spec{Name: "ingest-test", Config: &secretConfig{}, Build: never}, nil, env, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "SIDEKICK_TEST_SIGNING_SECRET") {
		t.Fatalf("want an error naming SIDEKICK_TEST_SIGNING_SECRET, got %v", err)
	}
}

func TestGRPCServiceNeedsTokenOutsideDev(t *testing.T) {
	spec := Spec{Name: "rotation-test", GRPC: true, Build: never}
	err := MainIO(context.Background(), spec, nil, []string{"SIDEKICK_NATS_URL=nats://127.0.0.1:1"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "SIDEKICK_GRPC_TOKEN") {
		t.Fatalf("want an error naming SIDEKICK_GRPC_TOKEN, got %v", err)
	}
}

func TestDatabaseServiceNeedsURL(t *testing.T) {
	spec := Spec{Name: "triage-test", Schema: "triage", GRPC: true, Build: never}
	env := []string{"SIDEKICK_NATS_URL=nats://127.0.0.1:1", "SIDEKICK_DEV=true"}
	err := MainIO(context.Background(), spec, nil, env, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "SIDEKICK_DATABASE_URL") {
		t.Fatalf("want an error naming SIDEKICK_DATABASE_URL, got %v", err)
	}
}

func TestArguments(t *testing.T) {
	var out bytes.Buffer
	if err := MainIO(context.Background(), Spec{Name: "x", Build: never}, []string{"version"}, nil, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "x ") {
		t.Fatalf("version output %q", out.String())
	}
	if err := MainIO(context.Background(), Spec{Name: "x", Build: never}, []string{"bogus"}, nil, &out); err == nil {
		t.Fatal("unknown argument accepted")
	}
}

func TestMigrateNeedsOnlyTheDatabase(t *testing.T) {
	spec := Spec{Name: "triage-test", Schema: "triage", GRPC: true, Config: &secretConfig{}, Build: never}
	// No token, no service secret: migrate still goes as far as the
	// database, and names it when it is missing.
	err := MainIO(context.Background(), spec, []string{"migrate"}, nil, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "SIDEKICK_DATABASE_URL") {
		t.Fatalf("want an error naming SIDEKICK_DATABASE_URL, got %v", err)
	}
}

func TestMemoryLimitFollowsTheContainer(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	logger := slog.New(slog.DiscardHandler)

	if got := setMemoryLimit(logger, memlimit.Limit(1<<30)); got != 966367641 || debug.SetMemoryLimit(-1) != 966367641 {
		t.Fatalf("limit %d (runtime %d), want 90%% of 1 GiB = 966367641", got, debug.SetMemoryLimit(-1))
	}
	// No container limit: no soft limit either.
	if got := setMemoryLimit(logger, func() (uint64, error) { return 0, memlimit.ErrNoLimit }); got != math.MaxInt64 {
		t.Fatalf("without a limit: %d, want none (MaxInt64)", got)
	}
	// GOMEMLIMIT set by the operator wins.
	debug.SetMemoryLimit(123 << 20)
	t.Setenv("GOMEMLIMIT", "123MiB")
	if got := setMemoryLimit(logger, memlimit.Limit(1<<30)); got != 123<<20 || debug.SetMemoryLimit(-1) != 123<<20 {
		t.Fatalf("with GOMEMLIMIT: %d, want it left at 123 MiB", got)
	}
}
