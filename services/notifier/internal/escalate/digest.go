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
	if p := r.policies.Load().Policy(policyID); every <= 0 && p != nil && p.Digest != nil {
		every = p.Digest.Every
	}
	if every <= 0 {
		return due.Add(time.Minute)
	}
	return policy.Digest{Every: every}.Next(due)
}

// DigestKey is the idempotency key of part (from 1) of the digest of
// policyID to target due at due; the first part keeps the key digests
// had before they came in parts.
func DigestKey(policyID, target string, due time.Time, part int) string {
	key := fmt.Sprintf("digest/%s/%s/%d", policyID, target, due.Unix())
	if part > 1 {
		key += fmt.Sprintf("/%d", part)
	}
	return key
}

// A digest message lists at most digestLines items, each title cut to
// digestTitle characters: within Slack's 3,000 characters of a section.
// More items make more parts, each a message of its own, so every
// conversation is listed once however many came in.
const (
	digestLines = 12
	digestTitle = 100
	// digestLink bounds a link shown with an item.
	digestLink = 200
)

// digestRequests are the notifications listing items, to targets: one
// per digestLines items. queueURL, when set, is every part's link.
func digestRequests(policyID, target string, due time.Time, items []store.DigestItem, targets []deliver.Target, queueURL string) []deliver.Request {
	var links []notify.Link
	if queueURL != "" {
		links = []notify.Link{{Title: "Open the queue", URL: queueURL}}
	}
	noun := "conversations"
	if len(items) == 1 {
		noun = "conversation"
	}
	parts := (len(items) + digestLines - 1) / digestLines
	var out []deliver.Request
	for part := 1; part <= parts; part++ {
		chunk := items[(part-1)*digestLines : min(part*digestLines, len(items))]
		var b strings.Builder
		for _, it := range chunk {
			title := it.Title
			if r := []rune(title); len(r) > digestTitle {
				title = strings.TrimSpace(string(r[:digestTitle-1])) + "…"
			}
			fmt.Fprintf(&b, "• %s", title)
			if it.Link != "" && len(it.Link) <= digestLink {
				fmt.Fprintf(&b, " — %s", it.Link)
			}
			b.WriteString("\n")
		}
		title := fmt.Sprintf("digest: %d new %s", len(items), noun)
		if parts > 1 {
			title += fmt.Sprintf(" (%d of %d)", part, parts)
		}
		out = append(out, deliver.Request{
			IdempotencyKey: DigestKey(policyID, target, due, part), Origin: "digest", Targets: targets, Urgency: notify.Ping,
			Title: title, Text: strings.TrimSpace(b.String()), Links: links, Lenient: true,
		})
	}
	return out
}

// queueURL is the console's queue of open conversations, or "" without a
// console.
func (r *Runner) queueURL() string {
	if r.cfg.ConsoleURL == "" {
		return ""
	}
	return strings.TrimSuffix(r.cfg.ConsoleURL, "/") + "/"
}

// digest is the store.DigestFunc: the notifications listing the items.
func (r *Runner) digest(ctx context.Context, policyID, target string, due time.Time, items []store.DigestItem) ([]store.DigestPart, error) {
	t, err := policy.ParseTarget(target)
	if err != nil {
		return nil, fmt.Errorf("digest %s: %w", policyID, err)
	}
	targets := r.targets(store.Escalation{ID: DigestKey(policyID, target, due, 1)}, t)
	var parts []store.DigestPart
	for i, req := range digestRequests(policyID, target, due, items, targets, r.queueURL()) {
		n, ds, err := r.dispatch.Prepare(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("digest %s: %w", policyID, err)
		}
		part := store.DigestPart{FiredStep: store.FiredStep{Notification: n, Deliveries: ds}}
		for _, it := range items[i*digestLines : min((i+1)*digestLines, len(items))] {
			part.Keys = append(part.Keys, it.Key)
		}
		parts = append(parts, part)
	}
	r.metrics.digests.WithLabelValues(policyID).Inc()
	return parts, nil
}
