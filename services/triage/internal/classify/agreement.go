package classify

// Pair is what the classifier suggested for a conversation and what people
// confirmed, each with the predominant category first.
type Pair struct {
	Suggested []Category `json:"suggested"`
	Confirmed []Category `json:"confirmed"`
}

// Agreement counts how often suggestions matched confirmed categories.
// Each pair is exactly one of exact, overlapping or none, so the three
// counts add up to Pairs. The zero value is ready to use; add pairs with
// [Agreement.Add].
type Agreement struct {
	// Pairs is the number of pairs counted (those with confirmed
	// categories).
	Pairs int `json:"pairs"`
	// Exact counts pairs whose predominant categories are equal.
	Exact int `json:"exact"`
	// Overlap counts pairs that are not exact but share a category.
	Overlap int `json:"overlap"`
	// None counts pairs that share no category (or had no suggestion).
	None int `json:"none"`
	// ByCategory counts, per confirmed predominant category, the pairs and
	// the exact matches, to see where suggestions go wrong.
	ByCategory map[Category]CategoryAgreement `json:"by_category,omitempty"`
}

// CategoryAgreement is the agreement for one confirmed category.
type CategoryAgreement struct {
	Pairs int `json:"pairs"`
	Exact int `json:"exact"`
}

// Rate returns the exact-match rate, zero when there are no pairs.
func (c CategoryAgreement) Rate() float64 { return rate(c.Exact, c.Pairs) }

// Add counts one pair. A pair without confirmed categories is skipped (the
// conversation was never tagged); one without suggestions disagrees.
func (a *Agreement) Add(p Pair) {
	if len(p.Confirmed) == 0 {
		return
	}
	a.Pairs++
	want := p.Confirmed[0]
	exact := len(p.Suggested) > 0 && p.Suggested[0] == want
	switch {
	case exact:
		a.Exact++
	case overlaps(p.Suggested, p.Confirmed):
		a.Overlap++
	default:
		a.None++
	}
	if a.ByCategory == nil {
		a.ByCategory = map[Category]CategoryAgreement{}
	}
	ca := a.ByCategory[want]
	ca.Pairs++
	if exact {
		ca.Exact++
	}
	a.ByCategory[want] = ca
}

// ExactRate is the share of pairs whose predominant categories match.
func (a Agreement) ExactRate() float64 { return rate(a.Exact, a.Pairs) }

// OverlapRate is the share of pairs that are not exact but share a
// category.
func (a Agreement) OverlapRate() float64 { return rate(a.Overlap, a.Pairs) }

// NoneRate is the share of pairs sharing no category.
func (a Agreement) NoneRate() float64 { return rate(a.None, a.Pairs) }

// Agree computes the agreement over pairs.
func Agree(pairs []Pair) Agreement {
	var a Agreement
	for _, p := range pairs {
		a.Add(p)
	}
	return a
}

func overlaps(a, b []Category) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func rate(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}
