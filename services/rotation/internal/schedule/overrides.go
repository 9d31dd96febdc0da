package schedule

import (
	"errors"
	"fmt"
	"time"
)

// Swap builds the two overrides of a swap: a gives up [aStart, aEnd) to b,
// and b gives up [bStart, bEnd) to a. The rotation order never changes.
// It checks the arguments; Schedule.Swap also checks that each side is on
// duty over the range it gives up.
func Swap(id string, rotation string, a string, aStart, aEnd time.Time, b string, bStart, bEnd time.Time) ([2]Override, error) {
	var pair [2]Override
	switch {
	case id == "":
		return pair, errors.New("swap: id is required")
	case rotation == "":
		return pair, errors.New("swap: rotation is required")
	case a == "" || b == "":
		return pair, errors.New("swap: both people are required")
	case a == b:
		return pair, fmt.Errorf("swap: %s cannot swap with themselves", a)
	case !aEnd.After(aStart):
		return pair, fmt.Errorf("swap: %s's side ends before it starts", a)
	case !bEnd.After(bStart):
		return pair, fmt.Errorf("swap: %s's side ends before it starts", b)
	case aStart.Before(bEnd) && bStart.Before(aEnd):
		return pair, errors.New("swap: the two sides overlap")
	}
	pair[0] = Override{ID: id + "-a", Rotation: rotation, Kind: Replace, Person: a, With: b, Start: aStart, End: aEnd, SwapID: id}
	pair[1] = Override{ID: id + "-b", Rotation: rotation, Kind: Replace, Person: b, With: a, Start: bStart, End: bEnd, SwapID: id}
	return pair, nil
}

// Swap is the package-level Swap, also checking against this schedule that
// each side is on duty over the range it gives up.
func (s *Schedule) Swap(id string, rotation string, a string, aStart, aEnd time.Time, b string, bStart, bEnd time.Time) ([2]Override, error) {
	pair, err := Swap(id, rotation, a, aStart, aEnd, b, bStart, bEnd)
	if err != nil {
		return pair, err
	}
	return pair, s.CheckOverrides(pair[:]...)
}

// CheckOverrides checks new overrides against the schedule: known rotation
// and people, a sensible range, an id not already used by a different
// override, and, for replace and remove, that the person is on duty (with
// the overrides already in force) over the whole range.
func (s *Schedule) CheckOverrides(os ...Override) error {
	rotations := map[string]bool{}
	for _, r := range s.rots {
		rotations[r.ID] = true
	}
	people := map[string]bool{}
	for _, p := range s.people {
		people[p.ID] = true
	}
	existing := map[string]Override{}
	for _, o := range s.cfg.Overrides {
		existing[o.ID] = o
	}
	var errs []error
	for _, o := range os {
		name := "override " + o.ID
		if err := checkOverrideShape(o, rotations, people); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		if prev, ok := existing[o.ID]; ok && o.ID != "" && !sameOverride(prev, o) {
			errs = append(errs, fmt.Errorf("%s: id already used by %s", name, prev.describe()))
			continue
		}
		if o.Kind == Add {
			continue
		}
		if err := s.onDutyThroughout(o.Rotation, o.Person, o.Start, o.End); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// onDutyThroughout reports an error unless person is on duty in rotation
// over all of [from, to).
func (s *Schedule) onDutyThroughout(rotation, person string, from, to time.Time) error {
	shifts, err := s.Shifts(rotation, from, to)
	if err != nil {
		return err
	}
	covered := from
	for _, sh := range shifts {
		if sh.Person != person || sh.Start.After(covered) {
			continue
		}
		if sh.End.IsZero() || sh.End.After(covered) {
			covered = sh.End
			if sh.End.IsZero() || !covered.Before(to) {
				return nil
			}
		}
	}
	who := "nobody"
	for _, sh := range shifts {
		if !sh.Start.After(covered) && (sh.End.IsZero() || sh.End.After(covered)) {
			who = sh.Person
			break
		}
	}
	return fmt.Errorf("%s is not on duty in %s at %s (%s is)", person, rotation, covered.UTC().Format(time.RFC3339), who)
}
