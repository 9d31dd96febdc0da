package events

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// gapReach is how far past the look-ahead window (and before now) a gap's
// true bounds are looked for; one running on further is cut there.
const gapReach = 30 * 24 * time.Hour

// reconcileGaps compares, in tx, the gaps announced and not yet passed with
// the gaps the schedule has in [now, now+lookahead), and returns the
// events that make them agree: gap_ahead for each gap not announced yet
// (time off added inside the window included), with its true start and
// end, and gap_covered for each announced gap the schedule no longer has
// as announced (covered, or its bounds moved: the new one is announced
// too). State, not a window: a gap is announced once however often it is
// looked at.
func reconcileGaps(ctx context.Context, tx pgx.Tx, sched *schedule.Schedule, now time.Time, lookahead time.Duration) ([]*supportv1.RotationEvent, error) {
	current := map[string]schedule.Gap{}
	var order []string
	for _, g := range sched.GapsAround(now, now.Add(lookahead), gapReach) {
		id := gapID(g)
		if _, ok := current[id]; !ok {
			order = append(order, id)
		}
		current[id] = g
	}
	var out []*supportv1.RotationEvent
	rows, err := tx.Query(ctx, `SELECT gap_id, rotation_id, team_id, hero, starts_at, ends_at, reason
		FROM gap_announcements WHERE covered_at IS NULL AND (ends_at > $1 OR open_end) ORDER BY starts_at, gap_id`, now)
	if err != nil {
		return nil, fmt.Errorf("list announced gaps: %w", err)
	}
	var void []*supportv1.RotationEvent
	announced := map[string]bool{}
	for rows.Next() {
		var id string
		ev := &supportv1.RotationEvent{Type: supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_COVERED, OccurredAt: timestamppb.New(now)}
		var start, end time.Time
		if err := rows.Scan(&id, &ev.RotationId, &ev.TeamId, &ev.Hero, &start, &end, &ev.Detail); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan announced gap: %w", err)
		}
		announced[id] = true
		if _, still := current[id]; still {
			continue
		}
		ev.GapId, ev.Start, ev.End = id, timestamppb.New(start), timestamppb.New(end)
		ev.Id = "rotation:gap_covered:" + id + ":" + strconv.FormatInt(now.UnixNano(), 10)
		ev.Detail = "no longer a gap as announced: " + ev.Detail
		void = append(void, ev)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list announced gaps: %w", err)
	}
	for _, ev := range void {
		if _, err := tx.Exec(ctx, `UPDATE gap_announcements SET covered_at = $2 WHERE gap_id = $1`, ev.GetGapId(), now); err != nil {
			return nil, fmt.Errorf("mark gap %s covered: %w", ev.GetGapId(), err)
		}
		out = append(out, ev)
	}
	for _, id := range order {
		if announced[id] {
			continue
		}
		g := current[id]
		// A gap covered once and open again is announced again.
		tag, err := tx.Exec(ctx, `INSERT INTO gap_announcements (gap_id, rotation_id, team_id, hero, starts_at, ends_at, open_end, reason, announced_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (gap_id) DO UPDATE SET covered_at = NULL, announced_at = $9, starts_at = $5, ends_at = $6, reason = $8
			WHERE gap_announcements.covered_at IS NOT NULL`,
			id, g.Rotation, g.Team, g.Role == schedule.RoleHero, g.Start, g.End, g.OpenEnd, g.Reason, now)
		if err != nil {
			return nil, fmt.Errorf("record gap %s: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			continue
		}
		detail := g.Reason
		if g.OpenStart {
			detail += " (started more than 30 days before it was announced)"
		}
		if g.OpenEnd {
			detail += " (runs on more than 30 days past the look-ahead)"
		}
		out = append(out, &supportv1.RotationEvent{
			Id: "rotation:gap_ahead:" + id + ":" + strconv.FormatInt(now.UnixNano(), 10), GapId: id,
			Type:       supportv1.RotationEventType_ROTATION_EVENT_TYPE_GAP_AHEAD,
			RotationId: g.Rotation, TeamId: g.Team, Hero: g.Role == schedule.RoleHero,
			Start: timestamppb.New(g.Start), End: timestamppb.New(g.End), OccurredAt: timestamppb.New(now), Detail: detail,
		})
	}
	return out, nil
}

// gapID names a gap by its role and bounds; an open bound (cut at the
// reach) is "open", so the id stays while the cut moves with the clock.
func gapID(g schedule.Gap) string {
	bound := func(t time.Time, open bool) string {
		if open {
			return "open"
		}
		return strconv.FormatInt(t.Unix(), 10)
	}
	return g.Rotation + ":" + g.Team + ":" + bound(g.Start, g.OpenStart) + ":" + bound(g.End, g.OpenEnd)
}
