package worktime

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// officeWeek is Mon 2 - Fri 6 March 2026, 09:00-17:00 UTC (London in winter).
func officeWeek(t *testing.T) Windows {
	t.Helper()
	return Normalize(weekdays(zone(t, "Europe/London"), 9, 17).build(2026, time.March, 2, 7))
}

func TestClockRestartsAfterStaffReply(t *testing.T) {
	w := officeWeek(t)
	th := DefaultThresholds()
	var c Clock

	if st := c.Status(w, th, utc("2026-03-02T09:00:00Z")); st.Running || st.Elapsed != 0 || st.Next != LevelUnspecified {
		t.Fatalf("a clock that never ran: %+v", st)
	}
	if !c.CustomerWrote(utc("2026-03-02T10:00:00Z")) {
		t.Fatal("first customer message did not start the clock")
	}
	st := c.Status(w, th, utc("2026-03-02T10:05:00Z"))
	if !st.Running || st.Elapsed != 5*time.Minute || st.Level != LevelGreat || st.Next != LevelOkay ||
		!st.NextAt.Equal(utc("2026-03-02T10:15:00Z")) || !st.BreachAt.Equal(utc("2026-03-03T10:00:00Z")) {
		t.Fatalf("five minutes in: %+v", st)
	}
	if c.CustomerWrote(utc("2026-03-02T10:07:00Z")) {
		t.Error("a follow-up while the clock runs changed it")
	}
	if !c.StaffReplied(utc("2026-03-02T10:10:00Z")) {
		t.Fatal("staff reply did not stop the clock")
	}
	if c.StaffReplied(utc("2026-03-02T10:20:00Z")) {
		t.Error("a second staff reply changed a stopped clock")
	}
	// Stopped: time passes without counting.
	st = c.Status(w, th, utc("2026-03-02T14:00:00Z"))
	if st.Running || st.Elapsed != 10*time.Minute || st.Level != LevelGreat || !st.NextAt.IsZero() || !st.BreachAt.IsZero() {
		t.Fatalf("stopped: %+v", st)
	}

	// The customer writes again: the clock restarts from 10 minutes.
	if !c.CustomerWrote(utc("2026-03-02T14:00:00Z")) {
		t.Fatal("customer message after the reply did not restart the clock")
	}
	st = c.Status(w, th, utc("2026-03-02T14:20:00Z"))
	if st.Elapsed != 30*time.Minute || st.Level != LevelOkay || st.Next != LevelLate {
		t.Fatalf("restarted: %+v", st)
	}
	if want := utc("2026-03-02T14:50:00Z"); !st.NextAt.Equal(want) {
		t.Errorf("late at %v, want %v", st.NextAt, want)
	}
	// 7h30 of working time are left from 14:20: 2h40 on Monday, 4h50 on Tuesday.
	if want := utc("2026-03-03T13:50:00Z"); !st.BreachAt.Equal(want) {
		t.Errorf("breach at %v, want %v", st.BreachAt, want)
	}
	// Overnight nothing counts.
	if e := c.Elapsed(w, utc("2026-03-03T08:00:00Z")); e != 3*time.Hour+10*time.Minute {
		t.Errorf("elapsed before Tuesday's start = %s, want 3h10m", e)
	}
	st = c.Status(w, th, utc("2026-03-03T13:50:00Z"))
	if st.Level != LevelBreached || st.Next != LevelUnspecified || !st.BreachAt.IsZero() {
		t.Errorf("at the breach: %+v", st)
	}
}

func TestClockLateEvents(t *testing.T) {
	w := officeWeek(t)
	var c Clock
	c.CustomerWrote(utc("2026-03-02T10:02:00Z"))
	// An email sent earlier arrives later: it started the wait.
	if !c.CustomerWrote(utc("2026-03-02T10:00:00Z")) {
		t.Error("earlier unanswered message did not move the start back")
	}
	c.StaffReplied(utc("2026-03-02T10:30:00Z"))
	// A staff reply sent earlier arrives later: the first reply counts.
	if !c.StaffReplied(utc("2026-03-02T10:20:00Z")) {
		t.Error("earlier reply did not move the end back")
	}
	// A customer message sent before the reply was answered by it.
	if c.CustomerWrote(utc("2026-03-02T10:15:00Z")) {
		t.Error("message answered by the reply restarted the clock")
	}
	// A reply sent before the clock ever started changes nothing.
	if c.StaffReplied(utc("2026-03-02T09:30:00Z")) {
		t.Error("reply before the first span changed the clock")
	}
	if e := c.Elapsed(w, utc("2026-03-02T12:00:00Z")); e != 20*time.Minute {
		t.Errorf("elapsed = %s, want 20m", e)
	}
	c.CustomerWrote(utc("2026-03-02T11:00:00Z"))
	// A restart cannot move back into the answered span...
	if c.CustomerWrote(utc("2026-03-02T10:15:00Z")) {
		t.Error("restart moved back before the reply")
	}
	// ...but an unanswered message sent after the reply starts the wait.
	if !c.CustomerWrote(utc("2026-03-02T10:50:00Z")) {
		t.Error("unanswered message after the reply did not move the restart back")
	}
	if got := len(c.Spans); got != 2 {
		t.Fatalf("spans = %v", c.Spans)
	}
	if e := c.Elapsed(w, utc("2026-03-02T11:00:00Z")); e != 30*time.Minute {
		t.Errorf("elapsed at 11:00 = %s, want 30m", e)
	}
	// An elapsed time asked for before the last span counts only what ran.
	if e := c.Elapsed(w, utc("2026-03-02T10:10:00Z")); e != 10*time.Minute {
		t.Errorf("elapsed at 10:10 = %s, want 10m", e)
	}
}

func TestClockSettle(t *testing.T) {
	w := officeWeek(t)
	th := DefaultThresholds()
	var c Clock
	c.CustomerWrote(utc("2026-03-02T16:30:00Z"))
	c.StaffReplied(utc("2026-03-03T09:15:00Z")) // 30m Monday + 15m Tuesday
	c.CustomerWrote(utc("2026-03-04T11:00:00Z"))
	before := c.Status(w, th, utc("2026-03-04T11:30:00Z"))

	c.Settle(w)
	if c.Settled != 45*time.Minute || !c.SettledUntil.Equal(utc("2026-03-03T09:15:00Z")) || len(c.Spans) != 1 {
		t.Fatalf("settled clock = %+v", c)
	}
	if !c.Since().Equal(utc("2026-03-04T11:00:00Z")) {
		t.Errorf("Since = %v", c.Since())
	}
	// Only Wednesday's windows are needed now.
	wed := w.Clip(utc("2026-03-04T00:00:00Z"), utc("2026-03-07T00:00:00Z"))
	after := c.Status(wed, th, utc("2026-03-04T11:30:00Z"))
	if before != after {
		t.Errorf("status changed by settling: before %+v, after %+v", before, after)
	}
	if after.Elapsed != 75*time.Minute || after.Level != LevelLate {
		t.Errorf("after settle: %+v", after)
	}
	// Events before the settled part are ignored.
	if c.CustomerWrote(utc("2026-03-03T09:00:00Z")) || c.StaffReplied(utc("2026-03-03T09:00:00Z")) {
		t.Error("event before the settled part changed the clock")
	}
	c.Settle(w) // nothing stopped: no change
	if len(c.Spans) != 1 || c.Settled != 45*time.Minute {
		t.Errorf("settle of a running clock: %+v", c)
	}
}

func TestClockWindowsEndEarly(t *testing.T) {
	w := Normalize([]Interval{{utc("2026-03-02T09:00:00Z"), utc("2026-03-02T17:00:00Z")}})
	var c Clock
	c.CustomerWrote(utc("2026-03-02T16:00:00Z"))
	st := c.Status(w, DefaultThresholds(), utc("2026-03-02T16:05:00Z"))
	if !st.MoreWindows || !st.BreachAt.IsZero() {
		t.Errorf("breach beyond the windows: %+v", st)
	}
	if !st.NextAt.Equal(utc("2026-03-02T16:15:00Z")) {
		t.Errorf("next threshold inside the windows: %+v", st)
	}
	// The caller fetches the next day and asks again.
	w = Union(w, Windows{{utc("2026-03-03T09:00:00Z"), utc("2026-03-03T17:00:00Z")}})
	st = c.Status(w, DefaultThresholds(), utc("2026-03-02T16:05:00Z"))
	if st.MoreWindows || !st.BreachAt.Equal(utc("2026-03-03T16:00:00Z")) {
		t.Errorf("with more windows: %+v", st)
	}
}

func TestClockJSONRoundTrip(t *testing.T) {
	var c Clock
	c.CustomerWrote(time.Date(2026, 3, 2, 10, 0, 0, 0, time.FixedZone("CET", 3600)))
	c.StaffReplied(utc("2026-03-02T09:30:00Z"))
	c.Settle(officeWeek(t))
	c.CustomerWrote(utc("2026-03-02T11:00:00Z"))
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"end"`) {
		t.Errorf("running span serialised an end: %s", data)
	}
	var back Clock
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, back) {
		t.Errorf("round trip: %+v != %+v (json %s)", back, c, data)
	}
	if !back.Running() || back.Settled != 30*time.Minute {
		t.Errorf("decoded clock = %+v", back)
	}
}

func TestLevels(t *testing.T) {
	th := DefaultThresholds()
	for _, tt := range []struct {
		e    time.Duration
		want Level
	}{
		{0, LevelGreat},
		{14*time.Minute + 59*time.Second, LevelGreat},
		{15 * time.Minute, LevelOkay},
		{59 * time.Minute, LevelOkay},
		{time.Hour, LevelLate},
		{8*time.Hour - time.Nanosecond, LevelLate},
		{8 * time.Hour, LevelBreached},
		{100 * time.Hour, LevelBreached},
	} {
		if got := th.Level(tt.e); got != tt.want {
			t.Errorf("Level(%s) = %s, want %s", tt.e, got, tt.want)
		}
	}
	for l := LevelGreat; l <= LevelBreached; l++ {
		if got := th.Level(th.Start(l)); got != l {
			t.Errorf("Level(Start(%s)) = %s", l, got)
		}
		want := "DEADLINE_LEVEL_" + strings.ToUpper(l.String())
		if got := l.Proto().String(); got != want {
			t.Errorf("%s.Proto() = %s, want %s", l, got, want)
		}
	}
	if LevelUnspecified.Proto() != supportv1.DeadlineLevel_DEADLINE_LEVEL_UNSPECIFIED {
		t.Error("unspecified level does not map to the unspecified enum")
	}
}

func TestPolicy(t *testing.T) {
	p := Policy{Priority: Thresholds{Great: 10 * time.Minute, Okay: 30 * time.Minute, TooLate: 4 * time.Hour}, Community: Thresholds{TooLate: 16 * time.Hour}}
	if err := p.Validate(); err == nil {
		t.Error("policy with zero thresholds validated before defaults")
	}
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, tt := range []struct {
		tier supportv1.Tier
		want Thresholds
	}{
		{supportv1.Tier_TIER_PRIORITY, Thresholds{10 * time.Minute, 30 * time.Minute, 4 * time.Hour, CoverageDuty}},
		{supportv1.Tier_TIER_SUBSCRIBER, DefaultThresholds()},
		{supportv1.Tier_TIER_COMMUNITY, Thresholds{15 * time.Minute, time.Hour, 16 * time.Hour, CoverageDuty}},
		{supportv1.Tier_TIER_UNSPECIFIED, Thresholds{15 * time.Minute, time.Hour, 16 * time.Hour, CoverageDuty}},
	} {
		if got := p.For(tt.tier); got != tt.want {
			t.Errorf("For(%s) = %+v, want %+v", tt.tier, got, tt.want)
		}
	}
	if err := DefaultPolicy().Validate(); err != nil {
		t.Errorf("default policy: %v", err)
	}
	bad := DefaultPolicy()
	bad.Subscriber.Okay = 2 * bad.Subscriber.TooLate
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "subscriber") {
		t.Errorf("decreasing thresholds: %v", err)
	}
	// Every field of the configuration carries a yaml tag.
	for _, typ := range []reflect.Type{reflect.TypeFor[Policy](), reflect.TypeFor[Thresholds]()} {
		for f := range typ.Fields() {
			if f.Tag.Get("yaml") == "" {
				t.Errorf("%s.%s has no yaml tag", typ.Name(), f.Name)
			}
		}
	}
}
