package ingestslack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sidekickhq/sidekick/platform/clock"
	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// HeroCommand is the slash command that tells who is on duty.
const HeroCommand = "/hero"

// ephemeral is a slash command answer only the caller sees.
func ephemeral(text string) answer {
	return okWith(map[string]string{"response_type": "ephemeral", "text": text})
}

// serveCommands handles POST /slack/commands (a form, as Slack sends it).
func (s *Service) serveCommands(w http.ResponseWriter, r *http.Request) {
	body, verified := s.readVerified(w, r, routeCommands, "command", nil)
	if !verified {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("command") == "" {
		s.metrics.events.WithLabelValues("command", "malformed").Inc()
		s.reply(w, routeCommands, failure(http.StatusBadRequest, "want a slash command form"))
		return
	}
	cmd := slack.SlashCommand{
		Command: form.Get("command"), Text: form.Get("text"), UserID: form.Get("user_id"), UserName: form.Get("user_name"),
		TeamID: form.Get("team_id"), TeamDomain: form.Get("team_domain"), ChannelID: form.Get("channel_id"),
		ResponseURL: form.Get("response_url"), TriggerID: form.Get("trigger_id"), APIAppID: form.Get("api_app_id"),
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	s.reply(w, routeCommands, s.handleCommand(ctx, cmd))
}

// handleCommand answers a slash command, from HTTP or Socket Mode. The
// answer always is 200 with an ephemeral message, so the caller sees what
// went wrong instead of Slack's generic failure.
func (s *Service) handleCommand(ctx context.Context, cmd slack.SlashCommand) answer {
	if cmd.Command != HeroCommand {
		s.metrics.events.WithLabelValues("command", "ignored_command").Inc()
		return ephemeral(fmt.Sprintf("Sidekick does not know %s; try %s.", cmd.Command, HeroCommand))
	}
	arg := strings.Join(strings.Fields(cmd.Text), " ")
	if arg == "help" {
		s.metrics.events.WithLabelValues("command", "answered").Inc()
		return ephemeral(heroHelp)
	}
	if s.deps.OnCall == nil {
		s.metrics.events.WithLabelValues("command", "error").Inc()
		return ephemeral("The rotation service is not configured, so I cannot tell who is on call.")
	}
	now := clock.OrReal(s.deps.Clock).Now()
	var text string
	var err error
	if arg == "" {
		text, err = heroReport(ctx, s.deps.OnCall, now)
	} else {
		text, err = heroArgs(ctx, s.deps.OnCall, now, arg)
	}
	if err != nil {
		s.metrics.events.WithLabelValues("command", "error").Inc()
		s.deps.Logger.Warn("/hero: rotation service", "error", err)
		return ephemeral("I could not ask the rotation service who is on call: " + err.Error())
	}
	s.metrics.events.WithLabelValues("command", "answered").Inc()
	return ephemeral(text)
}

// heroReport asks who is hero at at and, for every team, who is
// secondary, all at once.
func heroReport(ctx context.Context, oc OnCallLookup, at time.Time) (string, error) {
	var (
		wg       sync.WaitGroup
		hero     *rotationv1.WhoIsOnCallResponse
		heroErr  error
		teams    []*rotationv1.Team
		teamsErr error
	)
	wg.Go(func() {
		hero, heroErr = oc.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO, At: timestamppb.New(at)})
	})
	wg.Go(func() {
		var resp *rotationv1.ListTeamsResponse
		if resp, teamsErr = oc.ListTeams(ctx, &rotationv1.ListTeamsRequest{}); teamsErr == nil {
			teams = resp.GetTeams()
		}
	})
	wg.Wait()
	if heroErr != nil {
		return "", fmt.Errorf("who is hero: %w", heroErr)
	}
	secondaries := make([]string, len(teams))
	wg = sync.WaitGroup{}
	for i, t := range teams {
		wg.Go(func() {
			resp, err := oc.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: t.GetId(), At: timestamppb.New(at)})
			name := teamName(t)
			if err != nil {
				secondaries[i] = fmt.Sprintf("• %s: could not tell (%v)", name, err)
				return
			}
			secondaries[i] = "• " + name + ": " + onCallLine(resp)
		})
	}
	wg.Wait()
	sort.Strings(secondaries)

	var b strings.Builder
	b.WriteString("*Support Hero now:* " + onCallLine(hero))
	switch {
	case teamsErr != nil:
		fmt.Fprintf(&b, "\n*Secondary on-call:* could not list the teams (%v)", teamsErr)
	case len(teams) == 0:
		b.WriteString("\n*Secondary on-call:* no teams are configured")
	default:
		b.WriteString("\n*Secondary on-call:*")
		for _, l := range secondaries {
			b.WriteString("\n" + l)
		}
	}
	return b.String(), nil
}

// onCallLine renders one answer: the person, why when it is not the plain
// rotation order, backups, or the gap.
func onCallLine(r *rotationv1.WhoIsOnCallResponse) string {
	p := r.GetOnCall().GetPerson()
	if r.GetGap() || p.GetId() == "" {
		line := "nobody (gap)"
		if r.GetGapReason() != "" {
			line = "nobody (gap: " + r.GetGapReason() + ")"
		}
		// Who is paged instead: the person shown is the person paged.
		if rc := r.GetHigh().GetReceiver().GetPerson(); rc.GetId() != "" {
			line += "; a page goes to " + person(rc)
		}
		return line
	}
	line := person(p)
	if why := reason(r.GetOnCall()); why != "" {
		line += " — " + why
	}
	var also []string
	for _, a := range r.GetAlso() {
		if a.GetPerson().GetId() != "" {
			also = append(also, person(a.GetPerson()))
		}
	}
	if len(also) > 0 {
		line += "; also " + strings.Join(also, ", ")
	}
	return line
}

func person(p *rotationv1.Person) string {
	name := p.GetName()
	if name == "" {
		name = p.GetId()
	}
	if p.GetSlackId() != "" {
		return name + " (<@" + p.GetSlackId() + ">)"
	}
	return name
}

func reason(oc *rotationv1.OnCall) string {
	switch oc.GetReason() {
	case rotationv1.Reason_REASON_UNSPECIFIED, rotationv1.Reason_REASON_ROTATION:
		return ""
	}
	if oc.GetExplanation() != "" {
		return oc.GetExplanation()
	}
	return map[rotationv1.Reason]string{
		rotationv1.Reason_REASON_OVERRIDE: "override",
		rotationv1.Reason_REASON_SWAP:     "swap",
		rotationv1.Reason_REASON_DERIVED:  "this week's hero, secondary for their own team",
		rotationv1.Reason_REASON_CATCHER:  "catching while the hero is off hours",
	}[oc.GetReason()]
}
