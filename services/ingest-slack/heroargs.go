package ingestslack

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// heroHelp says what /hero takes.
const heroHelp = "`" + HeroCommand + "` shows who is Support Hero right now and each team's secondary on-call.\n" +
	"`" + HeroCommand + " TEAM` shows that team's secondary on-call; `" + HeroCommand + " next week` who is on call a week from now; " +
	"`" + HeroCommand + " @person` (or their id or name) when they are next on call."

// personLookAhead is how far ahead `/hero @person` looks for their next
// shift.
const personLookAhead = 26 * 7 * 24 * time.Hour

// mention is a Slack user mention as a slash command's text carries it:
// <@U024BE7LH|alice> or <@U024BE7LH>.
var mention = regexp.MustCompile(`^<@([A-Z0-9]+)(\|[^>]*)?>$`)

// heroArgs answers /hero with arguments: a team, "next week", or a person.
func heroArgs(ctx context.Context, oc OnCallLookup, now time.Time, arg string) (string, error) {
	switch strings.ToLower(arg) {
	case "next week", "next", "next-week":
		return heroReportAt(ctx, oc, now.Add(7*24*time.Hour), "a week from now")
	}
	teams, err := oc.ListTeams(ctx, &rotationv1.ListTeamsRequest{})
	if err != nil {
		return "", fmt.Errorf("list teams: %w", err)
	}
	for _, t := range teams.GetTeams() {
		if strings.EqualFold(arg, t.GetId()) || strings.EqualFold(arg, t.GetName()) {
			resp, err := oc.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: t.GetId(), At: timestamppb.New(now)})
			if err != nil {
				return "", fmt.Errorf("who is %s's secondary: %w", t.GetId(), err)
			}
			return "*" + teamName(t) + " secondary on-call now:* " + onCallLine(resp), nil
		}
	}
	people, err := oc.ListPeople(ctx, &rotationv1.ListPeopleRequest{})
	if err != nil {
		return "", fmt.Errorf("list people: %w", err)
	}
	slackID := ""
	if m := mention.FindStringSubmatch(arg); m != nil {
		slackID = m[1]
	}
	for _, p := range people.GetPeople() {
		if (slackID != "" && p.GetSlackId() == slackID) || strings.EqualFold(arg, p.GetId()) || strings.EqualFold(arg, p.GetName()) || (p.GetSlackId() != "" && arg == p.GetSlackId()) {
			return nextOnCall(ctx, oc, teams.GetTeams(), p, now)
		}
	}
	var names []string
	for _, t := range teams.GetTeams() {
		names = append(names, t.GetId())
	}
	return fmt.Sprintf("I know no team or person %q. Teams: %s. Try `%s help`.", arg, strings.Join(names, ", "), HeroCommand), nil
}

func teamName(t *rotationv1.Team) string {
	if t.GetName() != "" {
		return t.GetName()
	}
	return t.GetId()
}

// nextOnCall says when p is next on duty as hero or as a team's
// secondary: the first shift of theirs within personLookAhead, from the
// hero rotation and every team's secondary cover (derived stretches
// included), overrides and swaps applied.
func nextOnCall(ctx context.Context, oc OnCallLookup, teams []*rotationv1.Team, p *rotationv1.Person, now time.Time) (string, error) {
	hero, err := oc.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: timestamppb.New(now)})
	if err != nil {
		return "", fmt.Errorf("who is hero: %w", err)
	}
	from, to := timestamppb.New(now), timestamppb.New(now.Add(personLookAhead))
	type found struct {
		what  string
		shift *rotationv1.Shift
	}
	var best *found
	consider := func(what string, shifts []*rotationv1.Shift) {
		for _, sh := range shifts {
			if sh.GetPersonId() != p.GetId() || !sh.GetEnd().AsTime().After(now) {
				continue
			}
			if best == nil || sh.GetStart().AsTime().Before(best.shift.GetStart().AsTime()) {
				best = &found{what, sh}
			}
			return
		}
	}
	if rot := hero.GetOnCall().GetShift().GetRotationId(); rot != "" {
		resp, err := oc.ListShifts(ctx, &rotationv1.ListShiftsRequest{Rotation: rot, From: from, To: to})
		if err != nil {
			return "", fmt.Errorf("list the hero's shifts: %w", err)
		}
		consider("Support Hero", resp.GetShifts())
	}
	for _, t := range teams {
		resp, err := oc.ListShifts(ctx, &rotationv1.ListShiftsRequest{Team: t.GetId(), From: from, To: to})
		if err != nil {
			return "", fmt.Errorf("list %s's secondary shifts: %w", t.GetId(), err)
		}
		consider(teamName(t)+" secondary", resp.GetShifts())
	}
	if best == nil {
		return fmt.Sprintf("%s is not on call in the next %d weeks.", person(p), int(personLookAhead/(7*24*time.Hour))), nil
	}
	start, end := best.shift.GetStart().AsTime(), best.shift.GetEnd().AsTime()
	when := "from " + slackDate(start) + " to " + slackDate(end)
	if !start.After(now) {
		when = "now, until " + slackDate(end)
	}
	return fmt.Sprintf("%s is next on call as *%s* %s.", person(p), best.what, when), nil
}

// slackDate renders t in each reader's own zone and format.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

// heroReportAt is heroReport at another instant, titled by when.
func heroReportAt(ctx context.Context, oc OnCallLookup, at time.Time, when string) (string, error) {
	text, err := heroReport(ctx, oc, at)
	if err != nil {
		return "", err
	}
	return strings.Replace(text, "*Support Hero now:*", "*Support Hero "+when+":*", 1), nil
}
