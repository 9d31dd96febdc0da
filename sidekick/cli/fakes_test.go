package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/sidekickhq/sidekick/platform/grpcx"
	notifyv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/notify/v1"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

const testToken = "cli-test-token"

// recorder keeps what the fake services were asked, and answers with
// canned responses (or errors) set by the test, per method name.
type recorder struct {
	mu    sync.Mutex
	reqs  map[string][]proto.Message
	resps map[string]proto.Message
	errs  map[string]error
}

func newRecorder() *recorder {
	return &recorder{reqs: map[string][]proto.Message{}, resps: map[string]proto.Message{}, errs: map[string]error{}}
}

// respond sets the answer of method.
func (r *recorder) respond(method string, resp proto.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resps[method] = resp
}

// fail makes method answer err.
func (r *recorder) fail(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[method] = err
}

// calls is how many requests method got.
func (r *recorder) calls(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs[method])
}

// total is how many requests all methods got.
func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rs := range r.reqs {
		n += len(rs)
	}
	return n
}

// want fails the test unless method's last request equals want.
func (r *recorder) want(t *testing.T, method string, want proto.Message) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	rs := r.reqs[method]
	if len(rs) == 0 {
		t.Fatalf("%s was not called", method)
	}
	if got := rs[len(rs)-1]; !proto.Equal(got, want) {
		t.Fatalf("%s request:\n got  %s\n want %s", method, prototext.Format(got), prototext.Format(want))
	}
}

// handle records req and returns the canned answer of method.
func handle[Resp proto.Message](r *recorder, method string, req proto.Message) (Resp, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var zero Resp
	r.reqs[method] = append(r.reqs[method], proto.Clone(req))
	if err := r.errs[method]; err != nil {
		return zero, err
	}
	resp, ok := r.resps[method]
	if !ok {
		return zero, status.Errorf(codes.Unimplemented, "the test set no response for %s", method)
	}
	return proto.Clone(resp).(Resp), nil
}

type fakeConversations struct {
	triagev1.UnimplementedConversationServiceServer
	rec *recorder
}

var _ triagev1.ConversationServiceServer = (*fakeConversations)(nil)

func (f *fakeConversations) ListConversations(_ context.Context, req *triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
	return handle[*triagev1.ListConversationsResponse](f.rec, "ListConversations", req)
}

func (f *fakeConversations) GetConversation(_ context.Context, req *triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
	return handle[*triagev1.GetConversationResponse](f.rec, "GetConversation", req)
}

func (f *fakeConversations) SearchConversations(_ context.Context, req *triagev1.SearchConversationsRequest) (*triagev1.SearchConversationsResponse, error) {
	return handle[*triagev1.SearchConversationsResponse](f.rec, "SearchConversations", req)
}

func (f *fakeConversations) Assign(_ context.Context, req *triagev1.AssignRequest) (*triagev1.AssignResponse, error) {
	return handle[*triagev1.AssignResponse](f.rec, "Assign", req)
}

func (f *fakeConversations) Tag(_ context.Context, req *triagev1.TagRequest) (*triagev1.TagResponse, error) {
	return handle[*triagev1.TagResponse](f.rec, "Tag", req)
}

func (f *fakeConversations) AddNote(_ context.Context, req *triagev1.AddNoteRequest) (*triagev1.AddNoteResponse, error) {
	return handle[*triagev1.AddNoteResponse](f.rec, "AddNote", req)
}

func (f *fakeConversations) Reply(_ context.Context, req *triagev1.ReplyRequest) (*triagev1.ReplyResponse, error) {
	return handle[*triagev1.ReplyResponse](f.rec, "Reply", req)
}

func (f *fakeConversations) RetryOutbound(_ context.Context, req *triagev1.RetryOutboundRequest) (*triagev1.RetryOutboundResponse, error) {
	return handle[*triagev1.RetryOutboundResponse](f.rec, "RetryOutbound", req)
}

func (f *fakeConversations) Close(_ context.Context, req *triagev1.CloseRequest) (*triagev1.CloseResponse, error) {
	return handle[*triagev1.CloseResponse](f.rec, "Close", req)
}

func (f *fakeConversations) Reopen(_ context.Context, req *triagev1.ReopenRequest) (*triagev1.ReopenResponse, error) {
	return handle[*triagev1.ReopenResponse](f.rec, "Reopen", req)
}

func (f *fakeConversations) Escalate(_ context.Context, req *triagev1.EscalateRequest) (*triagev1.EscalateResponse, error) {
	return handle[*triagev1.EscalateResponse](f.rec, "Escalate", req)
}

type fakeCustomers struct {
	triagev1.UnimplementedCustomerServiceServer
	rec *recorder
}

var _ triagev1.CustomerServiceServer = (*fakeCustomers)(nil)

func (f *fakeCustomers) UpsertCustomers(_ context.Context, req *triagev1.UpsertCustomersRequest) (*triagev1.UpsertCustomersResponse, error) {
	return handle[*triagev1.UpsertCustomersResponse](f.rec, "UpsertCustomers", req)
}

func (f *fakeCustomers) GetCustomer(_ context.Context, req *triagev1.GetCustomerRequest) (*triagev1.GetCustomerResponse, error) {
	return handle[*triagev1.GetCustomerResponse](f.rec, "GetCustomer", req)
}

type fakeReports struct {
	triagev1.UnimplementedReportServiceServer
	rec *recorder
}

var _ triagev1.ReportServiceServer = (*fakeReports)(nil)

func (f *fakeReports) Summary(_ context.Context, req *triagev1.SummaryRequest) (*triagev1.SummaryResponse, error) {
	return handle[*triagev1.SummaryResponse](f.rec, "Summary", req)
}

type fakeRotation struct {
	rotationv1.UnimplementedRotationServiceServer
	rec *recorder
}

var _ rotationv1.RotationServiceServer = (*fakeRotation)(nil)

func (f *fakeRotation) WhoIsOnCall(_ context.Context, req *rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error) {
	return handle[*rotationv1.WhoIsOnCallResponse](f.rec, "WhoIsOnCall", req)
}

func (f *fakeRotation) ListShifts(_ context.Context, req *rotationv1.ListShiftsRequest) (*rotationv1.ListShiftsResponse, error) {
	return handle[*rotationv1.ListShiftsResponse](f.rec, "ListShifts", req)
}

func (f *fakeRotation) CreateOverride(_ context.Context, req *rotationv1.CreateOverrideRequest) (*rotationv1.CreateOverrideResponse, error) {
	return handle[*rotationv1.CreateOverrideResponse](f.rec, "CreateOverride", req)
}

func (f *fakeRotation) SwapShifts(_ context.Context, req *rotationv1.SwapShiftsRequest) (*rotationv1.SwapShiftsResponse, error) {
	return handle[*rotationv1.SwapShiftsResponse](f.rec, "SwapShifts", req)
}

func (f *fakeRotation) ApplyConfig(_ context.Context, req *rotationv1.ApplyConfigRequest) (*rotationv1.ApplyConfigResponse, error) {
	return handle[*rotationv1.ApplyConfigResponse](f.rec, "ApplyConfig", req)
}

func (f *fakeRotation) ListRotations(_ context.Context, req *rotationv1.ListRotationsRequest) (*rotationv1.ListRotationsResponse, error) {
	return handle[*rotationv1.ListRotationsResponse](f.rec, "ListRotations", req)
}

func (f *fakeRotation) ListOverrides(_ context.Context, req *rotationv1.ListOverridesRequest) (*rotationv1.ListOverridesResponse, error) {
	return handle[*rotationv1.ListOverridesResponse](f.rec, "ListOverrides", req)
}

func (f *fakeRotation) DeleteOverride(_ context.Context, req *rotationv1.DeleteOverrideRequest) (*rotationv1.DeleteOverrideResponse, error) {
	return handle[*rotationv1.DeleteOverrideResponse](f.rec, "DeleteOverride", req)
}

func (f *fakeRotation) ListTeams(_ context.Context, req *rotationv1.ListTeamsRequest) (*rotationv1.ListTeamsResponse, error) {
	return handle[*rotationv1.ListTeamsResponse](f.rec, "ListTeams", req)
}

func (f *fakeRotation) ListPeople(_ context.Context, req *rotationv1.ListPeopleRequest) (*rotationv1.ListPeopleResponse, error) {
	return handle[*rotationv1.ListPeopleResponse](f.rec, "ListPeople", req)
}

type fakeNotifier struct {
	notifyv1.UnimplementedNotifierServiceServer
	rec *recorder
}

var _ notifyv1.NotifierServiceServer = (*fakeNotifier)(nil)

func (f *fakeNotifier) Notify(_ context.Context, req *notifyv1.NotifyRequest) (*notifyv1.NotifyResponse, error) {
	return handle[*notifyv1.NotifyResponse](f.rec, "Notify", req)
}

func (f *fakeNotifier) Acknowledge(_ context.Context, req *notifyv1.AcknowledgeRequest) (*notifyv1.AcknowledgeResponse, error) {
	return handle[*notifyv1.AcknowledgeResponse](f.rec, "Acknowledge", req)
}

func (f *fakeNotifier) GetNotification(_ context.Context, req *notifyv1.GetNotificationRequest) (*notifyv1.GetNotificationResponse, error) {
	return handle[*notifyv1.GetNotificationResponse](f.rec, "GetNotification", req)
}

// harness is one gRPC server on loopback serving every fake, with bearer
// token authentication as in production, and the environment the CLI runs
// with against it.
type harness struct {
	*recorder
	addr string
	env  []string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv, err := grpcx.NewServer(grpcx.ServerOptions{Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	triagev1.RegisterConversationServiceServer(srv, &fakeConversations{rec: rec})
	triagev1.RegisterCustomerServiceServer(srv, &fakeCustomers{rec: rec})
	triagev1.RegisterReportServiceServer(srv, &fakeReports{rec: rec})
	rotationv1.RegisterRotationServiceServer(srv, &fakeRotation{rec: rec})
	notifyv1.RegisterNotifierServiceServer(srv, &fakeNotifier{rec: rec})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Server.Serve(lis) }()
	t.Cleanup(srv.Stop)
	addr := lis.Addr().String()
	return &harness{
		recorder: rec,
		addr:     addr,
		env:      []string{"SIDEKICK_ADDR=" + addr, "SIDEKICK_GRPC_TOKEN=" + testToken, "USER=alice", "TZ=UTC"},
	}
}

// run runs the CLI against the harness and returns what it printed.
func (h *harness) run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runEnv(t, h.env, "", args...)
}

// runEnv runs the CLI with an environment and standard input.
func runEnv(t *testing.T, env []string, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), args, IO{Stdout: &out, Stderr: io.Discard, Stdin: strings.NewReader(stdin), Environ: env})
	return out.String(), err
}

// without returns env minus the variables named.
func without(env []string, names ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
