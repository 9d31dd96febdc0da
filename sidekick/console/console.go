// Package console is Sidekick's web console: a server-rendered queue of
// conversations, one page per conversation (the target of triage's share
// links, /console/conversations/<id>), who is on call now, and forms that
// assign, tag, note, close, reopen and escalate a conversation.
//
// The console keeps no state and reads no database: every page is built
// from triage's ConversationService and rotation's RotationService over
// gRPC, and every action is one ConversationService call carrying the
// signed-in person's name as the actor.
//
// Outside dev mode people sign in with their organisation's OpenID Connect
// provider, matched to the organisation file by email, or with the shared
// SIDEKICK_CONSOLE_TOKEN and a name; the session lives in an HMAC-signed,
// expiring, HttpOnly, SameSite=Strict cookie keyed from the token (or the
// OIDC client secret). Every form is protected
// against cross-site request forgery twice: a same-origin check
// (http.CrossOriginProtection) and a per-session token.
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/clock"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/promreg"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// Name is the service name in logs and metric labels.
const Name = "console"

// BasePath is where the console is mounted. triage's share links
// (SIDEKICK_CONSOLE_URL) must point here.
const BasePath = "/console"

// MinTokenLength is the shortest SIDEKICK_CONSOLE_TOKEN accepted.
const MinTokenLength = 16

//go:embed templates/*.html static/*
var assets embed.FS

// Config is the console's own configuration.
type Config struct {
	// Token is the shared secret people sign in with. Required unless Dev;
	// when set, sign-in is required even in dev mode.
	Token string `env:"SIDEKICK_CONSOLE_TOKEN"`
	// Dev allows running without a token: anyone reaching the console may
	// use it, under the name they give (or "dev").
	Dev bool `env:"SIDEKICK_DEV"`
	// TrustProxyUser takes the actor recorded for actions from the
	// X-Forwarded-User header set by an authenticating proxy in front of
	// the console, instead of the name typed at sign-in.
	TrustProxyUser bool `env:"SIDEKICK_CONSOLE_TRUST_PROXY_USER"`
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration `env:"SIDEKICK_CONSOLE_SESSION_TTL" envDefault:"12h"`
	// TrustedOrigins are extra origins (scheme://host[:port]) whose form
	// posts are accepted, for proxies that rewrite the Host header.
	TrustedOrigins []string `env:"SIDEKICK_CONSOLE_TRUSTED_ORIGINS" envSeparator:","`
	// OIDCIssuer turns on sign-in with an OpenID Connect provider (Google,
	// Okta, Keycloak, Dex...): people are matched to the organisation
	// file by email and act as themselves. With it the token is optional.
	OIDCIssuer string `env:"SIDEKICK_CONSOLE_OIDC_ISSUER"`
	// OIDCClientID and OIDCClientSecret are the console's client at the
	// provider; the secret also keys sessions when there is no token.
	OIDCClientID     string `env:"SIDEKICK_CONSOLE_OIDC_CLIENT_ID"`
	OIDCClientSecret string `env:"SIDEKICK_CONSOLE_OIDC_CLIENT_SECRET"`
	// OIDCRedirectURL is the console's callback as registered with the
	// provider: https://support.example.com/console/oidc/callback.
	OIDCRedirectURL string `env:"SIDEKICK_CONSOLE_OIDC_REDIRECT_URL"`
	// Timezone is the IANA zone times are shown in.
	Timezone string `env:"SIDEKICK_CONSOLE_TIMEZONE" envDefault:"UTC"`
	// Live connects `sidekick console` to NATS (SIDEKICK_NATS_URL and its
	// credentials, as for the services), whose conversation events update
	// the pages open in browsers.
	Live bool `env:"SIDEKICK_CONSOLE_LIVE"`
	// RPCTimeout bounds each gRPC call a page or an action makes.
	RPCTimeout time.Duration `env:"SIDEKICK_CONSOLE_RPC_TIMEOUT" envDefault:"10s"`
}

// Validate reports a configuration the console must not start with. It
// needs no connection, so `sidekick console` calls it before dialing
// anything.
func (c Config) Validate() error {
	switch {
	case c.Token == "" && c.OIDCIssuer == "" && !c.Dev:
		return errors.New("configuration: required environment variable SIDEKICK_CONSOLE_TOKEN (or SIDEKICK_CONSOLE_OIDC_ISSUER) is not set (the console needs authentication outside dev mode; set SIDEKICK_DEV=true for local use)")
	case c.Token != "" && len(c.Token) < MinTokenLength:
		return fmt.Errorf("configuration: SIDEKICK_CONSOLE_TOKEN must be at least %d characters", MinTokenLength)
	case c.SessionTTL <= 0:
		return errors.New("configuration: SIDEKICK_CONSOLE_SESSION_TTL must be positive")
	case c.RPCTimeout <= 0:
		return errors.New("configuration: SIDEKICK_CONSOLE_RPC_TIMEOUT must be positive")
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		return fmt.Errorf("configuration: SIDEKICK_CONSOLE_TIMEZONE: %w", err)
	}
	return c.validateOIDC()
}

// Conversations is the part of triage's ConversationService client the
// console uses.
type Conversations interface {
	ListConversations(ctx context.Context, in *triagev1.ListConversationsRequest, opts ...grpc.CallOption) (*triagev1.ListConversationsResponse, error)
	SearchConversations(ctx context.Context, in *triagev1.SearchConversationsRequest, opts ...grpc.CallOption) (*triagev1.SearchConversationsResponse, error)
	GetConversation(ctx context.Context, in *triagev1.GetConversationRequest, opts ...grpc.CallOption) (*triagev1.GetConversationResponse, error)
	Assign(ctx context.Context, in *triagev1.AssignRequest, opts ...grpc.CallOption) (*triagev1.AssignResponse, error)
	Tag(ctx context.Context, in *triagev1.TagRequest, opts ...grpc.CallOption) (*triagev1.TagResponse, error)
	AddNote(ctx context.Context, in *triagev1.AddNoteRequest, opts ...grpc.CallOption) (*triagev1.AddNoteResponse, error)
	Close(ctx context.Context, in *triagev1.CloseRequest, opts ...grpc.CallOption) (*triagev1.CloseResponse, error)
	Reopen(ctx context.Context, in *triagev1.ReopenRequest, opts ...grpc.CallOption) (*triagev1.ReopenResponse, error)
	Escalate(ctx context.Context, in *triagev1.EscalateRequest, opts ...grpc.CallOption) (*triagev1.EscalateResponse, error)
	Reply(ctx context.Context, in *triagev1.ReplyRequest, opts ...grpc.CallOption) (*triagev1.ReplyResponse, error)
	RetryOutbound(ctx context.Context, in *triagev1.RetryOutboundRequest, opts ...grpc.CallOption) (*triagev1.RetryOutboundResponse, error)
}

// Customers is the part of triage's CustomerService client the console
// uses.
type Customers interface {
	GetCustomer(ctx context.Context, in *triagev1.GetCustomerRequest, opts ...grpc.CallOption) (*triagev1.GetCustomerResponse, error)
}

// Reports is triage's ReportService client.
type Reports interface {
	Summary(ctx context.Context, in *triagev1.SummaryRequest, opts ...grpc.CallOption) (*triagev1.SummaryResponse, error)
}

// Rotation is the part of rotation's RotationService client the console
// uses.
type Rotation interface {
	WhoIsOnCall(ctx context.Context, in *rotationv1.WhoIsOnCallRequest, opts ...grpc.CallOption) (*rotationv1.WhoIsOnCallResponse, error)
	ListTeams(ctx context.Context, in *rotationv1.ListTeamsRequest, opts ...grpc.CallOption) (*rotationv1.ListTeamsResponse, error)
	ListPeople(ctx context.Context, in *rotationv1.ListPeopleRequest, opts ...grpc.CallOption) (*rotationv1.ListPeopleResponse, error)
	ListRotations(ctx context.Context, in *rotationv1.ListRotationsRequest, opts ...grpc.CallOption) (*rotationv1.ListRotationsResponse, error)
	ListShifts(ctx context.Context, in *rotationv1.ListShiftsRequest, opts ...grpc.CallOption) (*rotationv1.ListShiftsResponse, error)
	ListOverrides(ctx context.Context, in *rotationv1.ListOverridesRequest, opts ...grpc.CallOption) (*rotationv1.ListOverridesResponse, error)
	CreateOverride(ctx context.Context, in *rotationv1.CreateOverrideRequest, opts ...grpc.CallOption) (*rotationv1.CreateOverrideResponse, error)
	SwapShifts(ctx context.Context, in *rotationv1.SwapShiftsRequest, opts ...grpc.CallOption) (*rotationv1.SwapShiftsResponse, error)
	DeleteOverride(ctx context.Context, in *rotationv1.DeleteOverrideRequest, opts ...grpc.CallOption) (*rotationv1.DeleteOverrideResponse, error)
}

var (
	_ Conversations = triagev1.ConversationServiceClient(nil)
	_ Customers     = triagev1.CustomerServiceClient(nil)
	_ Reports       = triagev1.ReportServiceClient(nil)
	_ Rotation      = rotationv1.RotationServiceClient(nil)
)

// Deps are the console's collaborators.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// Clock stamps sessions and "due in" times; default the wall clock.
	Clock         clock.Clock
	Conversations Conversations
	Customers     Customers
	Reports       Reports
	Rotation      Rotation
	// HTTPClient talks to the OIDC provider; default http.DefaultClient.
	HTTPClient *http.Client
	// NATS, when set, carries triage's conversation events to the pages
	// open in browsers (live updates); nil: pages change on reload only.
	NATS *nats.Conn
}

// Service is the console.
type Service struct {
	cfg     Config
	deps    Deps
	loc     *time.Location
	keys    keys
	origin  *http.CrossOriginProtection
	pages   map[string]*template.Template
	static  http.Handler
	metrics metrics
	oidc    *oidcSignin
	live    *hub
	// closers run when Run returns (connections FromKit dialed).
	closers []func() error
}

type metrics struct {
	actions     *prometheus.CounterVec
	signins     *prometheus.CounterVec
	liveStreams prometheus.Gauge
}

// New builds the console.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	switch {
	case deps.Conversations == nil:
		return nil, errors.New("console: Conversations is required")
	case deps.Customers == nil:
		return nil, errors.New("console: Customers is required")
	case deps.Reports == nil:
		return nil, errors.New("console: Reports is required")
	case deps.Rotation == nil:
		return nil, errors.New("console: Rotation is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registry == nil {
		deps.Registry = prometheus.NewRegistry()
	}
	deps.Clock = clock.OrReal(deps.Clock)
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("console: timezone: %w", err)
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = http.DefaultClient
	}
	k, err := deriveKeys(cfg.Token, cfg.OIDCClientSecret)
	if err != nil {
		return nil, fmt.Errorf("console: session keys: %w", err)
	}
	origin := http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := origin.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("console: SIDEKICK_CONSOLE_TRUSTED_ORIGINS: %w", err)
		}
	}
	s := &Service{cfg: cfg, deps: deps, loc: loc, keys: k, origin: origin, live: newHub()}
	if cfg.OIDCIssuer != "" {
		s.oidc = &oidcSignin{cfg: cfg, client: deps.HTTPClient}
	}
	if s.pages, err = s.parseTemplates(); err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static assets: %w", err)
	}
	s.static = http.StripPrefix(BasePath+"/static/", http.FileServerFS(static))
	s.metrics = metrics{
		actions: promreg.MustRegister(deps.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_console_actions_total",
			Help: "Conversation actions taken in the console, by action and result (ok, rejected, error).",
		}, []string{"action", "result"})),
		signins: promreg.MustRegister(deps.Registry, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sidekick_console_signins_total",
			Help: "Console sign-in attempts, by result (ok, bad_token, bad_name, and for OIDC oidc_state, oidc_denied, oidc_token, oidc_no_email, oidc_unverified, oidc_unknown).",
		}, []string{"result"})),
		liveStreams: promreg.MustRegister(deps.Registry, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sidekick_console_live_streams",
			Help: "Live-update streams (server-sent events) open to browsers.",
		})),
	}
	return s, nil
}

// Spec describes the console to an app.Host without NATS: it publishes
// nothing, and pages change on reload only.
func Spec() app.Spec {
	return app.Spec{Name: Name, NoBus: true, Config: &Config{}, Build: FromKit}
}

// LiveSpec is Spec with NATS, whose conversation events update the pages
// open in browsers (sidekick console with
// SIDEKICK_CONSOLE_LIVE=true). It subscribes only; it has no stream or
// consumer of its own.
func LiveSpec() app.Spec {
	spec := Spec()
	spec.NoBus = false
	return spec
}

// FromKit builds the console inside a process wired by platform/app: it
// dials triage (SIDEKICK_TRIAGE_ADDR) and rotation (SIDEKICK_ROTATION_ADDR)
// with the kit's gRPC token.
func FromKit(ctx context.Context, k *app.Kit) (app.Service, error) {
	var cfg Config
	if err := config.Load(&cfg, k.Environ); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	triageConn, err := k.Dial(k.Common.TriageAddr)
	if err != nil {
		return nil, fmt.Errorf("console: dial triage %s: %w", k.Common.TriageAddr, err)
	}
	rotationConn, err := k.Dial(k.Common.RotationAddr)
	if err != nil {
		triageConn.Close()
		return nil, fmt.Errorf("console: dial rotation %s: %w", k.Common.RotationAddr, err)
	}
	s, err := New(cfg, Deps{
		Logger: k.Logger, Registry: k.Registry, Clock: k.Clock, NATS: k.NC,
		Conversations: triagev1.NewConversationServiceClient(triageConn),
		Customers:     triagev1.NewCustomerServiceClient(triageConn),
		Reports:       triagev1.NewReportServiceClient(triageConn),
		Rotation:      rotationv1.NewRotationServiceClient(rotationConn),
	})
	if err != nil {
		triageConn.Close()
		rotationConn.Close()
		return nil, err
	}
	s.closers = append(s.closers, triageConn.Close, rotationConn.Close)
	return s, nil
}

// Run feeds live updates from NATS, when the console has it, until ctx is
// done, then closes the connections FromKit dialed.
func (s *Service) Run(ctx context.Context) error {
	var err error
	if s.deps.NATS != nil {
		err = s.listen(ctx)
	} else {
		<-ctx.Done()
	}
	s.live.close()
	for _, c := range s.closers {
		if err := c(); err != nil {
			s.deps.Logger.Warn("close grpc connection", "error", err)
		}
	}
	return err
}

// Register mounts the console under BasePath.
func (s *Service) Register(mux *http.ServeMux) {
	mux.Handle("GET "+BasePath, http.RedirectHandler(BasePath+"/", http.StatusMovedPermanently))
	mux.Handle("GET "+BasePath+"/static/", s.static)
	mux.Handle("GET "+BasePath+"/signin", s.secure(http.HandlerFunc(s.signinPage)))
	mux.Handle("POST "+BasePath+"/signin", s.secure(http.HandlerFunc(s.signin)))
	if s.oidc != nil {
		mux.Handle("GET "+BasePath+"/oidc/start", s.secure(http.HandlerFunc(s.oidcStart)))
		mux.Handle("GET "+OIDCCallbackPath, s.secure(http.HandlerFunc(s.oidcCallback)))
	}
	mux.Handle("POST "+BasePath+"/signout", s.secure(s.authed(s.signout)))
	mux.Handle("GET "+BasePath+"/{$}", s.secure(s.authed(s.queue)))
	mux.Handle("GET "+BasePath+"/oncall", s.secure(s.authed(s.oncall)))
	mux.Handle("GET "+LivePath, s.secure(s.authed(s.liveStream)))
	mux.Handle("GET "+BasePath+"/conversations/{id}", s.secure(s.authed(s.conversation)))
	mux.Handle("GET "+BasePath+"/customers/{id}", s.secure(s.authed(s.customer)))
	mux.Handle("GET "+BasePath+"/reports", s.secure(s.authed(s.reports)))
	mux.Handle("GET "+BasePath+"/calendar", s.secure(s.authed(s.calendar)))
	mux.Handle("POST "+BasePath+"/calendar/overrides", s.secure(s.authed(s.createOverride)))
	mux.Handle("POST "+BasePath+"/calendar/swaps", s.secure(s.authed(s.createSwap)))
	mux.Handle("POST "+BasePath+"/calendar/overrides/{id}/delete", s.secure(s.authed(s.deleteOverride)))
	mux.Handle("POST "+BasePath+"/conversations/{id}/{action}", s.secure(s.authed(s.action)))
}

// Handler returns the console alone on its own mux, for tests and for
// embedding behind another router.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

// secure sets the headers every console page carries: a strict content
// security policy (the console's own script file is the only script that
// may run, never an inline one, so injected markup stays inert),
// no framing, no sniffing, no caching, and no referrer to other sites.
func (s *Service) secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// call bounds one RPC.
func (s *Service) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.RPCTimeout)
}
