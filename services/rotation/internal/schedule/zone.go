package schedule

import (
	"math"
	"time"
)

// zone is a time zone with its UTC offset transitions precomputed between
// zoneTableFrom and zoneTableTo, so offset lookups and wall-clock
// resolution are a binary search over a small slice. Outside that range it
// falls back to the time package.
type zone struct {
	loc    *time.Location
	lo, hi int64
	// trans are the instants at which the offset changes; offs[i] is the
	// offset in force from trans[i-1] (or lo) up to trans[i] (or hi).
	trans []int64
	offs  []int64
}

var (
	zoneTableFrom = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	zoneTableTo   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
)

func newZone(loc *time.Location) *zone {
	z := &zone{loc: loc, lo: zoneTableFrom, hi: zoneTableTo}
	t := time.Unix(z.lo, 0).In(loc)
	z.offs = append(z.offs, offsetAt(loc, z.lo))
	for {
		_, end := t.ZoneBounds()
		if end.IsZero() || end.Unix() >= z.hi || end.Unix() <= t.Unix() {
			break
		}
		off := offsetAt(loc, end.Unix())
		if off != z.offs[len(z.offs)-1] {
			z.trans = append(z.trans, end.Unix())
			z.offs = append(z.offs, off)
		}
		t = end
	}
	return z
}

// index returns how many transitions are at or before u: the index into
// offs of the offset in force at u.
func (z *zone) index(u int64) int {
	lo, hi := 0, len(z.trans)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if z.trans[m] <= u {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// offset returns the UTC offset in seconds at instant u.
func (z *zone) offset(u int64) int64 {
	if u < z.lo || u >= z.hi {
		return offsetAt(z.loc, u)
	}
	return z.offs[z.index(u)]
}

// wall returns the wall reading of instant u.
func (z *zone) wall(u int64) int64 { return u + z.offset(u) }

// resolve is the package resolve (first occurrence of a repeated reading,
// end of the gap for a skipped one) over the precomputed table.
func (z *zone) resolve(w int64) int64 {
	a, b := w-zoneMargin, w+zoneMargin
	if a < z.lo || b >= z.hi {
		return resolve(z.loc, w)
	}
	i, j := z.index(a), z.index(b)
	if i == j {
		// One offset within two days either side: no ambiguity, no gap.
		return w - z.offs[i]
	}
	start := func(k int) int64 {
		if k == 0 {
			return math.MinInt64
		}
		return z.trans[k-1]
	}
	end := func(k int) int64 {
		if k == len(z.trans) {
			return math.MaxInt64
		}
		return z.trans[k]
	}
	for k := i; k <= j; k++ {
		if c := w - z.offs[k]; c >= start(k) && c < end(k) {
			return c
		}
	}
	for k := i; k < j; k++ {
		if tr := z.trans[k]; w-z.offs[k] >= tr && w-z.offs[k+1] < tr {
			return tr
		}
	}
	return w - z.offs[i]
}
