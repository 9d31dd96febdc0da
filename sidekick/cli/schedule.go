package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	rotationv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/rotation/v1"
)

// timeFlag parses an optional time flag; nil when empty.
func timeFlag(name, v string) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	t, err := parseTime(v)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", name, err)
	}
	return timestamppb.New(t), nil
}

// timeFlags parses required and optional time flags in order, stopping at
// the first bad one.
func timeFlags(pairs ...[2]string) ([]*timestamppb.Timestamp, error) {
	out := make([]*timestamppb.Timestamp, len(pairs))
	for i, p := range pairs {
		ts, err := timeFlag(p[0], p[1])
		if err != nil {
			return nil, err
		}
		out[i] = ts
	}
	return out, nil
}

const timeHelp = `Times are RFC 3339 (2026-02-02T09:00:00+01:00) or "2026-02-02 09:00" /
"2026-02-02" in UTC; tables show them in the local time zone (TZ).`

// rotationTimeHelp is timeHelp for the commands that change a rotation:
// as in the organisation file, a time without a zone is the rotation's.
const rotationTimeHelp = `Times are RFC 3339 (2026-02-02T09:00:00Z, 2026-02-02T09:00:00+01:00) or
"2026-02-02 09:00" / "2026-02-02" read in the rotation's time zone, as the
organisation file reads them; tables show them in the local time zone (TZ).`

// hasZone reports whether a time flag says its zone (Z or an offset), so
// reading it needs no rotation's.
func hasZone(v string) bool {
	_, err := time.Parse(time.RFC3339, strings.TrimSpace(v))
	return err == nil
}

// rotationTimeFlags parses time flags as timeFlags does, reading a time
// without a zone in rotation's zone, which it asks rotation for only when
// some flag needs it.
func (r *root) rotationTimeFlags(ctx context.Context, rotation string, pairs ...[2]string) ([]*timestamppb.Timestamp, error) {
	// Spelling first, so a typo is reported without a round trip.
	if _, err := timeFlags(pairs...); err != nil {
		return nil, err
	}
	loc := time.UTC
	for _, p := range pairs {
		if p[1] == "" || hasZone(p[1]) {
			continue
		}
		var err error
		if loc, err = r.rotationZone(ctx, rotation); err != nil {
			return nil, err
		}
		break
	}
	out := make([]*timestamppb.Timestamp, len(pairs))
	for i, p := range pairs {
		if p[1] == "" {
			continue
		}
		t, err := parseTimeIn(p[1], loc)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", p[0], err)
		}
		out[i] = timestamppb.New(t)
	}
	return out, nil
}

// rotationZone is the time zone rotation id's handoffs are set in.
func (r *root) rotationZone(ctx context.Context, id string) (*time.Location, error) {
	if id == "" {
		return nil, errors.New("a time without a zone is read in the rotation's: give --rotation, or write the time with Z or an offset")
	}
	var resp *rotationv1.ListRotationsResponse
	err := r.rpc(ctx, "list rotations", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
		resp, err = rotationv1.NewRotationServiceClient(cc).ListRotations(ctx, &rotationv1.ListRotationsRequest{})
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, rot := range resp.GetRotations() {
		if rot.GetId() != id {
			continue
		}
		loc, err := time.LoadLocation(rot.GetTimezone())
		if err != nil {
			return nil, fmt.Errorf("rotation %s's time zone %q: %w", id, rot.GetTimezone(), err)
		}
		return loc, nil
	}
	return nil, fmt.Errorf("unknown rotation %q", id)
}

func (r *root) shiftsCmd() *cobra.Command {
	var (
		asJSON                   bool
		rotation, team, from, to string
	)
	cmd := &cobra.Command{
		Use:   "shifts [--rotation R | --team T] [--from T] [--to T]",
		Short: "List shifts of a rotation or a team's secondary, overrides and swaps applied",
		Long: `List the shifts of a rotation, or of a team's secondary on-call rotation,
with overrides and swaps applied (WHY says which, and whom the rotation order
had scheduled). Without --rotation or --team: the Support Hero rotation.
--from defaults to now and --to to four weeks after --from.
--json prints one protobuf JSON Shift per line.

` + timeHelp,
		Example: `  sidekick shifts
  sidekick shifts --team platform --from 2026-03-01 --to 2026-04-01
  sidekick shifts --rotation hero --json | jq -r .person_id`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := timeFlags([2]string{"from", from}, [2]string{"to", to})
			if err != nil {
				return err
			}
			req := &rotationv1.ListShiftsRequest{Rotation: rotation, Team: team, From: ts[0], To: ts[1]}
			var resp *rotationv1.ListShiftsResponse
			err = r.rpc(cmd.Context(), "list shifts", func(ctx context.Context, cc grpc.ClientConnInterface) error {
				client := rotationv1.NewRotationServiceClient(cc)
				if req.GetRotation() == "" && req.GetTeam() == "" {
					hero, err := heroRotation(ctx, client)
					if err != nil {
						return err
					}
					req.Rotation = hero
				}
				var err error
				resp, err = client.ListShifts(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				for _, s := range resp.GetShifts() {
					if err := writeJSONLine(r.io.Stdout, protoJSON(s)); err != nil {
						return err
					}
				}
				return nil
			}
			if len(resp.GetShifts()) == 0 {
				_, err := fmt.Fprintln(r.io.Stdout, "no shifts in that range")
				return err
			}
			loc := r.location()
			tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROTATION\tSTART\tEND\tPERSON\tWHY")
			for _, s := range resp.GetShifts() {
				why := short(s.GetReason().String(), "REASON_")
				if sp := s.GetScheduledPersonId(); sp != "" && sp != s.GetPersonId() {
					why += " (instead of " + sp + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.GetRotationId(), fmtTime(s.GetStart(), loc), fmtTime(s.GetEnd(), loc), dash(s.GetPersonId()), why)
			}
			return tw.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&rotation, "rotation", "", "rotation id")
	f.StringVar(&team, "team", "", "team id: its secondary on-call rotation")
	f.StringVar(&from, "from", "", "start of the range (default now)")
	f.StringVar(&to, "to", "", "end of the range (default four weeks after --from)")
	f.BoolVar(&asJSON, "json", false, "one protobuf JSON shift per line")
	cmd.MarkFlagsMutuallyExclusive("rotation", "team")
	return cmd
}

// heroRotation finds the Support Hero rotation's id from whoever holds it now.
func heroRotation(ctx context.Context, client rotationv1.RotationServiceClient) (string, error) {
	resp, err := client.WhoIsOnCall(ctx, &rotationv1.WhoIsOnCallRequest{Role: rotationv1.Role_ROLE_HERO})
	if err != nil {
		return "", fmt.Errorf("find the Support Hero rotation: %w", err)
	}
	id := resp.GetOnCall().GetShift().GetRotationId()
	if id == "" {
		return "", errors.New("nobody holds the Support Hero rotation right now, so its id is unknown: name it with --rotation")
	}
	return id, nil
}

func (r *root) overrideCmd() *cobra.Command {
	var (
		asJSON                     bool
		rotation, start, end, note string
		replace, with, add, remove string
	)
	cmd := &cobra.Command{
		Use:   "override --rotation R --start T --end T (--replace A --with B | --add B | --remove A) [--note N]",
		Short: "Change who is on duty for a while, without changing the rotation order",
		Long: `Create an override on a rotation for [--start, --end):
  --replace A --with B   B is on duty instead of A
  --add B                B is on duty alongside whoever is
  --remove A             A is off duty (a gap is reported if nobody is left)
The rotation order never changes. For a day off traded with a colleague use
'sidekick swap', which records both sides. 'sidekick overrides' lists and
deletes them.

` + rotationTimeHelp,
		Example: `  sidekick override --rotation hero --start "2026-03-04 08:00" --end "2026-03-05 08:00" --replace alice --with bob --note "dentist"
  sidekick override --rotation platform-secondary --start 2026-03-10 --end 2026-03-11 --add carol`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := &rotationv1.Override{RotationId: rotation, Note: note}
			switch {
			case replace != "":
				if with == "" {
					return errors.New("--replace needs --with: who is on duty instead")
				}
				o.Kind, o.PersonId, o.WithPersonId = rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE, replace, with
			case with != "":
				return errors.New("--with goes with --replace")
			case add != "":
				o.Kind, o.WithPersonId = rotationv1.OverrideKind_OVERRIDE_KIND_ADD, add
			case remove != "":
				o.Kind, o.PersonId = rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE, remove
			}
			ts, err := r.rotationTimeFlags(cmd.Context(), rotation, [2]string{"start", start}, [2]string{"end", end})
			if err != nil {
				return err
			}
			o.Start, o.End = ts[0], ts[1]
			if !o.GetEnd().AsTime().After(o.GetStart().AsTime()) {
				return errors.New("--end must be after --start")
			}
			var resp *rotationv1.CreateOverrideResponse
			err = r.rpc(cmd.Context(), "create override", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = rotationv1.NewRotationServiceClient(cc).CreateOverride(ctx, &rotationv1.CreateOverrideRequest{Override: o})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp.GetOverride()))
			}
			_, err = fmt.Fprintln(r.io.Stdout, describeOverride(resp.GetOverride(), r.location()))
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&rotation, "rotation", "", "rotation id (required)")
	f.StringVar(&start, "start", "", "start of the override (required)")
	f.StringVar(&end, "end", "", "end of the override, exclusive (required)")
	f.StringVar(&replace, "replace", "", "person taken off duty (with --with)")
	f.StringVar(&with, "with", "", "person on duty instead (with --replace)")
	f.StringVar(&add, "add", "", "person on duty alongside whoever is")
	f.StringVar(&remove, "remove", "", "person taken off duty")
	f.StringVar(&note, "note", "", "why, shown with the override")
	f.BoolVar(&asJSON, "json", false, "print the override as protobuf JSON")
	for _, name := range []string{"rotation", "start", "end"} {
		_ = cmd.MarkFlagRequired(name)
	}
	cmd.MarkFlagsOneRequired("replace", "add", "remove")
	cmd.MarkFlagsMutuallyExclusive("replace", "add", "remove")
	return cmd
}

// overrideWhat says who an override puts on or takes off duty.
func overrideWhat(o *rotationv1.Override) string {
	switch o.GetKind() {
	case rotationv1.OverrideKind_OVERRIDE_KIND_REPLACE:
		return o.GetWithPersonId() + " replaces " + o.GetPersonId()
	case rotationv1.OverrideKind_OVERRIDE_KIND_ADD:
		return o.GetWithPersonId() + " is added to whoever is on duty"
	case rotationv1.OverrideKind_OVERRIDE_KIND_REMOVE:
		return o.GetPersonId() + " is off duty"
	}
	return short(o.GetKind().String(), "OVERRIDE_KIND_")
}

// describeOverride says what an override does, in one line.
func describeOverride(o *rotationv1.Override, loc *time.Location) string {
	s := fmt.Sprintf("override %s on %s: %s from %s to %s", o.GetId(), o.GetRotationId(), overrideWhat(o), fmtTime(o.GetStart(), loc), fmtTime(o.GetEnd(), loc))
	if o.GetNote() != "" {
		s += " (" + o.GetNote() + ")"
	}
	return s
}

func (r *root) swapCmd() *cobra.Command {
	var (
		asJSON                               bool
		rotation, a, aStart, aEnd, b, bStart string
		bEnd, note                           string
	)
	cmd := &cobra.Command{
		Use:   "swap --rotation R --a PERSON --a-start T [--a-end T] --b PERSON --b-start T [--b-end T] [--note N]",
		Short: "Swap shifts between two people (two overrides; the rotation order never changes)",
		Long: `Swap shifts: A gives up the shift starting at --a-start to B, and B gives up
the shift starting at --b-start to A. Recorded as two overrides sharing a swap
id, so the rotation order never changes. Without --a-end (--b-end) the whole
shift is swapped; give an end to swap part of it, such as one day off within a
weekly shift. The same swap sent again (a retry) is the same swap, recorded
once; 'sidekick overrides delete SWAP-ID' takes both sides back.

` + rotationTimeHelp,
		Example: `  # Alice takes Bob's week of 9 March, Bob takes hers of 16 March
  sidekick swap --rotation hero --a bob --a-start "2026-03-09 09:00" --b alice --b-start "2026-03-16 09:00"
  # one day: Alice covers Bob's Wednesday, Bob covers Alice's Friday
  sidekick swap --rotation hero --a bob --a-start 2026-03-11 --a-end 2026-03-12 --b alice --b-start 2026-03-20 --b-end 2026-03-21`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := r.rotationTimeFlags(cmd.Context(), rotation, [2]string{"a-start", aStart}, [2]string{"a-end", aEnd}, [2]string{"b-start", bStart}, [2]string{"b-end", bEnd})
			if err != nil {
				return err
			}
			if a == b {
				return errors.New("--a and --b must be two different people")
			}
			req := &rotationv1.SwapShiftsRequest{
				Rotation: rotation, PersonA: a, ShiftAStart: ts[0], ShiftAEnd: ts[1],
				PersonB: b, ShiftBStart: ts[2], ShiftBEnd: ts[3], Note: note,
			}
			var resp *rotationv1.SwapShiftsResponse
			err = r.rpc(cmd.Context(), "swap shifts", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = rotationv1.NewRotationServiceClient(cc).SwapShifts(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(r.io.Stdout, protoJSON(resp))
			}
			fmt.Fprintf(r.io.Stdout, "swap %s on %s:\n", resp.GetSwapId(), rotation)
			for _, o := range resp.GetOverrides() {
				fmt.Fprintln(r.io.Stdout, "  "+describeOverride(o, r.location()))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&rotation, "rotation", "", "rotation id (required)")
	f.StringVar(&a, "a", "", "first person, who gives up the shift at --a-start (required)")
	f.StringVar(&aStart, "a-start", "", "start of the first person's shift (required)")
	f.StringVar(&aEnd, "a-end", "", "end of the swapped part of the first shift (default: the shift's end)")
	f.StringVar(&b, "b", "", "second person, who gives up the shift at --b-start (required)")
	f.StringVar(&bStart, "b-start", "", "start of the second person's shift (required)")
	f.StringVar(&bEnd, "b-end", "", "end of the swapped part of the second shift (default: the shift's end)")
	f.StringVar(&note, "note", "", "why, shown with both overrides")
	f.BoolVar(&asJSON, "json", false, "print the swap id and both overrides as protobuf JSON")
	for _, name := range []string{"rotation", "a", "a-start", "b", "b-start"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func (r *root) peopleCmd() *cobra.Command {
	var (
		asJSON bool
		team   string
	)
	cmd := &cobra.Command{
		Use:   "people [--team T]",
		Short: "List the people who can be on call, with time zones and working hours",
		Long: `List people from the organisation configuration: id (what other commands
take as PERSON), name, team, time zone, working hours, email and Slack id.
--json prints one protobuf JSON Person per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp *rotationv1.ListPeopleResponse
			err := r.rpc(cmd.Context(), "list people", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = rotationv1.NewRotationServiceClient(cc).ListPeople(ctx, &rotationv1.ListPeopleRequest{Team: team})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				for _, p := range resp.GetPeople() {
					if err := writeJSONLine(r.io.Stdout, protoJSON(p)); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTEAM\tTIMEZONE\tWORKING HOURS\tEMAIL\tSLACK")
			for _, p := range resp.GetPeople() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.GetId(), dash(p.GetName()), dash(p.GetTeam()), dash(p.GetTimezone()),
					dash(p.GetWorkingHours()), dash(p.GetEmail()), dash(p.GetSlackId()))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&team, "team", "", "only this team's people")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one protobuf JSON person per line")
	return cmd
}

func (r *root) teamsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "teams",
		Short: "List the teams and their secondary on-call rotations",
		Long: `List teams: id (what --team takes), name, and the rotation of the team's
secondary on-call. --json prints one protobuf JSON Team per line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var resp *rotationv1.ListTeamsResponse
			err := r.rpc(cmd.Context(), "list teams", func(ctx context.Context, cc grpc.ClientConnInterface) (err error) {
				resp, err = rotationv1.NewRotationServiceClient(cc).ListTeams(ctx, &rotationv1.ListTeamsRequest{})
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				for _, t := range resp.GetTeams() {
					if err := writeJSONLine(r.io.Stdout, protoJSON(t)); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(r.io.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSECONDARY ROTATION")
			for _, t := range resp.GetTeams() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.GetId(), dash(t.GetName()), dash(t.GetSecondaryRotation()))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one protobuf JSON team per line")
	return cmd
}
