-- +goose Up
-- The coverage gaps announced on support.rotation.gap_ahead and not yet
-- passed: each tick compares them with the gaps the schedule has now, so a
-- gap is announced once with its true bounds, and a gap covered (or
-- changed) since is announced void on support.rotation.gap_covered.
CREATE TABLE gap_announcements (
    gap_id       text        PRIMARY KEY,
    rotation_id  text        NOT NULL,
    team_id      text        NOT NULL DEFAULT '',
    hero         boolean     NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    open_end     boolean     NOT NULL DEFAULT false,
    reason       text        NOT NULL DEFAULT '',
    announced_at timestamptz NOT NULL,
    covered_at   timestamptz
);
CREATE INDEX gap_announcements_open ON gap_announcements (ends_at) WHERE covered_at IS NULL;

-- +goose Down
DROP TABLE gap_announcements;
