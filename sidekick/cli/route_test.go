package cli

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

type teamsOnly struct {
	rotationv1.UnimplementedRotationServiceServer
	teams []*rotationv1.Team
}

func (s *teamsOnly) ListTeams(context.Context, *rotationv1.ListTeamsRequest) (*rotationv1.ListTeamsResponse, error) {
	return &rotationv1.ListTeamsResponse{Teams: s.teams}, nil
}

type convsOnly struct {
	triagev1.UnimplementedConversationServiceServer
}

func (convsOnly) ListConversations(context.Context, *triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
	return &triagev1.ListConversationsResponse{}, nil
}

func listen(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// TestPerServiceAddresses: with rotation and triage on different addresses
// (as in Kubernetes), each call goes to the service that serves it.
func TestPerServiceAddresses(t *testing.T) {
	rot := listen(t, func(s *grpc.Server) {
		rotationv1.RegisterRotationServiceServer(s, &teamsOnly{teams: []*rotationv1.Team{{Id: "platform", Name: "Platform"}}})
	})
	tri := listen(t, func(s *grpc.Server) { triagev1.RegisterConversationServiceServer(s, convsOnly{}) })
	env := []string{"SIDEKICK_ADDR=127.0.0.1:1", "SIDEKICK_ROTATION_ADDR=" + rot, "SIDEKICK_TRIAGE_ADDR=" + tri, "USER=test"}
	run := func(args ...string) error {
		return Run(context.Background(), args, IO{Stdout: &discardWriter{}, Stderr: &discardWriter{}, Environ: env})
	}
	if err := run("teams"); err != nil {
		t.Fatalf("teams via SIDEKICK_ROTATION_ADDR: %v", err)
	}
	if err := run("conversations", "list"); err != nil {
		t.Fatalf("conversations via SIDEKICK_TRIAGE_ADDR: %v", err)
	}
	// An explicit --addr sends everything there.
	if err := run("teams", "--addr", tri, "--rpc-timeout", "2s"); err == nil {
		t.Fatal("--addr did not override SIDEKICK_ROTATION_ADDR")
	}
}

type discardWriter struct{}

func (*discardWriter) Write(p []byte) (int, error) { return len(p), nil }
