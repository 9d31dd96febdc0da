package grpcx

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// register adds a test service whose Call method runs fn.
func register(s *Server, fn func(context.Context) (any, error)) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "sidekick.test.v1.Test",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "Call",
			Handler: func(_ any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
				req := &healthpb.HealthCheckRequest{}
				if err := dec(req); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, _ any) (any, error) { return fn(ctx) }
				return in(ctx, req, &grpc.UnaryServerInfo{FullMethod: "/sidekick.test.v1.Test/Call"}, h)
			},
		}},
	}, struct{}{})
}

func call(cc grpc.ClientConnInterface) error {
	return cc.Invoke(context.Background(), "/sidekick.test.v1.Test/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
}

// serve starts a server with the test service on a loopback port and
// returns its address.
func serve(t *testing.T, o ServerOptions, fn func(context.Context) (any, error)) (*Server, string) {
	t.Helper()
	s, err := NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	register(s, fn)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, lis, time.Second, o.Logger); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, lis.Addr().String()
}

func TestNewServerRequiresTokenOutsideDev(t *testing.T) {
	if _, err := NewServer(ServerOptions{}); err != ErrNoToken {
		t.Fatalf("want ErrNoToken, got %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	ok := func(context.Context) (any, error) { return &healthpb.HealthCheckResponse{}, nil }
	_, addr := serve(t, ServerOptions{Token: "s3cret"}, ok)
	for _, tc := range []struct {
		name  string
		token string
		want  codes.Code
	}{
		{"right token", "s3cret", codes.OK},
		{"wrong token", "nope", codes.Unauthenticated},
		{"no token", "", codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := Dial(addr, DialOptions{Token: tc.token})
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			if got := status.Code(call(cc)); got != tc.want {
				t.Fatalf("want %v, got %v", tc.want, got)
			}
		})
	}
}

func TestHealthNeedsNoToken(t *testing.T) {
	_, addr := serve(t, ServerOptions{Token: "s3cret"}, nil)
	cc, err := Dial(addr, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("status %v", resp.GetStatus())
	}
}

func TestPanicIsRecovered(t *testing.T) {
	reported := make(chan any, 1)
	_, addr := serve(t, ServerOptions{Insecure: true, OnPanic: func(p any) { reported <- p }},
		func(context.Context) (any, error) { panic("boom") })
	cc, err := Dial(addr, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := call(cc); status.Code(err) != codes.Internal {
		t.Fatalf("want Internal after a panic, got %v", err)
	}
	if p := <-reported; p != "boom" {
		t.Fatalf("OnPanic got %v", p)
	}
	// The server keeps serving after the panic.
	if _, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("server unusable after a panic: %v", err)
	}
}
