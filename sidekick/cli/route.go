package cli

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/grpcx"
)

// router is a grpc.ClientConnInterface that sends each call to the service
// that serves it: in dev every service shares one address, in Kubernetes
// triage, rotation and notifier each have their own. --addr (or
// SIDEKICK_ADDR) is the address of all of them unless a per-service
// variable (SIDEKICK_TRIAGE_ADDR, SIDEKICK_ROTATION_ADDR,
// SIDEKICK_NOTIFIER_ADDR) names another; an explicit --addr wins over all.
type router struct {
	token string
	tls   *tls.Config // nil: plaintext
	// addrs maps a protobuf package ("sidekick.triage.v1") to an address.
	addrs    map[string]string
	fallback string

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

var _ grpc.ClientConnInterface = (*router)(nil)

func (r *router) conn(method string) (*grpc.ClientConn, error) {
	addr := r.fallback
	// method is "/sidekick.triage.v1.ConversationService/List…".
	if svc, _, ok := strings.Cut(strings.TrimPrefix(method, "/"), "/"); ok {
		if i := strings.LastIndex(svc, "."); i > 0 {
			if a, ok := r.addrs[svc[:i]]; ok && a != "" {
				addr = a
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cc, ok := r.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpcx.Dial(addr, grpcx.DialOptions{Token: r.token, TLS: r.tls})
	if err != nil {
		return nil, err
	}
	if r.conns == nil {
		r.conns = map[string]*grpc.ClientConn{}
	}
	r.conns[addr] = cc
	return cc, nil
}

// Invoke implements grpc.ClientConnInterface.
func (r *router) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	cc, err := r.conn(method)
	if err != nil {
		return err
	}
	return cc.Invoke(ctx, method, args, reply, opts...)
}

// NewStream implements grpc.ClientConnInterface.
func (r *router) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cc, err := r.conn(method)
	if err != nil {
		return nil, err
	}
	return cc.NewStream(ctx, desc, method, opts...)
}

// Close closes every connection opened.
func (r *router) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for _, cc := range r.conns {
		if err := cc.Close(); err != nil && first == nil {
			first = fmt.Errorf("close: %w", err)
		}
	}
	r.conns = nil
	return first
}
