package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// onCallJSON is the stable JSON shape of `sidekick oncall --json`: one
// object per line.
type onCallJSON struct {
	Role        string       `json:"role"`
	Team        string       `json:"team,omitempty"`
	Rotation    string       `json:"rotation,omitempty"`
	At          string       `json:"at"`
	Person      *personJSON  `json:"person"`
	Shift       *shiftJSON   `json:"shift,omitempty"`
	Reason      string       `json:"reason,omitempty"`
	Explanation string       `json:"explanation,omitempty"`
	Also        []onCallJSON `json:"also,omitempty"`
	Gap         bool         `json:"gap"`
	GapReason   string       `json:"gap_reason,omitempty"`
	// Availability of the person: available, outside_hours, time_off,
	// holiday; Detail says why.
	Availability       string `json:"availability,omitempty"`
	AvailabilityDetail string `json:"availability_detail,omitempty"`
	// Chain is the backup chain in order; Page and Ping say who a
	// high- and a low-urgency message reach now.
	Chain []onCallJSON `json:"chain,omitempty"`
	Page  *routeJSON   `json:"page,omitempty"`
	Ping  *routeJSON   `json:"ping,omitempty"`
}

// routeJSON is who a message of one urgency reaches.
type routeJSON struct {
	// Person is the receiver's id; empty with Nobody.
	Person      string `json:"person,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Nobody      bool   `json:"nobody"`
	Explanation string `json:"explanation,omitempty"`
	WaitUntil   string `json:"wait_until,omitempty"`
}

type personJSON struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email,omitempty"`
	SlackID  string `json:"slack_id,omitempty"`
	Team     string `json:"team,omitempty"`
	Timezone string `json:"timezone,omitempty"`
}

type shiftJSON struct {
	Rotation string `json:"rotation"`
	Start    string `json:"start"`
	End      string `json:"end"`
}

func (r *root) oncallCmd() *cobra.Command {
	var (
		asJSON         bool
		team, rotation string
		at             string
	)
	cmd := &cobra.Command{
		Use:   "oncall",
		Short: "Who is on call: the Support Hero and each team's secondary, or one team or rotation",
		Long: `Who is on call now (or --at a time, RFC 3339 or "2006-01-02 15:04" in UTC),
and who a message actually reaches: PAGE is who a high-urgency page reaches
(the person on duty unless on time off or a holiday, else the backup chain),
PING who a low-urgency ping reaches (working hours respected: a catcher, or
it waits for the next working hour). A coverage gap, or nobody to receive
at all, is printed below the table as GAP or NOBODY.
Without --team or --rotation: the Support Hero and every team's secondary.
With --json: one JSON object per line with role, person.id, shift.start,
shift.end (RFC 3339), reason (rotation, override, swap, derived, catcher,
backup), availability, gap, the chain, and page and ping.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			when := time.Now()
			if at != "" {
				t, err := parseTime(at)
				if err != nil {
					return err
				}
				when = t
			}
			cc, err := r.dial()
			if err != nil {
				return err
			}
			defer cc.Close()
			client := rotationv1.NewRotationServiceClient(cc)
			ctx, cancel := r.call(cmd.Context())
			defer cancel()
			var queries []*rotationv1.WhoIsOnCallRequest
			switch {
			case team != "":
				queries = append(queries, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: team})
			case rotation != "":
				queries = append(queries, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_ROTATION, Rotation: rotation})
			default:
				queries = append(queries, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
				teams, err := client.ListTeams(ctx, &rotationv1.ListTeamsRequest{})
				if err != nil {
					return fmt.Errorf("list teams: %w", err)
				}
				for _, t := range teams.GetTeams() {
					queries = append(queries, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_SECONDARY, Team: t.GetId()})
				}
			}
			var results []onCallJSON
			for _, q := range queries {
				q.At = timestamppb.New(when)
				resp, err := client.WhoIsOnCall(ctx, q)
				if err != nil {
					return fmt.Errorf("who is on call: %w", err)
				}
				results = append(results, toOnCallJSON(q, when, resp))
			}
			if asJSON {
				for _, res := range results {
					if err := writeJSONLine(r.io.Stdout, res); err != nil {
						return err
					}
				}
				return nil
			}
			return writeOnCallTable(r.io.Stdout, results, r.location())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print one JSON object per line")
	f.StringVar(&team, "team", "", "a team's secondary on-call")
	f.StringVar(&rotation, "rotation", "", "whoever is on duty in a rotation")
	f.StringVar(&at, "at", "", "the moment to ask about (default now)")
	return cmd
}

func toOnCallJSON(q *rotationv1.WhoIsOnCallRequest, at time.Time, resp *rotationv1.WhoIsOnCallResponse) onCallJSON {
	out := onCallJSON{
		Role: short(q.GetRole().String(), "ROLE_"), Team: q.GetTeam(), Rotation: q.GetRotation(),
		At: at.UTC().Format(time.RFC3339), Gap: resp.GetGap(), GapReason: resp.GetGapReason(),
	}
	fill := func(dst *onCallJSON, oc *rotationv1.OnCall) {
		if oc == nil || oc.GetPerson() == nil {
			return
		}
		p := oc.GetPerson()
		dst.Person = &personJSON{ID: p.GetId(), Name: p.GetName(), Email: p.GetEmail(), SlackID: p.GetSlackId(), Team: p.GetTeam(), Timezone: p.GetTimezone()}
		if s := oc.GetShift(); s != nil {
			dst.Shift = &shiftJSON{Rotation: s.GetRotationId(), Start: s.GetStart().AsTime().Format(time.RFC3339), End: s.GetEnd().AsTime().Format(time.RFC3339)}
		}
		dst.Reason = short(oc.GetReason().String(), "REASON_")
		dst.Explanation = oc.GetExplanation()
		if a := oc.GetAvailability(); a != rotationv1.Availability_AVAILABILITY_UNSPECIFIED {
			dst.Availability = strings.ToLower(short(a.String(), "AVAILABILITY_"))
		}
		dst.AvailabilityDetail = oc.GetAvailabilityDetail()
	}
	fill(&out, resp.GetOnCall())
	for _, a := range resp.GetAlso() {
		var o onCallJSON
		fill(&o, a)
		o.Role = "also"
		o.At = out.At
		out.Also = append(out.Also, o)
	}
	for _, a := range resp.GetChain() {
		var o onCallJSON
		fill(&o, a)
		o.Role = "chain"
		o.At = out.At
		out.Chain = append(out.Chain, o)
	}
	out.Page, out.Ping = toRouteJSON(resp.GetHigh()), toRouteJSON(resp.GetLow())
	return out
}

func toRouteJSON(r *rotationv1.Route) *routeJSON {
	if r == nil {
		return nil
	}
	out := &routeJSON{Nobody: r.GetNobody(), Explanation: r.GetExplanation()}
	if rc := r.GetReceiver(); rc != nil {
		out.Person, out.Reason = rc.GetPerson().GetId(), short(rc.GetReason().String(), "REASON_")
	}
	if w := r.GetWaitUntil(); w != nil {
		out.WaitUntil = w.AsTime().UTC().Format(time.RFC3339)
	}
	return out
}

// writeOnCallTable prints one line per role and, below, every gap and
// every role nobody can receive for, so the table is as loud as --json.
func writeOnCallTable(w io.Writer, results []onCallJSON, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tTEAM\tON DUTY\tUNTIL\tPAGE GOES TO\tPING GOES TO")
	var notes []string
	for _, res := range results {
		who, until := "nobody", "-"
		if res.Person != nil {
			who = res.Person.ID + " (" + res.Reason + ")"
			if res.Availability != "" && res.Availability != "available" {
				who += ": " + strings.ToUpper(strings.ReplaceAll(res.Availability, "_", " "))
			}
		}
		if res.Shift != nil && res.Shift.End != "" {
			if t, err := time.Parse(time.RFC3339, res.Shift.End); err == nil {
				until = t.In(loc).Format("2006-01-02 15:04 MST")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", res.Role, dash(res.Team), who, until, routeCell(res.Page, loc), routeCell(res.Ping, loc))
		role := res.Role
		if res.Team != "" {
			role += " " + res.Team
		}
		if res.Rotation != "" {
			role += " " + res.Rotation
		}
		if res.Gap {
			notes = append(notes, "GAP "+role+": "+res.GapReason)
		}
		if res.Page != nil && res.Page.Nobody {
			notes = append(notes, "NOBODY can receive a page for "+role+": "+res.Page.Explanation)
		} else if res.Gap && res.Page != nil {
			notes = append(notes, "    page: "+res.Page.Explanation)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

// routeCell is "bob (catcher)", "NOBODY", or "waits until …".
func routeCell(r *routeJSON, loc *time.Location) string {
	switch {
	case r == nil:
		return "-"
	case r.Person != "":
		return r.Person + " (" + r.Reason + ")"
	case r.WaitUntil != "":
		if t, err := time.Parse(time.RFC3339, r.WaitUntil); err == nil {
			return "waits until " + t.In(loc).Format("2006-01-02 15:04 MST")
		}
		return "waits until " + r.WaitUntil
	}
	return "NOBODY"
}

func parseTime(s string) (time.Time, error) {
	return parseTimeIn(s, time.UTC)
}

// parseTimeIn reads RFC 3339, or a wall-clock time without a zone in loc.
func parseTimeIn(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, strings.TrimSpace(s), loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("cannot read time %q: use RFC 3339 (2026-02-02T09:00:00Z) or \"2026-02-02 09:00\" (%s)", s, loc)
}
