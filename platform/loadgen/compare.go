package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Subject is one of the paths Interleave compares: a name and its call.
type Subject struct {
	Name string
	Call Call
}

// Rounds is what Interleave measured: Rates[i][j] is the closed-loop rate
// of subject Names[j] in round i.
type Rounds struct {
	Names []string
	Rates [][]float64
}

// Interleave measures each subject's closed-loop rate with workers
// senders for d, one subject after the other, and repeats that rounds
// times. Taking turns in short spells puts a slow spell of a shared
// machine on every subject alike, which back-to-back benchmarks of
// several seconds each do not: their ratio then drifts with the
// neighbours. Each subject numbers its requests on from one round to the
// next, so an id made from the number is never sent twice.
func Interleave(ctx context.Context, rounds, workers int, d time.Duration, subjects ...Subject) (*Rounds, error) {
	r := &Rounds{Rates: make([][]float64, 0, rounds)}
	for _, s := range subjects {
		r.Names = append(r.Names, s.Name)
	}
	next := make([]int, len(subjects))
	for range rounds {
		row := make([]float64, len(subjects))
		for j, s := range subjects {
			first := next[j]
			rate, used, err := ClosedLoop(ctx, workers, d, func(ctx context.Context, i int) error {
				return s.Call(ctx, first+i)
			})
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", s.Name, len(r.Rates)+1, err)
			}
			next[j] += used
			row[j] = rate
		}
		r.Rates = append(r.Rates, row)
	}
	return r, nil
}

func (r *Rounds) index(name string) int {
	j := slices.Index(r.Names, name)
	if j < 0 {
		panic("loadgen: no subject " + name)
	}
	return j
}

// Rate is the median of the subject's rates over the rounds.
func (r *Rounds) Rate(name string) float64 {
	j := r.index(name)
	rates := make([]float64, len(r.Rates))
	for i, row := range r.Rates {
		rates[i] = row[j]
	}
	return median(rates)
}

// ReportRates puts each subject's median rate on the benchmark's line as
// "<name>/s".
func (r *Rounds) ReportRates(rep Reporter) {
	for _, name := range r.Names {
		rep.ReportMetric(r.Rate(name), name+"/s")
	}
}

// Ratios is subject a's rate over subject b's, round by round (each pair
// measured back to back), in ascending order.
func (r *Rounds) Ratios(a, b string) []float64 {
	ja, jb := r.index(a), r.index(b)
	out := make([]float64, len(r.Rates))
	for i, row := range r.Rates {
		out[i] = row[ja] / row[jb]
	}
	slices.Sort(out)
	return out
}

// ReportRatio puts the median, lowest and highest of a's rate over b's on
// the benchmark's line as "a/b", "a/b-min" and "a/b-max", and logs every
// round.
func (r *Rounds) ReportRatio(rep Reporter, a, b string) {
	rep.Helper()
	ratios := r.Ratios(a, b)
	unit := a + "/" + b
	rep.ReportMetric(median(ratios), unit)
	rep.ReportMetric(ratios[0], unit+"-min")
	rep.ReportMetric(ratios[len(ratios)-1], unit+"-max")
	var s strings.Builder
	for _, v := range ratios {
		fmt.Fprintf(&s, " %.3f", v)
	}
	rep.Logf("%s / %s per round:%s", a, b, s.String())
}

// String lists every round's rates.
func (r *Rounds) String() string {
	var s strings.Builder
	for i, row := range r.Rates {
		fmt.Fprintf(&s, "round %d:", i+1)
		for j, v := range row {
			fmt.Fprintf(&s, " %s %.0f/s", r.Names[j], v)
		}
		s.WriteByte('\n')
	}
	return s.String()
}

// median of v, which it sorts.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}
