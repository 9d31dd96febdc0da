package schedule

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"
)

var propertyZones = []string{"UTC", "America/Chicago", "Europe/London", "Australia/Lord_Howe", "America/Santiago", "Asia/Kolkata", "Pacific/Chatham"}

// randomConfig builds a valid configuration with one rotation "r" of random
// kind, length, zone and start (often at a time a DST change skips or
// repeats), over 2-6 people.
func randomConfig(rng *rand.Rand) *Config {
	c := &Config{}
	n := 2 + rng.Intn(5)
	for i := range n {
		c.People = append(c.People, Person{ID: fmt.Sprintf("p%d", i), Timezone: "UTC"})
	}
	kinds := []Kind{Hourly, Daily, Weekly, Monthly}
	r := Rotation{ID: "r", Kind: kinds[rng.Intn(len(kinds))], Timezone: propertyZones[rng.Intn(len(propertyZones))]}
	switch r.Kind {
	case Hourly:
		r.Length = 1 + rng.Intn(8)
	case Daily:
		r.Length = 1 + rng.Intn(3)
	case Weekly:
		r.Length = 1 + rng.Intn(2)
	case Monthly:
		r.Length = 1 + rng.Intn(3)
	}
	hours := []string{"00:00", "01:30", "02:00", "02:30", "09:00", "23:45"}
	r.Start = fmt.Sprintf("2025-%02d-%02d %s", 1+rng.Intn(12), 1+rng.Intn(31), hours[rng.Intn(len(hours))])
	if _, err := ParseLocalTime(r.Start); err != nil { // no 31 February
		r.Start = fmt.Sprintf("2025-%02d-28 %s", 1+rng.Intn(12), hours[rng.Intn(len(hours))])
	}
	perm := rng.Perm(n)
	for _, p := range perm[:1+rng.Intn(n)] {
		r.Participants = append(r.Participants, fmt.Sprintf("p%d", p))
	}
	c.Rotations = []Rotation{r}
	return c
}

func mustCompile(t *testing.T, c *Config) *Schedule {
	t.Helper()
	s, err := Compile(c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// randomInstant is an instant between the rotation's start and two years on.
func randomInstant(rng *rand.Rand, s *Schedule) time.Time {
	start := time.Unix(s.rots[0].startUnix, 0)
	return start.Add(time.Duration(rng.Int63n(int64(2 * 365 * 24 * time.Hour))))
}

// addRandomSwaps adds up to three valid swaps and a few replace overrides
// (never add or remove) to c, checked against the schedule as it grows.
func addRandomSwaps(t *testing.T, rng *rand.Rand, c *Config) {
	t.Helper()
	s := mustCompile(t, c)
	for i := range 1 + rng.Intn(5) {
		at := randomInstant(rng, s)
		a, err := s.BaseShiftAt("r", at)
		if err != nil {
			t.Fatal(err)
		}
		aStart := a.Start.Add(time.Duration(rng.Int63n(int64(a.End.Sub(a.Start)))))
		aEnd := aStart.Add(time.Duration(1 + rng.Int63n(int64(a.End.Sub(aStart)))))
		if ans := who(t, s, Query{Role: RoleRotation, Rotation: "r", At: aStart}); personID(ans.OnCall) != a.Person {
			continue // an earlier override already moved this stretch
		}
		if i%2 == 0 {
			// A single replace override.
			with := c.People[rng.Intn(len(c.People))].ID
			if with == a.Person {
				continue
			}
			o := Override{ID: fmt.Sprintf("ovr-%d", i), Rotation: "r", Kind: Replace, Person: a.Person, With: with, Start: aStart, End: aEnd}
			if s.CheckOverrides(o) != nil {
				continue
			}
			c.Overrides = append(c.Overrides, o)
		} else {
			b, err := s.BaseShiftAt("r", a.End.Add(time.Duration(rng.Int63n(int64(30*24*time.Hour)))))
			if err != nil || b.Person == a.Person {
				continue
			}
			pair, err := s.Swap(fmt.Sprintf("swap-%d", i), "r", a.Person, aStart, aEnd, b.Person, b.Start, b.End)
			if err != nil {
				continue
			}
			c.Overrides = append(c.Overrides, pair[:]...)
		}
		s = mustCompile(t, c)
	}
}

// Every instant has exactly one person on duty per rotation when overrides
// only replace, and Shifts tiles time with no gap and no overlap.
func TestPropertyExactlyOneOnDuty(t *testing.T) {
	rng := rand.New(rand.NewSource(42))
	for iter := range 300 {
		c := randomConfig(rng)
		addRandomSwaps(t, rng, c)
		s := mustCompile(t, c)
		r := c.Rotations[0]
		for range 20 {
			at := randomInstant(rng, s)
			a := who(t, s, Query{Role: RoleRotation, Rotation: "r", At: at})
			if a.Gap || a.OnCall.Person == nil || len(a.Also) != 0 {
				t.Fatalf("iter %d %+v at %s: %+v", iter, r, at, a)
			}
			sh := a.OnCall.Shift
			if at.Before(sh.Start) || !at.Before(sh.End) {
				t.Fatalf("iter %d %+v at %s: shift %s..%s does not contain it", iter, r, at, sh.Start, sh.End)
			}
			shifts, err := s.Shifts("r", at.Add(-72*time.Hour), at.Add(72*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			holding := 0
			for i, x := range shifts {
				if i > 0 && !shifts[i-1].End.Equal(x.Start) {
					t.Fatalf("iter %d %+v: shift %d starts %s, previous ends %s", iter, r, i, x.Start, shifts[i-1].End)
				}
				if !x.Start.Before(x.End) {
					t.Fatalf("iter %d %+v: empty shift %+v", iter, r, x)
				}
				if !at.Before(x.Start) && at.Before(x.End) {
					holding++
					if !sameShift(x, sh) {
						t.Fatalf("iter %d %+v at %s: Shifts has %+v, WhoIsOnCall %+v", iter, r, at, x, sh)
					}
				}
			}
			if holding != 1 {
				t.Fatalf("iter %d %+v at %s: %d shifts hold the instant", iter, r, at, holding)
			}
			// The base shift: consecutive, and handing over in rotation order.
			base, err := s.BaseShiftAt("r", at)
			if err != nil {
				t.Fatal(err)
			}
			next, err := s.BaseShiftAt("r", base.End)
			if err != nil {
				t.Fatal(err)
			}
			prev, err := s.BaseShiftAt("r", base.Start.Add(-time.Nanosecond))
			if err == nil && !prev.End.Equal(base.Start) {
				t.Fatalf("iter %d %+v: base shifts %+v and %+v are not adjacent", iter, r, prev, base)
			}
			i := slices.Index(r.Participants, base.Person)
			if want := r.Participants[(i+1)%len(r.Participants)]; next.Person != want && r.Kind != Hourly {
				t.Fatalf("iter %d %+v: %s hands over to %s, want %s", iter, r, base.Person, next.Person, want)
			}
		}
	}
}

// Applying a swap twice, under the same or new ids, changes nothing; and a
// swap changes nothing outside its two ranges.
func TestPropertySwap(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	done := 0
	for iter := 0; done < 200 && iter < 2000; iter++ {
		c := randomConfig(rng)
		if len(c.Rotations[0].Participants) < 2 {
			continue
		}
		if rng.Intn(2) == 0 {
			addRandomSwaps(t, rng, c)
		}
		plain := mustCompile(t, c)
		at := randomInstant(rng, plain)
		a, _ := plain.BaseShiftAt("r", at)
		b, _ := plain.BaseShiftAt("r", a.End.Add(time.Duration(rng.Int63n(int64(20*24*time.Hour)))))
		if a.Person == b.Person {
			continue
		}
		aStart := a.Start.Add(time.Duration(rng.Int63n(int64(a.End.Sub(a.Start)))))
		aEnd := aStart.Add(time.Duration(1 + rng.Int63n(int64(a.End.Sub(aStart)))))
		pair, err := plain.Swap("x", "r", a.Person, aStart, aEnd, b.Person, b.Start, b.End)
		if err != nil {
			continue // an earlier random override holds part of the range
		}
		done++
		once := clone(c)
		once.Overrides = append(once.Overrides, pair[:]...)
		twiceSameID := clone(once)
		twiceSameID.Overrides = append(twiceSameID.Overrides, pair[:]...)
		again, _ := Swap("y", "r", a.Person, aStart, aEnd, b.Person, b.Start, b.End)
		twiceNewID := clone(once)
		twiceNewID.Overrides = append(twiceNewID.Overrides, again[:]...)

		s1, s2, s3 := mustCompile(t, once), mustCompile(t, twiceSameID), mustCompile(t, twiceNewID)
		from, to := a.Start.Add(-10*24*time.Hour), b.End.Add(10*24*time.Hour)
		sh1, _ := s1.Shifts("r", from, to)
		for _, other := range []*Schedule{s2, s3} {
			sh, _ := other.Shifts("r", from, to)
			if !slices.EqualFunc(sh1, sh, sameShift) {
				t.Fatalf("iter %d: applying the swap twice changed the shifts:\n%+v\n%+v", iter, sh1, sh)
			}
		}
		// Outside the swapped ranges everybody is where they were; inside,
		// the two people traded places.
		for range 50 {
			at := from.Add(time.Duration(rng.Int63n(int64(to.Sub(from)))))
			before := personID(who(t, plain, Query{Role: RoleRotation, Rotation: "r", At: at}).OnCall)
			after := personID(who(t, s1, Query{Role: RoleRotation, Rotation: "r", At: at}).OnCall)
			want := before
			switch {
			case !at.Before(aStart) && at.Before(aEnd):
				want = b.Person
			case !at.Before(b.Start) && at.Before(b.End):
				want = a.Person
			}
			if after != want {
				t.Fatalf("iter %d at %s: %s on duty, want %s (before the swap %s)", iter, at, after, want, before)
			}
		}
	}
	if done < 200 {
		t.Fatalf("only %d swaps tried", done)
	}
}

// clone deep-copies a configuration.
func clone(c *Config) *Config {
	out := cloneConfig(c)
	return &out
}
