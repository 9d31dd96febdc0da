package console_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/sidekick/console"
)

// fakeTriage is triage's ConversationService on loopback. Each method
// records its request and answers with its function field, or with the
// conversation unchanged when the field is nil.
type fakeTriage struct {
	triagev1.UnimplementedConversationServiceServer

	mu    sync.Mutex
	calls []proto.Message

	list     func(*triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error)
	customer func(*triagev1.GetCustomerRequest) (*triagev1.GetCustomerResponse, error)
	summary  func(*triagev1.SummaryRequest) (*triagev1.SummaryResponse, error)
	search   func(*triagev1.SearchConversationsRequest) (*triagev1.SearchConversationsResponse, error)
	get      func(*triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error)
	addNote  func(*triagev1.AddNoteRequest) (*triagev1.AddNoteResponse, error)
	mutation func(proto.Message) error
}

var _ triagev1.ConversationServiceServer = (*fakeTriage)(nil)

func (f *fakeTriage) record(m proto.Message) error {
	f.mu.Lock()
	f.calls = append(f.calls, proto.Clone(m))
	f.mu.Unlock()
	if f.mutation != nil {
		return f.mutation(m)
	}
	return nil
}

// note records a read request.
func (f *fakeTriage) note(m proto.Message) {
	f.mu.Lock()
	f.calls = append(f.calls, proto.Clone(m))
	f.mu.Unlock()
}

// Calls returns the requests received so far.
func (f *fakeTriage) Calls() []proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proto.Message(nil), f.calls...)
}

func (f *fakeTriage) ListConversations(_ context.Context, req *triagev1.ListConversationsRequest) (*triagev1.ListConversationsResponse, error) {
	f.note(req)
	if f.list == nil {
		return &triagev1.ListConversationsResponse{}, nil
	}
	return f.list(req)
}

func (f *fakeTriage) SearchConversations(_ context.Context, req *triagev1.SearchConversationsRequest) (*triagev1.SearchConversationsResponse, error) {
	f.note(req)
	if f.search == nil {
		return &triagev1.SearchConversationsResponse{}, nil
	}
	return f.search(req)
}

func (f *fakeTriage) GetConversation(_ context.Context, req *triagev1.GetConversationRequest) (*triagev1.GetConversationResponse, error) {
	if f.get == nil {
		return &triagev1.GetConversationResponse{Conversation: &supportv1.Conversation{Id: req.GetId()}}, nil
	}
	return f.get(req)
}

func (f *fakeTriage) Assign(_ context.Context, req *triagev1.AssignRequest) (*triagev1.AssignResponse, error) {
	return &triagev1.AssignResponse{Conversation: &supportv1.Conversation{Id: req.GetId()}}, f.record(req)
}

func (f *fakeTriage) Tag(_ context.Context, req *triagev1.TagRequest) (*triagev1.TagResponse, error) {
	return &triagev1.TagResponse{Conversation: &supportv1.Conversation{Id: req.GetId()}}, f.record(req)
}

func (f *fakeTriage) AddNote(_ context.Context, req *triagev1.AddNoteRequest) (*triagev1.AddNoteResponse, error) {
	if err := f.record(req); err != nil {
		return nil, err
	}
	if f.addNote != nil {
		return f.addNote(req)
	}
	return &triagev1.AddNoteResponse{Note: &triagev1.Note{Id: "n1", Text: req.GetText()}}, nil
}

func (f *fakeTriage) Close(_ context.Context, req *triagev1.CloseRequest) (*triagev1.CloseResponse, error) {
	return &triagev1.CloseResponse{Conversation: &supportv1.Conversation{Id: req.GetId()}}, f.record(req)
}

func (f *fakeTriage) Reopen(_ context.Context, req *triagev1.ReopenRequest) (*triagev1.ReopenResponse, error) {
	return &triagev1.ReopenResponse{Conversation: &supportv1.Conversation{Id: req.GetId()}}, f.record(req)
}

func (f *fakeTriage) Escalate(_ context.Context, req *triagev1.EscalateRequest) (*triagev1.EscalateResponse, error) {
	return &triagev1.EscalateResponse{Conversation: &supportv1.Conversation{Id: req.GetId()}}, f.record(req)
}

func (f *fakeTriage) Reply(_ context.Context, req *triagev1.ReplyRequest) (*triagev1.ReplyResponse, error) {
	return &triagev1.ReplyResponse{Delivery: &triagev1.OutboundDelivery{OutboundId: "o-1", State: triagev1.DeliveryState_DELIVERY_STATE_SENDING}}, f.record(req)
}

func (f *fakeTriage) RetryOutbound(_ context.Context, req *triagev1.RetryOutboundRequest) (*triagev1.RetryOutboundResponse, error) {
	return &triagev1.RetryOutboundResponse{Delivery: &triagev1.OutboundDelivery{OutboundId: req.GetOutboundId(), State: triagev1.DeliveryState_DELIVERY_STATE_SENDING}}, f.record(req)
}

// fakeCustomers and fakeReports are triage's CustomerService and
// ReportService, answering with the fakeTriage's functions.
type fakeCustomers struct {
	triagev1.UnimplementedCustomerServiceServer
	f *fakeTriage
}

func (c fakeCustomers) GetCustomer(_ context.Context, req *triagev1.GetCustomerRequest) (*triagev1.GetCustomerResponse, error) {
	c.f.note(req)
	if c.f.customer == nil {
		return nil, status.Error(codes.NotFound, "no customer "+req.GetId())
	}
	return c.f.customer(req)
}

type fakeReports struct {
	triagev1.UnimplementedReportServiceServer
	f *fakeTriage
}

func (r fakeReports) Summary(_ context.Context, req *triagev1.SummaryRequest) (*triagev1.SummaryResponse, error) {
	r.f.note(req)
	if r.f.summary == nil {
		return &triagev1.SummaryResponse{}, nil
	}
	return r.f.summary(req)
}

// fakeRotation is rotation's RotationService on loopback.
type fakeRotation struct {
	rotationv1.UnimplementedRotationServiceServer

	people []*rotationv1.Person
	teams  []*rotationv1.Team
	// onCall answers WhoIsOnCall; nil answers a gap.
	onCall func(*rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error)
	// down makes every call fail as if rotation were unreachable.
	down error

	rotations []*rotationv1.Rotation
	shifts    func(*rotationv1.ListShiftsRequest) []*rotationv1.Shift
	overrides []*rotationv1.Override
	// refuse, when set, refuses CreateOverride with it.
	refuse error

	mu      sync.Mutex
	created []*rotationv1.CreateOverrideRequest
	swapped []*rotationv1.SwapShiftsRequest
	deleted []string
}

// changes returns the overrides created and deleted so far.
func (f *fakeRotation) changes() ([]*rotationv1.CreateOverrideRequest, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*rotationv1.CreateOverrideRequest(nil), f.created...), append([]string(nil), f.deleted...)
}

// refuseWith makes CreateOverride fail with err.
func (f *fakeRotation) refuseWith(err error) {
	f.mu.Lock()
	f.refuse = err
	f.mu.Unlock()
}

func (f *fakeRotation) ListRotations(context.Context, *rotationv1.ListRotationsRequest) (*rotationv1.ListRotationsResponse, error) {
	return &rotationv1.ListRotationsResponse{Rotations: f.rotations}, f.down
}

func (f *fakeRotation) ListShifts(_ context.Context, req *rotationv1.ListShiftsRequest) (*rotationv1.ListShiftsResponse, error) {
	if f.shifts == nil {
		return &rotationv1.ListShiftsResponse{}, f.down
	}
	return &rotationv1.ListShiftsResponse{Shifts: f.shifts(req)}, f.down
}

// ListOverrides answers the overrides overlapping the range, as rotation
// does.
func (f *fakeRotation) ListOverrides(_ context.Context, req *rotationv1.ListOverridesRequest) (*rotationv1.ListOverridesResponse, error) {
	var out []*rotationv1.Override
	for _, o := range f.overrides {
		if req.GetFrom() == nil || (o.GetEnd().AsTime().After(req.GetFrom().AsTime()) && o.GetStart().AsTime().Before(req.GetTo().AsTime())) {
			out = append(out, o)
		}
	}
	return &rotationv1.ListOverridesResponse{Overrides: out}, f.down
}

func (f *fakeRotation) SwapShifts(_ context.Context, req *rotationv1.SwapShiftsRequest) (*rotationv1.SwapShiftsResponse, error) {
	f.mu.Lock()
	f.swapped = append(f.swapped, proto.Clone(req).(*rotationv1.SwapShiftsRequest))
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		return nil, refuse
	}
	return &rotationv1.SwapShiftsResponse{SwapId: "swap-new"}, nil
}

// swaps returns the swaps asked for so far.
func (f *fakeRotation) swaps() []*rotationv1.SwapShiftsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*rotationv1.SwapShiftsRequest(nil), f.swapped...)
}

func (f *fakeRotation) CreateOverride(_ context.Context, req *rotationv1.CreateOverrideRequest) (*rotationv1.CreateOverrideResponse, error) {
	f.mu.Lock()
	f.created = append(f.created, proto.Clone(req).(*rotationv1.CreateOverrideRequest))
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != nil {
		return nil, refuse
	}
	o := proto.Clone(req.GetOverride()).(*rotationv1.Override)
	o.Id = "ov-new"
	return &rotationv1.CreateOverrideResponse{Override: o}, nil
}

func (f *fakeRotation) DeleteOverride(_ context.Context, req *rotationv1.DeleteOverrideRequest) (*rotationv1.DeleteOverrideResponse, error) {
	f.mu.Lock()
	f.deleted = append(f.deleted, req.GetId())
	f.mu.Unlock()
	return &rotationv1.DeleteOverrideResponse{}, nil
}

var _ rotationv1.RotationServiceServer = (*fakeRotation)(nil)

func (f *fakeRotation) ListPeople(context.Context, *rotationv1.ListPeopleRequest) (*rotationv1.ListPeopleResponse, error) {
	if f.down != nil {
		return nil, f.down
	}
	return &rotationv1.ListPeopleResponse{People: f.people}, nil
}

func (f *fakeRotation) ListTeams(context.Context, *rotationv1.ListTeamsRequest) (*rotationv1.ListTeamsResponse, error) {
	if f.down != nil {
		return nil, f.down
	}
	return &rotationv1.ListTeamsResponse{Teams: f.teams}, nil
}

func (f *fakeRotation) WhoIsOnCall(_ context.Context, req *rotationv1.WhoIsOnCallRequest) (*rotationv1.WhoIsOnCallResponse, error) {
	if f.down != nil {
		return nil, f.down
	}
	if f.onCall == nil {
		return &rotationv1.WhoIsOnCallResponse{Gap: true, GapReason: "nobody configured"}, nil
	}
	return f.onCall(req)
}

// serveGRPC serves the fakes on a loopback port and returns its address.
func serveGRPC(t testing.TB, tr *fakeTriage, rot *fakeRotation) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	triagev1.RegisterConversationServiceServer(s, tr)
	triagev1.RegisterCustomerServiceServer(s, fakeCustomers{f: tr})
	triagev1.RegisterReportServiceServer(s, fakeReports{f: tr})
	rotationv1.RegisterRotationServiceServer(s, rot)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

const testToken = "correct-horse-battery-staple"

// harness is a console served over loopback HTTP in front of loopback
// gRPC fakes.
type harness struct {
	t        *testing.T
	srv      *httptest.Server
	triage   *fakeTriage
	rotation *fakeRotation
	clock    *clock.Fake
	client   *http.Client
	svc      *console.Service
}

// start builds the console with cfg (Timezone and timeouts defaulted).
func start(t *testing.T, cfg console.Config, tr *fakeTriage, rot *fakeRotation) *harness {
	t.Helper()
	return startWith(t, cfg, tr, rot, nil)
}

// startWith is start with a last say on the configuration and the deps,
// given the address the console will be served at.
func startWith(t *testing.T, cfg console.Config, tr *fakeTriage, rot *fakeRotation, adjust func(addr string, cfg *console.Config, deps *console.Deps)) *harness {
	t.Helper()
	if tr == nil {
		tr = &fakeTriage{}
	}
	if rot == nil {
		rot = &fakeRotation{}
	}
	if cfg.Timezone == "" {
		cfg.Timezone = "UTC"
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.RPCTimeout == 0 {
		cfg.RPCTimeout = 10 * time.Second
	}
	cc := dial(t, serveGRPC(t, tr, rot))
	clk := clock.NewFake(t0)
	deps := console.Deps{
		Clock:         clk,
		Conversations: triagev1.NewConversationServiceClient(cc),
		Customers:     triagev1.NewCustomerServiceClient(cc),
		Reports:       triagev1.NewReportServiceClient(cc),
		Rotation:      rotationv1.NewRotationServiceClient(cc),
	}
	srv := httptest.NewUnstartedServer(nil)
	if adjust != nil {
		adjust(srv.Listener.Addr().String(), &cfg, &deps)
	}
	svc, err := console.New(cfg, deps)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	srv.Config.Handler = svc.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return &harness{t: t, srv: srv, triage: tr, rotation: rot, clock: clk, client: newClient(t), svc: svc}
}

// newClient keeps cookies and does not follow redirects.
func newClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type response struct {
	code   int
	header http.Header
	body   string
}

func (h *harness) do(req *http.Request) response {
	h.t.Helper()
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func (h *harness) get(path string, header ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.do(req)
}

// post sends a form as a same-origin browser would (Origin and
// Sec-Fetch-Site set), plus any extra header pairs.
func (h *harness) post(path string, form url.Values, header ...string) response {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", h.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.do(req)
}

// signIn signs in through the form and fails the test unless it worked.
func (h *harness) signIn(name string) {
	h.t.Helper()
	r := h.post("/console/signin", url.Values{"name": {name}, "token": {testToken}, "next": {"/console/"}})
	if r.code != http.StatusSeeOther || r.header.Get("Location") != "/console/" {
		h.t.Fatalf("sign-in: %d %s\n%s", r.code, r.header.Get("Location"), r.body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf loads a page and returns the CSRF token in its forms.
func (h *harness) csrf(path string) string {
	h.t.Helper()
	r := h.get(path)
	m := csrfField.FindStringSubmatch(r.body)
	if r.code != http.StatusOK || m == nil {
		h.t.Fatalf("GET %s: %d, no csrf field\n%s", path, r.code, r.body)
	}
	return m[1]
}

// sampleConversation is a conversation with one of everything.
func sampleConversation() *triagev1.GetConversationResponse {
	return &triagev1.GetConversationResponse{
		Conversation: &supportv1.Conversation{
			Id: "c-42", Channel: supportv1.Channel_CHANNEL_SLACK, Status: supportv1.ConversationStatus_CONVERSATION_STATUS_OPEN,
			Tier: supportv1.Tier_TIER_PRIORITY, TierReason: "plan enterprise",
			Categories: []string{"Deployments/Scaling", "Performance"}, Tags: []string{"k8s"},
			Subject:  "Pods OOM after upgrade",
			Customer: &supportv1.CustomerRef{Id: "cust-1", Name: "Hedgebank", Organisation: "Hedgebank Ltd"},
			Assignee: "alice", Team: "platform",
			OpenedAt:       timestamppb.New(t0.Add(-30 * time.Minute)),
			NextDeadlineAt: timestamppb.New(t0.Add(30 * time.Minute)),
			DeadlineLevel:  supportv1.DeadlineLevel_DEADLINE_LEVEL_OKAY,
			Permalink:      "https://example.slack.com/archives/C1/p100",
			ShareUrl:       "http://localhost:8080/console/conversations/c-42",
		},
		Messages: []*supportv1.InboundMessage{{
			Id: "m1", Channel: supportv1.Channel_CHANNEL_SLACK, Kind: supportv1.MessageKind_MESSAGE_KIND_POSTED,
			Author: &supportv1.Author{Id: "U1", Name: "Dana Customer", Role: supportv1.AuthorRole_AUTHOR_ROLE_CUSTOMER},
			Text:   "Our pods are OOM-killed since 1.40.\nHelp!", SentAt: timestamppb.New(t0.Add(-30 * time.Minute)),
		}},
		Notes: []*triagev1.Note{{Id: "n1", Author: "alice", Text: "Looks like the new cache.", Handoff: true, CreatedAt: timestamppb.New(t0.Add(-10 * time.Minute))}},
		Audit: []*triagev1.AuditEntry{{Actor: "system", Action: "triaged", Detail: "tier priority (plan enterprise)", At: timestamppb.New(t0.Add(-29 * time.Minute))}},
	}
}

// newServer serves h on loopback for the test's duration.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// callsOf returns the requests of one type triage received, in order.
func callsOf[T proto.Message](f *fakeTriage) []T {
	var out []T
	for _, c := range f.Calls() {
		if m, ok := c.(T); ok {
			out = append(out, m)
		}
	}
	return out
}
