// Package schedule is the rotation engine: it compiles the organisation's
// people, rotations, teams and overrides into an immutable Schedule and
// answers who is on call at any instant. It does no I/O.
//
// # Shift arithmetic
//
// All shift arithmetic is done on the wall clock of the rotation's time
// zone, for every rotation type: daily, weekly and monthly handoffs keep
// their local time across DST (a day lasts 23 or 25 hours, a week 167 or
// 169), an hourly shift that spans a change lasts an hour less or more (a
// one-hour shift that a spring-forward swallows is empty and skipped), a
// handoff time a spring-forward skips moves to the first instant after the
// gap, and one a fall-back repeats takes its first occurrence. Monthly
// rotations keep the start's day of month, clamped to the last day of
// shorter months. Finding the shift at an instant is arithmetic on the
// shift index over precomputed zone transitions, never iteration from the
// rotation's start.
//
// # Overrides
//
// An override replaces A with B, adds B, or removes A over [Start, End);
// overrides in force at an instant apply in order of start. An override
// about somebody who is not on duty at that moment has no effect, which is
// why applying a swap twice changes nothing. A swap is two replace
// overrides sharing a SwapID; the rotation order never changes. Overrides
// live in a sorted segment index, so the lookup is a binary search.
//
// # Roles
//
// The hero is whoever is on duty in Support.Hero. A team's secondary is
// whoever is on duty in the team's secondary rotation, except that while
// the hero belongs to the team (and Support.HeroIsTeamSecondary) the hero
// is the secondary, with reason ReasonDerived, and the rotation's own
// secondary is listed in Answer.Also as the backup. While the hero is
// outside their working hours, follow-the-sun catchers (the catcher pool
// within their own working hours and not on time off) are listed in
// Answer.Also.
//
// A coverage gap is reported (Answer.Gap, Gaps), never filled silently:
// nobody on duty (before a rotation's start, or everyone removed), or the
// person on duty on time off without a swap or override covering them.
package schedule
