package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
)

// TestErrorCodes: the engine's errors, however wrapped, map to one status
// code each; anything else is Internal.
func TestErrorCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("load conversation c1: %w", engine.ErrNotFound), codes.NotFound},
		{fmt.Errorf("note text is required: %w", engine.ErrInvalid), codes.InvalidArgument},
		{fmt.Errorf("conversation c1 is closed: %w", engine.ErrConflict), codes.FailedPrecondition},
		{fmt.Errorf("query: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{errors.New("connection refused"), codes.Internal},
	} {
		if got := status.Code(toStatus(tc.err)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.err, got, tc.want)
		}
	}
	if toStatus(nil) != nil {
		t.Error("no error became a status")
	}
}

// TestPaging: a page token is the offset of the next page; a token that
// is not one, or a negative page size, is refused before the engine is
// asked.
func TestPaging(t *testing.T) {
	for _, n := range []int{0, 1, 100, 123456} {
		if got, err := pageOffset(pageToken(n)); err != nil || got != n {
			t.Errorf("offset %d came back as %d (%v)", n, got, err)
		}
	}
	if got, err := pageOffset(""); err != nil || got != 0 {
		t.Errorf("no token: %d (%v), want the first page", got, err)
	}
	s := New(nil) // the engine is not reached
	for _, req := range []*triagev1.ListConversationsRequest{
		{PageSize: -1},
		{PageToken: "not base64!"},
		{PageToken: pageToken(-5)},
		{PageToken: "YWJj"}, // "abc"
	} {
		if _, err := s.ListConversations(context.Background(), req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%v: %v, want InvalidArgument", req, err)
		}
	}
}
