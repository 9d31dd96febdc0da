// Package events writes rotation's schedule events for support.rotation.*
// to rotation's outbox (platform/outbox), whose relay publishes them:
// shift_started and shift_ended at each handoff, gap_ahead a configured
// time before a coverage gap, and override_created when an override or
// swap is recorded (written by the transaction that records it; see
// OverrideCreated).
//
// Handoffs and gaps advance a cursor in Postgres: the replica holding the
// cursor row lock computes the events of (cursor, now] and writes them to
// the outbox in the transaction that moves the cursor, so each window's
// events are written once whatever the replicas' clocks say. Event ids are
// stable, so a window computed twice yields the same ids, which the outbox
// and JetStream's duplicate window absorb.
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
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/bus"
	"github.com/sidekickhq/sidekick/platform/orgfile"
	"github.com/sidekickhq/sidekick/platform/outbox"
	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
	"github.com/sidekickhq/sidekick/services/rotation/internal/store"
)

// Emitter computes schedule events and writes them to the outbox.
type Emitter struct {
	pool *pgxpool.Pool
	// GapLookahead is how far ahead a coverage gap is announced.
	GapLookahead time.Duration
	// MaxCatchUp bounds how far back a cursor that fell behind (a long
	// outage) replays; older handoffs are skipped.
	MaxCatchUp time.Duration
}

// New returns an Emitter.
func New(pool *pgxpool.Pool, gapLookahead time.Duration) *Emitter {
	return &Emitter{pool: pool, GapLookahead: gapLookahead, MaxCatchUp: 24 * time.Hour}
}

const cursorName = "schedule"

// Tick writes the events of (cursor, now] for sched to the outbox, with
// the announcements of overrides recorded before overrides were announced
// through the outbox (the announced flag), and moves the cursor, in one
// transaction. The first tick ever only sets the cursor. It returns how
// many events were written.
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
	evs, err := Compute(sched, created, from, now)
	if err != nil {
		return 0, err
	}
	if e.GapLookahead > 0 {
		gaps, err := reconcileGaps(ctx, tx, sched, now, e.GapLookahead)
		if err != nil {
			return 0, err
		}
		evs = append(evs, gaps...)
	}
	rows := make([]outbox.Event, len(evs))
	for i, ev := range evs {
		if rows[i], err = Row(ev); err != nil {
			return 0, err
		}
	}
	if err := outbox.Insert(ctx, tx, rows...); err != nil {
		return 0, err
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

// Row is ev as a row of the outbox.
func Row(ev *supportv1.RotationEvent) (outbox.Event, error) {
	return outbox.Message(bus.RotationSubject(subjectOf(ev.GetType())), ev.GetId(), ev.GetOccurredAt().AsTime(), ev)
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
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_DELETED:
		return "override_deleted"
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_COVERED:
		return "gap_covered"
	case supportv1.RotationEventType_ROTATION_EVENT_TYPE_CONFIG_APPLIED:
		return "config_applied"
	}
	return "unknown"
}

// ConfigApplied announces the organisation file stored as version (the
// config_versions row) at at, by whom: the notifier and triage read their
// sections from it. Its id names the row, so the same file applied again
// later is a new event.
func ConfigApplied(version int64, yaml []byte, by string, at time.Time) *supportv1.RotationEvent {
	return &supportv1.RotationEvent{
		Id:            "config_applied:" + strconv.FormatInt(version, 10),
		Type:          supportv1.RotationEventType_ROTATION_EVENT_TYPE_CONFIG_APPLIED,
		OccurredAt:    timestamppb.New(at),
		Detail:        by,
		ConfigVersion: orgfile.Digest(yaml),
		Config:        yaml,
	}
}

// OverrideCreated is the announcement of override o, recorded at at.
func OverrideCreated(sched *schedule.Schedule, o schedule.Override, at time.Time) *supportv1.RotationEvent {
	team := ""
	for _, t := range sched.Teams() {
		if t.Secondary == o.Rotation {
			team = t.ID
		}
	}
	return &supportv1.RotationEvent{
		Id:         "rotation:override_created:" + o.ID,
		Type:       supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_CREATED,
		RotationId: o.Rotation, Hero: o.Rotation == sched.Config().Support.Hero, TeamId: team,
		PersonId: o.With, PreviousPersonId: o.Person,
		Start: timestamppb.New(o.Start), End: timestamppb.New(o.End), OccurredAt: timestamppb.New(at),
		Detail: fmt.Sprintf("%s: %s %s -> %s (%s)", o.Rotation, o.Kind, o.Person, o.With, o.Note),
	}
}

// OverrideDeleted is the announcement that override o, made through the
// API, was deleted at at.
func OverrideDeleted(sched *schedule.Schedule, o schedule.Override, at time.Time) *supportv1.RotationEvent {
	ev := OverrideCreated(sched, o, at)
	ev.Id = "rotation:override_deleted:" + o.ID + ":" + strconv.FormatInt(at.UnixNano(), 10)
	ev.Type = supportv1.RotationEventType_ROTATION_EVENT_TYPE_OVERRIDE_DELETED
	ev.Detail = "deleted: " + ev.Detail
	return ev
}

// Compute lists the events of the half-open window (from, to]: handoffs
// whose start falls in it and the announcements of the given overrides.
// Ids are stable, so computing the same window twice yields the same
// events. Coverage gaps are not a window's: see reconcileGaps.
func Compute(sched *schedule.Schedule, overrides []schedule.Override, from, to time.Time) ([]*supportv1.RotationEvent, error) {
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
		out = append(out, OverrideCreated(sched, o, to))
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
