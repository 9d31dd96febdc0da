package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
)

// ErrIdentityTaken is returned when an identity already belongs to another
// customer.
var ErrIdentityTaken = errors.New("identity belongs to another customer")

// identityFields maps identity kinds to the customer's fields.
func identityFields(c *triagev1.Customer) map[string][]string {
	return map[string][]string{
		tier.KindEmailDomain: c.GetEmailDomains(),
		tier.KindSlack:       c.GetSlackUserIds(),
		tier.KindGitHub:      c.GetGithubLogins(),
		tier.KindSentry:      c.GetSentryUsers(),
	}
}

// identityKinds is the order identities are written and listed in.
var identityKinds = []string{tier.KindEmailDomain, tier.KindSlack, tier.KindGitHub, tier.KindSentry}

// GetCustomer loads a customer with its identities (tier fields unset).
func GetCustomer(ctx context.Context, q Querier, id string) (*triagev1.Customer, error) {
	var c triagev1.Customer
	err := q.QueryRow(ctx, `SELECT id, name, organisation, plan, monthly_revenue_cents, in_sales_process FROM customers WHERE id = $1`, id).
		Scan(&c.Id, &c.Name, &c.Organisation, &c.Plan, &c.MonthlyRevenueCents, &c.InSalesProcess)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load customer %s: %w", id, err)
	}
	rows, err := q.Query(ctx, `SELECT kind, value FROM customer_identities WHERE customer_id = $1 ORDER BY kind, position, value`, id)
	if err != nil {
		return nil, fmt.Errorf("load identities of %s: %w", id, err)
	}
	var kind, value string
	_, err = pgx.ForEachRow(rows, []any{&kind, &value}, func() error {
		switch kind {
		case tier.KindEmailDomain:
			c.EmailDomains = append(c.EmailDomains, value)
		case tier.KindSlack:
			c.SlackUserIds = append(c.SlackUserIds, value)
		case tier.KindGitHub:
			c.GithubLogins = append(c.GithubLogins, value)
		case tier.KindSentry:
			c.SentryUsers = append(c.SentryUsers, value)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load identities of %s: %w", id, err)
	}
	return &c, nil
}

// MatchCustomer returns the customer owning the first candidate identity
// that is known, or nil.
func MatchCustomer(ctx context.Context, q Querier, candidates []tier.Identity) (*triagev1.Customer, error) {
	if len(candidates) == 0 {
		return nil, nil
	}
	kinds := make([]string, len(candidates))
	values := make([]string, len(candidates))
	for i, c := range candidates {
		kinds[i], values[i] = c.Kind, strings.ToLower(c.Value)
	}
	var id string
	err := q.QueryRow(ctx, `SELECT ci.customer_id
		FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS cand(kind, value, n)
		JOIN customer_identities ci ON ci.kind = cand.kind AND lower(ci.value) = cand.value
		ORDER BY cand.n LIMIT 1`, kinds, values).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("match customer: %w", err)
	}
	return GetCustomer(ctx, q, id)
}

// SaveCustomer inserts or updates the customer row (not its identities).
func SaveCustomer(ctx context.Context, q Querier, c *triagev1.Customer, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO customers (id, name, organisation, plan, monthly_revenue_cents, in_sales_process, created_at, updated_at)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$7)
		ON CONFLICT (id) DO UPDATE SET name = $2, organisation = $3, plan = $4, monthly_revenue_cents = $5,
			in_sales_process = $6, updated_at = $7`,
		c.GetId(), c.GetName(), c.GetOrganisation(), c.GetPlan(), c.GetMonthlyRevenueCents(), c.GetInSalesProcess(), at)
	if err != nil {
		return fmt.Errorf("save customer %s: %w", c.GetId(), err)
	}
	return nil
}

// ClearIdentities removes a customer's identities.
func ClearIdentities(ctx context.Context, q Querier, customerID string) error {
	if _, err := q.Exec(ctx, `DELETE FROM customer_identities WHERE customer_id = $1`, customerID); err != nil {
		return fmt.Errorf("clear identities of %s: %w", customerID, err)
	}
	return nil
}

// AddIdentities writes a customer's identities; one held by another
// customer fails with ErrIdentityTaken.
func AddIdentities(ctx context.Context, q Querier, c *triagev1.Customer) error {
	fields := identityFields(c)
	for _, kind := range identityKinds {
		for i, v := range fields[kind] {
			var owner string
			err := q.QueryRow(ctx, `SELECT customer_id FROM customer_identities WHERE kind = $1 AND lower(value) = lower($2)`, kind, v).Scan(&owner)
			switch {
			case err == nil && owner == c.GetId():
				continue // listed twice
			case err == nil:
				return fmt.Errorf("customer %s: %s %q: %w %s", c.GetId(), kind, v, ErrIdentityTaken, owner)
			case !errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("customer %s: check %s %q: %w", c.GetId(), kind, v, err)
			}
			if _, err := q.Exec(ctx, `INSERT INTO customer_identities (kind, value, customer_id, position) VALUES ($1,$2,$3,$4)`, kind, v, c.GetId(), i); err != nil {
				return fmt.Errorf("customer %s: add %s %q: %w", c.GetId(), kind, v, err)
			}
		}
	}
	return nil
}

// ActiveConversationIDs lists the ids of conversations not closed, whose
// tier may change with the directory.
func ActiveConversationIDs(ctx context.Context, q Querier) ([]string, error) {
	// Alerts have no customer tier.
	rows, err := q.Query(ctx, `SELECT id FROM conversations WHERE status <> 3 AND alert IS NULL ORDER BY opened_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list active conversations: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list active conversations: %w", err)
	}
	return ids, nil
}
