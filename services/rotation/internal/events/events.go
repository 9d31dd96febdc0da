// Package events publishes rotation's schedule events on support.rotation.*:
// shift_started and shift_ended at each handoff, override_created when an
// override or swap is recorded, and gap_ahead a configured time before a
// coverage gap.
//
// Handoffs and gaps advance a cursor in Postgres; overrides are announced
// from an outbox flag on the overrides table. The replica holding the cursor
// row lock computes the events of (cursor, now], publishes them (each
// returning after its PubAck), then moves the cursor in the same
// transaction; a crash in between republishes the same events with the same
// ids, which JetStream's duplicate window and idempotent consumers (keyed
// by ce-id) absorb.
package events

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
	"github.com/sidekickhq/sidekick/services/rotation/internal/store"
)

// Publisher publishes one event and returns after the PubAck.
type Publisher interface {
	Publish(ctx context.Context, e bus.Event) (*jetstream.PubAck, error)
}

// Emitter computes and publishes schedule events.
type Emitter struct {
	pool *pgxpool.Pool
	pub  Publisher
	// GapLookahead is how far ahead a coverage gap is announced.
	GapLookahead time.Duration
	// MaxCatchUp bounds how far back a cursor that fell behind (a long
	// outage) replays; older handoffs are skipped.
	MaxCatchUp time.Duration
}

// New returns an Emitter.
func New(pool *pgxpool.Pool, pub Publisher, gapLookahead time.Duration) *Emitter {
	return &Emitter{pool: pool, pub: pub, GapLookahead: gapLookahead, MaxCatchUp: 24 * time.Hour}
}

const cursorName = "schedule"

// Tick publishes the events of (cursor, now] for sched. The first tick ever
// only sets the cursor. It returns how many events were published.
func (e *Emitter) Tick(ctx context.Context, sched *schedule.Schedule, now time.Time) (int, error) {
	if sched == nil {
		return 0, nil
	}
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx)
	var from time.Time
	err = tx.QueryRow(ctx, `SELECT checked_to FROM event_cursor WHERE name = $1 FOR UPDATE SKIP LOCKED`, cursorName).Scan(&from)
	if errors.Is(err, pgx.ErrNoRows) {
		// Either no cursor yet, or another replica holds it.
		tag, err := tx.Exec(ctx, `INSERT INTO event_cursor (name, checked_to) VALUES ($1, $2) ON CONFLICT DO NOTHING`, cursorName, now)
		if err != nil {
			return 0, fmt.Errorf("create cursor: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return 0, tx.Commit(ctx)
		}
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("lock cursor: %w", err)
	}
	if !now.After(from) {
		return 0, nil
	}
	if now.Sub(from) > e.MaxCatchUp {
		from = now.Add(-e.MaxCatchUp)
	}
	created, err := store.Unannounced(ctx, tx)
	if err != nil {
		return 0, err
	}
	evs, err := Compute(sched, created, from, now, e.GapLookahead)
	if err != nil {
		return 0, err
	}
	for _, ev := range evs {
		if _, err := e.pub.Publish(ctx, bus.Event{Subject: bus.RotationSubject(subjectOf(ev.GetType())), ID: ev.GetId(), Time: ev.GetOccurredAt().AsTime(), Message: ev}); err != nil {
			return 0, fmt.Errorf("publish %s: %w", ev.GetId(), err)
		}
	}
	ids := make([]string, len(created))
	for i, o := range created {
		ids[i] = o.ID
	}
	if err := store.MarkAnnounced(ctx, tx, ids); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `UPDATE event_cursor SET checked_to = $2 WHERE name = $1`, cursorName, now); err != nil {
		return 0, fmt.Errorf("advance cursor: %w", err)
	}
	return len(evs), tx.Commit(ctx)
}

func subjectOf(t supportv1.RotationEventType) string {
	switch t {
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_STARTED:
		return "shift_started"
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_ENDED:
		return "shift_ended"
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_CREATED:
		return "override_created"
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_AHEAD:
		return "gap_ahead"
	}
	return "unknown"
}

// Compute lists the events of the half-open window (from, to]: handoffs
// whose start falls in it, the given newly recorded overrides, and coverage gaps whose
// start enters the look-ahead horizon in it. Ids are stable, so computing
// the same window twice yields the same events.
func Compute(sched *schedule.Schedule, overrides []schedule.Override, from, to time.Time, lookahead time.Duration) ([]*supportv1.RotationEvent, error) {
	var out []*supportv1.RotationEvent
	hero := sched.Config().Support.Hero
	teamOf := map[string]string{}
	for _, t := range sched.Teams() {
		teamOf[t.Secondary] = t.ID
	}
	for _, r := range sched.Rotations() {
		// Shifts overlapping (from, to], widened by one nanosecond so a
		// shift that starts exactly at from is excluded and one at to is in.
		shifts, err := sched.Shifts(r.ID, from.Add(-time.Nanosecond), to.Add(time.Nanosecond))
		if err != nil {
			return nil, err
		}
		for i, sh := range shifts {
			if sh.Start.After(from) && !sh.Start.After(to) {
				prev := ""
				if i > 0 && shifts[i-1].End.Equal(sh.Start) {
					prev = shifts[i-1].Person
				}
				out = append(out, shiftEvent(supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_STARTED, sh, sh.Start, r.ID == hero, teamOf[r.ID], prev))
			}
			if sh.End.After(from) && !sh.End.After(to) {
				out = append(out, shiftEvent(supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_ENDED, sh, sh.End, r.ID == hero, teamOf[r.ID], ""))
			}
		}
	}
	for _, o := range overrides {
		out = append(out, &supportv1.RotationEvent{
			Id:         "rotation:override_created:" + o.ID,
			Type:       supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_CREATED,
			RotationId: o.Rotation, Hero: o.Rotation == hero, TeamId: teamOf[o.Rotation],
			PersonId: o.With, PreviousPersonId: o.Person,
			Start: timestamppb.New(o.Start), End: timestamppb.New(o.End), OccurredAt: timestamppb.New(to),
			Detail: fmt.Sprintf("%s: %s %s -> %s (%s)", o.Rotation, o.Kind, o.Person, o.With, o.Note),
		})
	}
	if lookahead > 0 {
		for _, g := range sched.Gaps(from.Add(lookahead), to.Add(lookahead)) {
			if !g.Start.After(from.Add(lookahead)) {
				continue // announced by an earlier window
			}
			out = append(out, &supportv1.RotationEvent{
				Id:         "rotation:gap_ahead:" + g.Rotation + ":" + g.Team + ":" + strconv.FormatInt(g.Start.Unix(), 10),
				Type:       supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_AHEAD,
				RotationId: g.Rotation, TeamId: g.Team, Hero: g.Role == schedule.RoleHero,
				Start: timestamppb.New(g.Start), End: timestamppb.New(g.End), OccurredAt: timestamppb.New(to), Detail: g.Reason,
			})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetOccurredAt().AsTime().Before(out[j].GetOccurredAt().AsTime()) })
	return out, nil
}

func shiftEvent(t supportv1.RotationEventType, sh schedule.Shift, at time.Time, hero bool, team, prev string) *supportv1.RotationEvent {
	kind := "shift_started"
	if t == supportv1.RotationEventType_ROTATION_EVENT_TYPE_SHIFT_ENDED {
		kind = "shift_ended"
	}
	return &supportv1.RotationEvent{
		Id:         fmt.Sprintf("rotation:%s:%s:%s:%d", kind, sh.Rotation, sh.Person, at.Unix()),
		Type:       t,
		RotationId: sh.Rotation, TeamId: team, Hero: hero, PersonId: sh.Person, PreviousPersonId: prev,
		Start: timestamppb.New(sh.Start), End: timestamppb.New(sh.End), OccurredAt: timestamppb.New(at),
		Detail: sh.Reason.String(),
	}
}
