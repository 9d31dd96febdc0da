package notifier

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/sidekickhq/sidekick/platform/app"
	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/config"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notifiertest"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/pagerduty"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify/webhook"
)

// FromKit wires email, PagerDuty and the webhook from SIDEKICK_* variables
// and the policies from the organisation file.
func TestFromKitWiresChannelsAndPolicies(t *testing.T) {
	h := newHarness(t)
	h.rot.AddPerson(notifiertest.Carol)
	smtp, pd, hook := notifiertest.StartSMTP(t), notifiertest.StartPagerDuty(t), notifiertest.StartWebhook(t, time.Now)
	org, err := orgfile.Parse([]byte(`
people: [{id: carol, name: Carol Chen}]   # rotation's section: ignored here
escalation:
  policies:
    - id: carol-pages
      match: {kind: new_conversation}
      steps: [{notify: "person:carol", via: page}]
`))
	if err != nil {
		t.Fatal(err)
	}
	addr := h.rot.Listen(t)
	kit := func(environ ...string) *app.Kit {
		return &app.Kit{
			Name: Name, Environ: environ, Logger: notifiertest.Logger(t), Registry: prometheus.NewRegistry(),
			JS: h.js, Pool: h.pool, Common: app.Common{RotationAddr: addr}, Org: org,
			Dial: func(addr string) (*grpc.ClientConn, error) {
				return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			},
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	if _, err := FromKit(ctx, kit("SIDEKICK_WEBHOOK_URL="+hook.URL())); err == nil || !strings.Contains(err.Error(), "SIDEKICK_WEBHOOK_SECRET") {
		t.Errorf("webhook without secret: %v", err)
	}
	bad, err := orgfile.Parse([]byte("escalation:\n  policies:\n    - {id: x, match: {kind: new_conversation}, steps: [{notify: hero, via: ping, afer: 1m}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	badKit := kit("SIDEKICK_SMTP_URL=" + smtp.URL())
	badKit.Org = bad
	if _, err := FromKit(ctx, badKit); err == nil || !strings.Contains(err.Error(), `unknown field "afer"`) {
		t.Errorf("bad organisation file: %v", err)
	}

	svc, err := FromKit(ctx, kit(
		"SIDEKICK_SMTP_URL="+smtp.URL(),
		"SIDEKICK_PAGERDUTY_ROUTING_KEY="+pd.RoutingKey, "SIDEKICK_PAGERDUTY_URL="+pd.URL(),
		"SIDEKICK_WEBHOOK_URL="+hook.URL(), "SIDEKICK_WEBHOOK_SECRET="+hook.Secret,
	))
	if err != nil {
		t.Fatalf("FromKit: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	h.publish(t, bus.ConversationSubject("opened"), "ev-k", notifiertest.Opened("ev-k", "conv-k", time.Now()))
	notifiertest.Eventually(t, "the page by email, PagerDuty and webhook", func() bool {
		return len(smtp.Mail("carol@example.com")) == 1 && len(pd.Events(pagerduty.ActionTrigger)) == 1 &&
			len(hook.Payloads(webhook.EventNotification)) == 1
	})
	if m := smtp.Mail("")[0]; !strings.HasPrefix(m.Subject, "[Sidekick] PAGE: ") {
		t.Errorf("subject = %q", m.Subject)
	}
}

// With the defaults every conversation handler can hold a connection
// while it starts an escalation, and the sender, sweeper, relay and
// ticker still get one: handlers beyond the pool only queue for it.
func TestDefaultsGiveEveryHandlerAConnection(t *testing.T) {
	var cfg Config
	if err := config.Load(&cfg, nil); err != nil {
		t.Fatal(err)
	}
	spec := Spec()
	if cfg.Concurrency < 16 || spec.MaxConns < int32(cfg.Concurrency)+4 {
		t.Fatalf("SIDEKICK_NOTIFIER_CONCURRENCY %d with a pool of %d: want at least 16 handlers and 4 connections beside them",
			cfg.Concurrency, spec.MaxConns)
	}
}
