package schedule

import (
	"fmt"
	"math/rand"
	"os"
	"testing"
	"time"
)

// benchSchedule is the test organisation with 36 more overrides: 18 swaps
// of a day each across the year on the hero and platform rotations.
func benchSchedule(tb testing.TB) *Schedule {
	data, err := os.ReadFile("testdata/org.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	c, err := ParseConfig(data)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := Compile(c)
	if err != nil {
		tb.Fatal(err)
	}
	week := 7 * 24 * time.Hour
	for i := range 18 {
		rot := "hero"
		if i%2 == 1 {
			rot = "platform-secondary"
		}
		base := utc(tb, "2026-01-07T12:00:00Z").Add(time.Duration(i*2) * week)
		a, err := s.BaseShiftAt(rot, base)
		if err != nil {
			tb.Fatal(err)
		}
		b, err := s.BaseShiftAt(rot, base.Add(week))
		if err != nil {
			tb.Fatal(err)
		}
		pair, err := s.Swap(fmt.Sprintf("bench-%d", i), rot, a.Person, base, base.Add(24*time.Hour), b.Person, base.Add(week), base.Add(week+24*time.Hour))
		if err != nil {
			tb.Fatal(err)
		}
		c.Overrides = append(c.Overrides, pair[:]...)
	}
	s, err = Compile(c)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// BenchmarkWhoIsOnCall alternates hero and team-secondary queries at random
// instants over a year, on a schedule with 37 overrides.
func BenchmarkWhoIsOnCall(b *testing.B) {
	s := benchSchedule(b)
	rng := rand.New(rand.NewSource(1))
	from := utc(b, "2026-01-05T09:00:00Z")
	teams := []string{"platform", "core-experience", "core-analytics"}
	queries := make([]Query, 4096)
	for i := range queries {
		at := from.Add(time.Duration(rng.Int63n(int64(365 * 24 * time.Hour))))
		if i%2 == 0 {
			queries[i] = Query{Role: RoleHero, At: at}
		} else {
			queries[i] = Query{Role: RoleSecondary, Team: teams[rng.Intn(len(teams))], At: at}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.WhoIsOnCall(queries[i%len(queries)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
}

// BenchmarkWhoIsOnCallParallel is the same load from every core.
func BenchmarkWhoIsOnCallParallel(b *testing.B) {
	s := benchSchedule(b)
	from := utc(b, "2026-01-05T09:00:00Z")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewSource(2))
		for pb.Next() {
			at := from.Add(time.Duration(rng.Int63n(int64(365 * 24 * time.Hour))))
			if _, err := s.WhoIsOnCall(Query{Role: RoleSecondary, Team: "platform", At: at}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "evals/s")
}
