package schedule

import (
	"strings"
	"testing"
	"time"
)

// The handbook scenario: alice, Support Hero for the week of 30 March 2026
// (London handoff Monday 09:00), takes Wednesday 1 April off. bob covers it
// and alice takes a day of bob's next week in return: a swap, recorded as
// two overrides. The rotation order does not change, and during her week
// alice is also Platform's secondary, with the rotation's own secondary
// (gus) as backup.
func TestHandbookHeroTakesADayOff(t *testing.T) {
	before := compileFile(t, "org.yaml")
	london, _ := time.LoadLocation("Europe/London")
	day := func(d, h int) time.Time { return time.Date(2026, 4, d, h, 0, 0, 0, london) }

	if sh, err := before.BaseShiftAt("hero", day(1, 12)); err != nil || sh.Person != "alice" {
		t.Fatalf("alice should be hero on 1 April: %+v %v", sh, err)
	}
	if sh, err := before.BaseShiftAt("hero", day(8, 12)); err != nil || sh.Person != "bob" {
		t.Fatalf("bob should be hero on 8 April: %+v %v", sh, err)
	}

	// Each side must be on duty for the range it gives up.
	if _, err := before.Swap("bad", "hero", "carol", day(1, 9), day(2, 9), "bob", day(8, 9), day(9, 9)); err == nil {
		t.Fatal("a swap giving away a shift carol does not hold was accepted")
	}
	pair, err := before.Swap("swap-day-off", "hero", "alice", day(1, 9), day(2, 9), "bob", day(8, 9), day(9, 9))
	if err != nil {
		t.Fatal(err)
	}
	if pair[0].Kind != Replace || pair[0].Person != "alice" || pair[0].With != "bob" || pair[1].Person != "bob" || pair[1].With != "alice" ||
		pair[0].SwapID != "swap-day-off" || pair[1].SwapID != "swap-day-off" {
		t.Fatalf("swap overrides: %+v", pair)
	}
	cfg := before.Config()
	cfg.Overrides = append(cfg.Overrides, pair[:]...)
	s, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}

	// Wednesday 1 April: bob is hero by swap, standing in for alice.
	a := who(t, s, Query{Role: RoleHero, At: day(1, 12)})
	if personID(a.OnCall) != "bob" || a.OnCall.Reason != ReasonSwap || a.OnCall.Shift.Scheduled != "alice" || a.Gap {
		t.Fatalf("1 April hero: %+v", a)
	}
	if !a.OnCall.Shift.Start.Equal(day(1, 9)) || !a.OnCall.Shift.End.Equal(day(2, 9)) {
		t.Errorf("1 April shift %s .. %s", a.OnCall.Shift.Start, a.OnCall.Shift.End)
	}
	if !strings.Contains(a.OnCall.Explanation, "swap-day-off") {
		t.Errorf("explanation %q does not name the swap", a.OnCall.Explanation)
	}
	// ... so bob is his own team's secondary that day, and Platform's
	// secondary is its own rotation's.
	a = who(t, s, Query{Role: RoleSecondary, Team: "core-experience", At: day(1, 12)})
	if personID(a.OnCall) != "bob" || a.OnCall.Reason != ReasonDerived || len(a.Also) != 1 || personID(a.Also[0]) != "eve" {
		t.Errorf("1 April core-experience secondary: %+v", a)
	}
	a = who(t, s, Query{Role: RoleSecondary, Team: "platform", At: day(1, 12)})
	if personID(a.OnCall) != "gus" || a.OnCall.Reason != ReasonRotation {
		t.Errorf("1 April platform secondary: %+v", a)
	}

	// Thursday 2 April: alice again, until the Monday handoff.
	a = who(t, s, Query{Role: RoleHero, At: day(2, 12)})
	if personID(a.OnCall) != "alice" || a.OnCall.Reason != ReasonRotation || !a.OnCall.Shift.Start.Equal(day(2, 9)) || !a.OnCall.Shift.End.Equal(day(6, 9)) {
		t.Errorf("2 April hero: %+v", a.OnCall)
	}
	// The derived rule: alice is Platform's secondary during her hero week,
	// gus (platform-secondary's own) is the backup.
	for _, at := range []time.Time{day(2, 12), day(3, 3), day(5, 20)} {
		a = who(t, s, Query{Role: RoleSecondary, Team: "platform", At: at})
		if personID(a.OnCall) != "alice" || a.OnCall.Reason != ReasonDerived || len(a.Also) != 1 || personID(a.Also[0]) != "gus" || a.Also[0].Reason != ReasonRotation {
			t.Errorf("%s platform secondary: %+v", at, a)
		}
		if a.OnCall.Shift.Rotation != "hero" {
			t.Errorf("derived shift should be the hero shift: %+v", a.OnCall.Shift)
		}
	}

	// Wednesday 8 April: alice pays the day back.
	a = who(t, s, Query{Role: RoleHero, At: day(8, 12)})
	if personID(a.OnCall) != "alice" || a.OnCall.Reason != ReasonSwap || a.OnCall.Shift.Scheduled != "bob" {
		t.Errorf("8 April hero: %+v", a.OnCall)
	}
	a = who(t, s, Query{Role: RoleSecondary, Team: "platform", At: day(8, 12)})
	if personID(a.OnCall) != "alice" || a.OnCall.Reason != ReasonDerived || len(a.Also) != 1 || personID(a.Also[0]) != "dmitri" {
		t.Errorf("8 April platform secondary: %+v", a)
	}
	a = who(t, s, Query{Role: RoleHero, At: day(9, 12)})
	if personID(a.OnCall) != "bob" || a.OnCall.Reason != ReasonRotation {
		t.Errorf("9 April hero: %+v", a.OnCall)
	}

	// The order of the following weeks is unchanged: carol, eve, alice, bob.
	for i, want := range []string{"carol", "eve", "alice", "bob"} {
		at := day(14, 12).AddDate(0, 0, 7*i)
		a := who(t, s, Query{Role: RoleHero, At: at})
		if personID(a.OnCall) != want || a.OnCall.Reason != ReasonRotation {
			t.Errorf("%s: hero %s, want %s", at, personID(a.OnCall), want)
		}
	}
	// And so is every shift outside the two swapped days.
	from, to := time.Date(2026, 3, 16, 12, 0, 0, 0, london), time.Date(2026, 5, 11, 12, 0, 0, 0, london)
	now, _ := s.Shifts("hero", from, to)
	var got []string
	for _, sh := range now {
		got = append(got, sh.Person+"@"+sh.Start.In(london).Format("01-02T15"))
	}
	want := "carol@03-16T09 eve@03-23T09 alice@03-30T09 bob@04-01T09 alice@04-02T09 bob@04-06T09 alice@04-08T09 bob@04-09T09 carol@04-13T09 eve@04-20T09 alice@04-27T09 bob@05-04T09 carol@05-11T09"
	if strings.Join(got, " ") != want {
		t.Errorf("shifts:\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	old, _ := before.Shifts("hero", from, to)
	for _, o := range old {
		if o.Start.Equal(day(6, 9)) || o.Start.Equal(day(13, 9).AddDate(0, 0, -14)) {
			continue // the two weeks the swap split
		}
		found := false
		for _, n := range now {
			found = found || sameShift(n, o)
		}
		if !found {
			t.Errorf("shift %+v changed", o)
		}
	}
}

// sameShift compares shifts by instant, whatever the *time.Location.
func sameShift(a, b Shift) bool {
	return a.Rotation == b.Rotation && a.Person == b.Person && a.Start.Equal(b.Start) && a.End.Equal(b.End) &&
		a.Reason == b.Reason && a.Scheduled == b.Scheduled
}
