package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sidekickhq/sidekick/platform/pg"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/tier"
)

// The set-based reads of a batch of inbound messages: one round trip each
// for the whole batch.

// ThreadKey identifies a thread.
type ThreadKey struct {
	Channel supportv1.Channel
	Key     string
}

// ClaimInboxBatch records inbound message ids and returns those that were
// new (each once, whatever the duplicates in ids).
func ClaimInboxBatch(ctx context.Context, q Querier, ids, subjects []string, at time.Time) (map[string]bool, error) {
	rows, err := q.Query(ctx, `INSERT INTO inbox (message_id, subject, handled_at)
		SELECT id, subject, $3 FROM unnest($1::text[], $2::text[]) AS m(id, subject)
		ON CONFLICT (message_id) DO NOTHING RETURNING message_id`, ids, subjects, at)
	if err != nil {
		return nil, fmt.Errorf("claim %d inbox ids: %w", len(ids), err)
	}
	fresh := map[string]bool{}
	var id string
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { fresh[id] = true; return nil }); err != nil {
		return nil, fmt.Errorf("claim %d inbox ids: %w", len(ids), err)
	}
	return fresh, nil
}

// IsThreadConflict reports whether err is the creation of a conversation
// whose thread another transaction gave one first.
func IsThreadConflict(err error) bool {
	return pg.IsUniqueViolation(err) && pg.ConstraintName(err) == "conversations_channel_thread_key_key"
}

// LockThreads loads and locks the conversations of these threads with
// their state, in id order (so concurrent batches lock alike).
func LockThreads(ctx context.Context, q Querier, keys []ThreadKey) (map[ThreadKey]*Locked, error) {
	chs := make([]int16, len(keys))
	ks := make([]string, len(keys))
	for i, k := range keys {
		chs[i], ks[i] = int16(k.Channel), k.Key
	}
	// channel = ANY and thread_key = ANY probe the (channel, thread_key)
	// index whatever the statistics say; pairs outside keys are dropped
	// below.
	rows, err := q.Query(ctx, `SELECT `+conversationColumns+`, `+stateColumns+conversationFrom+`
		WHERE c.channel = ANY($1::smallint[]) AND c.thread_key = ANY($2::text[])
		ORDER BY c.id FOR UPDATE OF c`, chs, ks)
	if err != nil {
		return nil, fmt.Errorf("lock %d threads: %w", len(keys), err)
	}
	out := map[ThreadKey]*Locked{}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var s stateScan
		c, err := scanConversationWith(r, s.dest()...)
		if err != nil {
			return struct{}{}, err
		}
		st, err := s.state(c.GetId())
		if err != nil {
			return struct{}{}, err
		}
		out[ThreadKey{Channel: c.GetChannel(), Key: c.GetThreadKey()}] = &Locked{Conversation: c, State: st}
		return struct{}{}, nil
	})
	for k := range out {
		if !slices.Contains(keys, k) {
			delete(out, k) // another channel's thread with the same key
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lock %d threads: %w", len(keys), err)
	}
	return out, nil
}

// MatchCustomers is MatchCustomer for several authors at once: out[i] is
// the customer owning the first known identity of candidates[i], or nil.
// The customers carry what tiers need (no identities).
func MatchCustomers(ctx context.Context, q Querier, candidates [][]tier.Identity) ([]*triagev1.Customer, error) {
	out := make([]*triagev1.Customer, len(candidates))
	var (
		idx, pos      []int32
		kinds, values []string
	)
	for i, cs := range candidates {
		for n, c := range cs {
			idx, pos = append(idx, int32(i)), append(pos, int32(n))
			kinds, values = append(kinds, c.Kind), append(values, strings.ToLower(c.Value))
		}
	}
	if len(idx) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (cand.i) cand.i, cu.id, cu.name, cu.organisation, cu.plan,
			cu.monthly_revenue_cents, cu.in_sales_process
		FROM unnest($1::int[], $2::int[], $3::text[], $4::text[]) AS cand(i, n, kind, value)
		JOIN customer_identities ci ON ci.kind = cand.kind AND lower(ci.value) = cand.value
		JOIN customers cu ON cu.id = ci.customer_id
		ORDER BY cand.i, cand.n`, idx, pos, kinds, values)
	if err != nil {
		return nil, fmt.Errorf("match %d authors: %w", len(candidates), err)
	}
	_, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct{}, error) {
		var (
			i int32
			c triagev1.Customer
		)
		if err := r.Scan(&i, &c.Id, &c.Name, &c.Organisation, &c.Plan, &c.MonthlyRevenueCents, &c.InSalesProcess); err != nil {
			return struct{}{}, err
		}
		if i < 0 || int(i) >= len(out) {
			return struct{}{}, errors.New("author index out of range")
		}
		out[i] = &c
		return struct{}{}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("match %d authors: %w", len(candidates), err)
	}
	return out, nil
}
