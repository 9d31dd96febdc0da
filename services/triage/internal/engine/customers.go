package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
)

// Customer returns a directory entry with its tier and the reason.
func (e *Engine) Customer(ctx context.Context, id string) (*triagev1.Customer, error) {
	if strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("customer id is required: %w", ErrInvalid)
	}
	c, err := store.GetCustomer(ctx, e.pool, id)
	if err != nil {
		return nil, err
	}
	c.Tier, c.TierReason, _ = e.tierOf(c)
	return c, nil
}

// normalizeCustomer trims fields, lowercases the plan and identities that
// ignore case, and de-duplicates lists.
func normalizeCustomer(in *triagev1.Customer) (*triagev1.Customer, error) {
	c := proto.Clone(in).(*triagev1.Customer)
	c.Id = strings.TrimSpace(c.GetId())
	if c.Id == "" {
		return nil, fmt.Errorf("customer %q has no id: %w", c.GetName(), ErrInvalid)
	}
	if c.GetMonthlyRevenueCents() < 0 {
		return nil, fmt.Errorf("customer %s: negative monthly revenue: %w", c.Id, ErrInvalid)
	}
	c.Name = strings.TrimSpace(c.GetName())
	c.Organisation = strings.TrimSpace(c.GetOrganisation())
	c.Plan = tier.NormalizePlan(c.GetPlan())
	list := func(in []string, lower bool, trim string) []string {
		var out []string
		for _, v := range in {
			v = strings.TrimPrefix(strings.TrimSpace(v), trim)
			if lower {
				v = strings.ToLower(v)
			}
			if v != "" && !slices.ContainsFunc(out, func(o string) bool { return strings.EqualFold(o, v) }) {
				out = append(out, v)
			}
		}
		return out
	}
	c.EmailDomains = list(c.GetEmailDomains(), true, "@")
	c.SlackUserIds = list(c.GetSlackUserIds(), false, "")
	c.GithubLogins = list(c.GetGithubLogins(), false, "@")
	c.SentryUsers = list(c.GetSentryUsers(), false, "")
	c.Tier, c.TierReason = supportv1.Tier_TIER_UNSPECIFIED, ""
	return c, nil
}

func tierName(t supportv1.Tier) string {
	return strings.ToLower(strings.TrimPrefix(t.String(), "TIER_"))
}

// customerDiff describes what changes from old to c ("" when nothing).
func (e *Engine) customerDiff(old, c *triagev1.Customer) string {
	newTier, newReason, _ := e.tierOf(c)
	if old == nil {
		return fmt.Sprintf("create customer %s: name=%q organisation=%q plan=%q revenue=%s/month in_sales_process=%t email_domains=%v slack=%v github=%v sentry=%v; tier %s (%s)",
			c.GetId(), c.GetName(), c.GetOrganisation(), c.GetPlan(), tier.Dollars(c.GetMonthlyRevenueCents()), c.GetInSalesProcess(),
			c.GetEmailDomains(), c.GetSlackUserIds(), c.GetGithubLogins(), c.GetSentryUsers(), tierName(newTier), newReason)
	}
	var parts []string
	str := func(name, a, b string) {
		if a != b {
			parts = append(parts, fmt.Sprintf("%s %q -> %q", name, a, b))
		}
	}
	set := func(name string, a, b []string) {
		if !slices.Equal(a, b) {
			parts = append(parts, fmt.Sprintf("%s %v -> %v", name, a, b))
		}
	}
	str("name", old.GetName(), c.GetName())
	str("organisation", old.GetOrganisation(), c.GetOrganisation())
	str("plan", old.GetPlan(), c.GetPlan())
	if old.GetMonthlyRevenueCents() != c.GetMonthlyRevenueCents() {
		parts = append(parts, fmt.Sprintf("revenue %s -> %s/month", tier.Dollars(old.GetMonthlyRevenueCents()), tier.Dollars(c.GetMonthlyRevenueCents())))
	}
	if old.GetInSalesProcess() != c.GetInSalesProcess() {
		parts = append(parts, fmt.Sprintf("in_sales_process %t -> %t", old.GetInSalesProcess(), c.GetInSalesProcess()))
	}
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	set("email_domains", sorted(old.GetEmailDomains()), sorted(c.GetEmailDomains()))
	set("slack", sorted(old.GetSlackUserIds()), sorted(c.GetSlackUserIds()))
	set("github", sorted(old.GetGithubLogins()), sorted(c.GetGithubLogins()))
	set("sentry", sorted(old.GetSentryUsers()), sorted(c.GetSentryUsers()))
	if oldTier, oldReason, _ := e.tierOf(old); oldTier != newTier || oldReason != newReason {
		parts = append(parts, fmt.Sprintf("tier %s -> %s (%s)", tierName(oldTier), tierName(newTier), newReason))
	}
	if len(parts) == 0 {
		return ""
	}
	return "update customer " + c.GetId() + ": " + strings.Join(parts, "; ")
}

// errDryRun rolls a dry run back.
var errDryRun = errors.New("dry run")

// UpsertCustomers creates or updates directory entries (customers not
// listed are left alone), then recomputes the customer and tier of every
// conversation not closed, publishing TRIAGED for those that change. It
// returns one line per change; a dry run computes the same lines in a
// transaction it rolls back.
func (e *Engine) UpsertCustomers(ctx context.Context, customers []*triagev1.Customer, dryRun bool) (changes []string, applied bool, err error) {
	norm := make([]*triagev1.Customer, 0, len(customers))
	seen := map[string]bool{}
	for _, in := range customers {
		c, err := normalizeCustomer(in)
		if err != nil {
			return nil, false, err
		}
		if seen[c.GetId()] {
			return nil, false, fmt.Errorf("customer %s is listed twice: %w", c.GetId(), ErrInvalid)
		}
		seen[c.GetId()] = true
		norm = append(norm, c)
	}
	var rechecked time.Time
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		changes = nil
		now := e.now()
		for _, c := range norm {
			old, err := store.GetCustomer(ctx, tx, c.GetId())
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if line := e.customerDiff(old, c); line != "" {
				changes = append(changes, line)
			}
			if err := store.SaveCustomer(ctx, tx, c, now); err != nil {
				return err
			}
			if err := store.ClearIdentities(ctx, tx, c.GetId()); err != nil {
				return err
			}
		}
		for _, c := range norm {
			if err := store.AddIdentities(ctx, tx, c); err != nil {
				if errors.Is(err, store.ErrIdentityTaken) {
					return fmt.Errorf("%w: %w", ErrInvalid, err)
				}
				return err
			}
		}
		lines, due, err := e.retier(ctx, tx)
		if err != nil {
			return err
		}
		changes, rechecked = append(changes, lines...), due
		if dryRun {
			return errDryRun
		}
		return nil
	})
	switch {
	case errors.Is(err, errDryRun):
		return changes, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("upsert customers: %w", err)
	}
	e.armed(nil, rechecked)
	return changes, true, nil
}

// retier matches the author of every conversation not closed again and
// records tier changes; due is when the deadlines it made due again are
// (zero: none).
func (e *Engine) retier(ctx context.Context, tx pgx.Tx) (lines []string, due time.Time, err error) {
	ids, err := store.ActiveConversationIDs(ctx, tx)
	if err != nil {
		return nil, time.Time{}, err
	}
	now := e.now()
	p := newPipe(tx)
	for _, id := range ids {
		c, err := store.ConversationByID(ctx, tx, id, true)
		if err != nil {
			return nil, time.Time{}, err
		}
		cust, err := store.MatchCustomer(ctx, tx, tier.Candidates(c.GetChannel(), c.GetAuthor()))
		if err != nil {
			return nil, time.Time{}, err
		}
		from := c.GetTier()
		t, reason, ref := e.tierOf(cust)
		out := conv.SetTier(c, t, reason, ref, now)
		if !out.Changed {
			continue
		}
		if err := e.save(ctx, p, c, nil, out, now); err != nil {
			return nil, time.Time{}, err
		}
		if from != t {
			// Another tier, other thresholds: compute the deadline again.
			if err := store.RecheckTimer(ctx, tx, c.GetId(), now); err != nil {
				return nil, time.Time{}, err
			}
			due = now
		}
		lines = append(lines, fmt.Sprintf("conversation %s (%s): tier %s -> %s (%s)", c.GetId(), c.GetSubject(), tierName(from), tierName(t), reason))
	}
	return lines, due, p.flush(ctx)
}
