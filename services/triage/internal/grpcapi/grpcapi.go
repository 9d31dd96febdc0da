// Package grpcapi serves sidekick.triage.v1.ConversationService,
// CustomerService and ReportService over the engine, mapping its errors to
// status codes in one place.
package grpcapi

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/engine"
	"github.com/sidekickhq/sidekick/services/triage/internal/people"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// Page sizes of ListConversations.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Server implements the triage gRPC services.
type Server struct {
	triagev1.UnimplementedConversationServiceServer
	triagev1.UnimplementedCustomerServiceServer
	triagev1.UnimplementedReportServiceServer
	engine *engine.Engine
}

var (
	_ triagev1.ConversationServiceServer = (*Server)(nil)
	_ triagev1.CustomerServiceServer     = (*Server)(nil)
	_ triagev1.ReportServiceServer       = (*Server)(nil)
)

// New returns a server over e.
func New(e *engine.Engine) *Server { return &Server{engine: e} }

// Register adds the services to r.
func (s *Server) Register(r grpc.ServiceRegistrar) {
	triagev1.RegisterConversationServiceServer(r, s)
	triagev1.RegisterCustomerServiceServer(r, s)
	triagev1.RegisterReportServiceServer(r, s)
}

// toStatus maps engine errors to gRPC status codes.
func toStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, engine.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, engine.ErrConflict):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, people.ErrUnavailable):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

func pageOffset(token string) (int, error) {
	if token == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return 0, status.Error(codes.InvalidArgument, "bad page_token")
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 0 {
		return 0, status.Error(codes.InvalidArgument, "bad page_token")
	}
	return n, nil
}

func pageToken(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(offset)))
}

// filter reads the filters and paging of a ListConversations request (nil
// matches everything), asking one row more than a page to know whether
// another follows.
func (s *Server) filter(ctx context.Context, req *triagev1.ListConversationsRequest) (store.Filter, int, error) {
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return store.Filter{}, 0, status.Error(codes.InvalidArgument, "page_size must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	offset, err := pageOffset(req.GetPageToken())
	if err != nil {
		return store.Filter{}, 0, err
	}
	f := store.Filter{
		Statuses: req.GetStatuses(), Unassigned: req.GetUnassigned(), Tier: req.GetTier(), Tag: req.GetTag(),
		Channel: req.GetChannel(), Category: s.engine.CategoryFilter(req.GetCategory()), BreachedOnly: req.GetBreachedOnly(),
		CustomerID: req.GetCustomerId(), Kind: req.GetKind(), Limit: size + 1, Offset: offset,
	}
	if !f.Unassigned {
		f.Assignee = s.engine.AssigneeFilter(ctx, req.GetAssignee())
	}
	if t := req.GetOpenedFrom(); t != nil {
		f.OpenedFrom = t.AsTime()
	}
	if t := req.GetOpenedTo(); t != nil {
		f.OpenedTo = t.AsTime()
	}
	return f, size, nil
}

// ListConversations lists conversations ordered by tier, then deadline.
func (s *Server) ListConversations(ctx context.Context, req *triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
	f, size, err := s.filter(ctx, req)
	if err != nil {
		return nil, err
	}
	cs, err := s.engine.List(ctx, f)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &triagev1.ListConversationsResponse{Conversations: cs}
	if len(cs) > size {
		resp.Conversations = cs[:size]
		resp.NextPageToken = pageToken(f.Offset + size)
	}
	return resp, nil
}

// SearchConversations finds conversations by words, best match first.
func (s *Server) SearchConversations(ctx context.Context, req *triagev1.SearchConversationsRequest) (*triagev1.SearchConversationsResponse, error) {
	f, size, err := s.filter(ctx, req.GetFilter())
	if err != nil {
		return nil, err
	}
	hits, err := s.engine.Search(ctx, req.GetQuery(), f)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &triagev1.SearchConversationsResponse{}
	if len(hits) > size {
		hits = hits[:size]
		resp.NextPageToken = pageToken(f.Offset + size)
	}
	for _, h := range hits {
		resp.Hits = append(resp.Hits, &triagev1.SearchHit{
			Conversation: h.Conversation, Source: h.Source, MessageId: h.MessageID, NoteId: h.NoteID,
			Snippet: h.Snippet, Rank: h.Rank,
		})
	}
	return resp, nil
}

// GetConversation returns a conversation with its messages, notes and
// audit trail.
func (s *Server) GetConversation(ctx context.Context, req *triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
	resp, err := s.engine.Get(ctx, req.GetId())
	return resp, toStatus(err)
}

// Assign gives a conversation to a person (empty assignee unassigns).
func (s *Server) Assign(ctx context.Context, req *triagev1.AssignRequest) (*triagev1.AssignResponse, error) {
	c, err := s.engine.Assign(ctx, req.GetId(), req.GetAssignee(), req.GetActor())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.AssignResponse{Conversation: c}, nil
}

// Tag adds and removes tags and can set the categories.
func (s *Server) Tag(ctx context.Context, req *triagev1.TagRequest) (*triagev1.TagResponse, error) {
	c, err := s.engine.Tag(ctx, req.GetId(), req.GetAdd(), req.GetRemove(), req.GetCategories(), req.GetActor())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.TagResponse{Conversation: c}, nil
}

// AddNote stores a private note.
func (s *Server) AddNote(ctx context.Context, req *triagev1.AddNoteRequest) (*triagev1.AddNoteResponse, error) {
	n, err := s.engine.AddNote(ctx, req.GetId(), req.GetText(), req.GetHandoff(), req.GetActor())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.AddNoteResponse{Note: n}, nil
}

// Close closes a conversation.
func (s *Server) Close(ctx context.Context, req *triagev1.CloseRequest) (*triagev1.CloseResponse, error) {
	c, err := s.engine.Close(ctx, req.GetId(), req.GetReason(), req.GetActor())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.CloseResponse{Conversation: c}, nil
}

// Reopen opens a conversation again.
func (s *Server) Reopen(ctx context.Context, req *triagev1.ReopenRequest) (*triagev1.ReopenResponse, error) {
	c, err := s.engine.Reopen(ctx, req.GetId(), req.GetActor())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.ReopenResponse{Conversation: c}, nil
}

// Escalate publishes support.conversation.escalated.
func (s *Server) Escalate(ctx context.Context, req *triagev1.EscalateRequest) (*triagev1.EscalateResponse, error) {
	c, err := s.engine.Escalate(ctx, req.GetId(), req.GetReason(), req.GetTeam(), req.GetActor())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.EscalateResponse{Conversation: c}, nil
}

// Reply stores a staff reply and queues it to the customer on the
// conversation's own channel.
func (s *Server) Reply(ctx context.Context, req *triagev1.ReplyRequest) (*triagev1.ReplyResponse, error) {
	resp, err := s.engine.Reply(ctx, req.GetConversationId(), req.GetActor(), req.GetText())
	if err != nil {
		return nil, toStatus(err)
	}
	return resp, nil
}

// RetryOutbound sends a failed reply again.
func (s *Server) RetryOutbound(ctx context.Context, req *triagev1.RetryOutboundRequest) (*triagev1.RetryOutboundResponse, error) {
	d, err := s.engine.RetryOutbound(ctx, req.GetOutboundId(), req.GetActor())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.RetryOutboundResponse{Delivery: d}, nil
}

// UpsertCustomers imports customers; dry_run returns the changes only.
func (s *Server) UpsertCustomers(ctx context.Context, req *triagev1.UpsertCustomersRequest) (*triagev1.UpsertCustomersResponse, error) {
	changes, applied, err := s.engine.UpsertCustomers(ctx, req.GetCustomers(), req.GetDryRun())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.UpsertCustomersResponse{Changes: changes, Applied: applied}, nil
}

// GetCustomer returns a customer with its tier.
func (s *Server) GetCustomer(ctx context.Context, req *triagev1.GetCustomerRequest) (*triagev1.GetCustomerResponse, error) {
	c, err := s.engine.Customer(ctx, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &triagev1.GetCustomerResponse{Customer: c}, nil
}

// Summary reports conversations by category, tier and channel and first
// response times per tier over a range (default: the last seven days).
func (s *Server) Summary(ctx context.Context, req *triagev1.SummaryRequest) (*triagev1.SummaryResponse, error) {
	var from, to time.Time
	if req.GetFrom() != nil {
		from = req.GetFrom().AsTime()
	}
	if req.GetTo() != nil {
		to = req.GetTo().AsTime()
	}
	loc := time.UTC
	if z := req.GetTimeZone(); z != "" {
		l, err := time.LoadLocation(z)
		if err != nil || z == "Local" {
			return nil, status.Errorf(codes.InvalidArgument, "time_zone %q is not an IANA time zone", z)
		}
		loc = l
	}
	resp, err := s.engine.Summary(ctx, from, to, loc)
	return resp, toStatus(err)
}
