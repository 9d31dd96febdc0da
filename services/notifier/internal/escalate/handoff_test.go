package escalate

import (
	"testing"
	"time"
)

// TestHandoffStart: a handoff summary goes out at once when the incoming
// hero's shift has started, else it is held for the wait at most.
func TestHandoffStart(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	if got, hold := handoffStart(at, true, time.Hour); !got.Equal(at) || hold {
		t.Errorf("shift started: %v hold=%v, want at once", got, hold)
	}
	if got, hold := handoffStart(at, false, time.Hour); !got.Equal(at.Add(time.Hour)) || !hold {
		t.Errorf("shift not started: %v hold=%v, want held until an hour later", got, hold)
	}
}
