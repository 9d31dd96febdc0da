package store

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestPercentilesSelectWhatASortWould: the median and p90 chosen by
// selection are those of the sorted values, interpolated as
// percentile_cont does, for lengths around the interpolation's edges and
// values with many ties (where a careless partition loops or goes
// wrong).
func TestPercentilesSelectWhatASortWould(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 3))
	sorted := func(v []float64, p float64) float64 {
		s := slices.Sorted(slices.Values(v))
		pos := p * float64(len(s)-1)
		lo, hi := math.Floor(pos), math.Ceil(pos)
		return s[int(lo)] + float64((s[int(hi)]-s[int(lo)])*(pos-lo))
	}
	for n := 1; n < 300; n++ {
		for _, distinct := range []int{1, 2, 5, 1 << 30} {
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(rng.IntN(distinct)) * 1.5
				if distinct > 5 {
					v[i] = rng.ExpFloat64() * 1800
				}
			}
			want50, want90 := sorted(v, 0.5), sorted(v, 0.9)
			got50, got90 := percentiles(slices.Clone(v))
			if got50 != want50 || got90 != want90 {
				t.Fatalf("%d values (%d distinct at most): median %v, p90 %v; sorted: %v, %v", n, distinct, got50, got90, want50, want90)
			}
		}
	}
	if p50, p90 := percentiles(nil); p50 != 0 || p90 != 0 {
		t.Errorf("no values: %v, %v, want zeros", p50, p90)
	}
}
