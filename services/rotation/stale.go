package rotation

import (
	"fmt"
	"slices"
	"time"

	"github.com/sidekickhq/sidekick/services/rotation/internal/schedule"
)

// ignored is a stored override (created through CreateOverride or
// SwapShifts) that the configuration in force no longer supports: it names
// a person or rotation the YAML dropped, or contradicts an override the
// YAML added. It stays in the store, and counts again if a later
// configuration supports it.
type ignored struct {
	Override schedule.Override
	Reason   string
}

// compileWith compiles cfg with the stored overrides added, leaving out the
// stored overrides that no longer fit cfg instead of failing. An error
// means cfg itself does not compile.
func compileWith(cfg *schedule.Config, stored []schedule.Override) (*schedule.Schedule, []ignored, error) {
	all := *cfg
	all.Overrides = append(slices.Clone(cfg.Overrides), stored...)
	if sched, err := schedule.Compile(&all); err == nil {
		return sched, nil, nil
	}
	if _, err := schedule.Compile(cfg); err != nil {
		return nil, nil, err
	}
	people := map[string]bool{}
	for _, p := range cfg.People {
		people[p.ID] = true
	}
	rotations := map[string]bool{}
	for _, r := range cfg.Rotations {
		rotations[r.ID] = true
	}
	var out []ignored
	var fit []schedule.Override
	for _, o := range stored {
		switch {
		case !rotations[o.Rotation]:
			out = append(out, ignored{o, fmt.Sprintf("rotation %q is not in the configuration", o.Rotation)})
		case o.Person != "" && !people[o.Person]:
			out = append(out, ignored{o, fmt.Sprintf("person %q is not in the configuration", o.Person)})
		case o.With != "" && !people[o.With]:
			out = append(out, ignored{o, fmt.Sprintf("person %q is not in the configuration", o.With)})
		default:
			fit = append(fit, o)
		}
	}
	kept := all
	kept.Overrides = append(slices.Clone(cfg.Overrides), fit...)
	if sched, err := schedule.Compile(&kept); err == nil {
		return sched, out, nil
	}
	// Rare: a stored override contradicts one the file now has. Keep the
	// file's, and stored ones in order, leaving out each that does not fit.
	kept.Overrides = slices.Clone(cfg.Overrides)
	for _, o := range fit {
		trial := kept
		trial.Overrides = append(slices.Clone(kept.Overrides), o)
		if err := trial.Validate(); err != nil {
			out = append(out, ignored{o, err.Error()})
			continue
		}
		kept.Overrides = trial.Overrides
	}
	sched, err := schedule.Compile(&kept)
	if err != nil {
		return nil, nil, fmt.Errorf("compile without %d stale overrides: %w", len(out), err)
	}
	return sched, out, nil
}

// ignoredChanges lists, as ApplyConfig diff lines, the stored overrides
// that applying next would start ignoring ("-") or count again ("+"),
// compared with prev.
func ignoredChanges(prev, next []ignored) []string {
	key := func(i ignored) string { return i.Override.ID }
	before := map[string]bool{}
	for _, i := range prev {
		before[key(i)] = true
	}
	after := map[string]bool{}
	var out []string
	for _, i := range next {
		after[key(i)] = true
		if !before[key(i)] {
			out = append(out, "- stored override "+i.Override.ID+" ("+describe(i.Override)+"): dropped, "+i.Reason)
		}
	}
	for _, i := range prev {
		if !after[key(i)] {
			out = append(out, "+ stored override "+i.Override.ID+" ("+describe(i.Override)+"): in force again")
		}
	}
	slices.Sort(out)
	return out
}

// describe is a one-line summary of an override, like the engine's diff.
func describe(o schedule.Override) string {
	var what string
	switch o.Kind {
	case schedule.Replace:
		what = "replace " + o.Person + " with " + o.With
	case schedule.Add:
		what = "add " + o.With
	case schedule.Remove:
		what = "remove " + o.Person
	default:
		what = o.Kind.String()
	}
	s := fmt.Sprintf("%s %s %s..%s", o.Rotation, what, o.Start.UTC().Format(time.RFC3339), o.End.UTC().Format(time.RFC3339))
	if o.SwapID != "" {
		s += " swap " + o.SwapID
	}
	return s
}
