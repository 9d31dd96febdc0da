package escalate

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sidekickhq/sidekick/services/notifier/internal/deliver"
	"github.com/sidekickhq/sidekick/services/notifier/internal/notify"
	"github.com/sidekickhq/sidekick/services/notifier/internal/policy"
	"github.com/sidekickhq/sidekick/services/notifier/internal/store"
)

// digestItem is the line t adds to the digest of policy p: its title with
// the first line of its text, its first link, and the digest slot it goes
// out in (the first multiple of the digest interval after t.At; every,
// when set, replaces the policy's interval).
func digestItem(t Trigger, p *policy.Policy, every time.Duration) store.DigestItem {
	if every <= 0 {
		every = p.Digest.Every
	}
	link := ""
	if len(t.Links) > 0 {
		link = t.Links[0].URL
	}
	title := t.Title
	if first, _, _ := strings.Cut(strings.TrimSpace(t.Text), "\n"); first != "" {
		title += ": " + first
	}
	return store.DigestItem{
		Key: t.Key, PolicyID: p.ID, Target: p.Digest.To.String(), DueAt: policy.Digest{Every: every}.Next(t.At),
		ConversationID: t.ConversationID, Title: title, Link: link, AddedAt: t.At,
	}
}

// nextDigest is the store.NextDigestFunc: the slot after due of the
// policy's digests. A policy gone from the configuration sends what is
// left of its digests a minute later, as their own digest.
func (r *Runner) nextDigest(policyID string, due time.Time) time.Time {
	every := r.cfg.DigestEvery
	if p := r.cfg.Policies.Policy(policyID); every <= 0 && p != nil && p.Digest != nil {
		every = p.Digest.Every
	}
	if every <= 0 {
		return due.Add(time.Minute)
	}
	return policy.Digest{Every: every}.Next(due)
}

// DigestKey is the idempotency key of the digest of policyID to target
// due at due.
func DigestKey(policyID, target string, due time.Time) string {
	return fmt.Sprintf("digest/%s/%s/%d", policyID, target, due.Unix())
}

// digestRequest is the one notification listing items, to targets.
func digestRequest(policyID, target string, due time.Time, items []store.DigestItem, targets []deliver.Target) deliver.Request {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "• %s", it.Title)
		if it.Link != "" {
			fmt.Fprintf(&b, " — %s", it.Link)
		}
		b.WriteString("\n")
	}
	noun := "conversations"
	if len(items) == 1 {
		noun = "conversation"
	}
	return deliver.Request{
		IdempotencyKey: DigestKey(policyID, target, due), Origin: "digest", Targets: targets, Urgency: notify.Ping,
		Title: fmt.Sprintf("digest: %d new %s", len(items), noun), Text: strings.TrimSpace(b.String()), Lenient: true,
	}
}

// digest is the store.DigestFunc: one notification listing the items.
func (r *Runner) digest(ctx context.Context, policyID, target string, due time.Time, items []store.DigestItem) (store.FiredStep, error) {
	t, err := policy.ParseTarget(target)
	if err != nil {
		return store.FiredStep{}, fmt.Errorf("digest %s: %w", policyID, err)
	}
	key := DigestKey(policyID, target, due)
	n, ds, err := r.dispatch.Prepare(ctx, digestRequest(policyID, target, due, items, r.targets(store.Escalation{ID: key}, t)))
	if err != nil {
		return store.FiredStep{}, fmt.Errorf("digest %s: %w", policyID, err)
	}
	r.metrics.digests.WithLabelValues(policyID).Inc()
	return store.FiredStep{Notification: n, Deliveries: ds}, nil
}
