package escalate

import (
	"testing"
	"time"
)

// TestRefreshDue: when an alert group's messages are rewritten with its
// latest update. A storm rewrites them at once, then at most once per
// interval.
func TestRefreshDue(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	var never time.Time
	for _, tc := range []struct {
		name               string
		pending, refreshed time.Time
		want               time.Time
	}{
		{"the first update: at once", never, never, now},
		{"rewritten a minute ago (interval 1m): at once", never, now.Add(-time.Minute), now},
		{"rewritten 20s ago: when the interval ends", never, now.Add(-20 * time.Second), now.Add(40 * time.Second)},
		{"an update already waits: its time stands", now.Add(30 * time.Second), now.Add(-30 * time.Second), now.Add(30 * time.Second)},
		{"a waiting update overdue: its time stands (Tick sends it)", now.Add(-time.Second), never, now.Add(-time.Second)},
	} {
		if got := refreshDue(tc.pending, tc.refreshed, now, time.Minute); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
