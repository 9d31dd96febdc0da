package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

func sampleSummary() *triagev1.SummaryResponse {
	return &triagev1.SummaryResponse{
		ByCategory: []*triagev1.Count{{Key: "Performance", Count: 12}, {Key: "Deployments/Setup", Count: 7}},
		ByTier:     []*triagev1.Count{{Key: "priority", Count: 5}, {Key: "TIER_COMMUNITY", Count: 14}},
		ByChannel:  []*triagev1.Count{{Key: "slack", Count: 11}, {Key: "email", Count: 8}},
		Response: []*triagev1.TierResponseStats{
			{Tier: supportv1.Tier_TIER_PRIORITY, Conversations: 5, Responded: 5, MeanSeconds: 750, MedianSeconds: 540, P90Seconds: 2730.4,
				GreatShare: 0.6, OkayShare: 0.4, Decided: 5, Great: 3, Okay: 2,
				Resolution: &triagev1.Resolution{Closed: 4, MeanSeconds: 7200, MedianSeconds: 5400, P90Seconds: 14400}},
			// One conversation, never answered and past too late: the
			// bad news shows although nothing was answered.
			{Tier: supportv1.Tier_TIER_SUBSCRIBER, Conversations: 1, Decided: 1, Breached: 1, BreachedShare: 1, Resolution: &triagev1.Resolution{}},
			{Tier: supportv1.Tier_TIER_COMMUNITY, Conversations: 14, Responded: 12, MeanSeconds: 30 * 3600, MedianSeconds: 45, P90Seconds: 93600,
				GreatShare: 0.25, OkayShare: 0.25, LateShare: 1.0 / 3, BreachedShare: 1.0 / 6, Decided: 12, Great: 3, Okay: 3, Late: 4, Breached: 2},
		},
		ByPerson: []*triagev1.GroupResponseStats{
			{Key: "", Conversations: 1, Breached: 1},
			{Key: "alice", Conversations: 17, Responded: 17, MeanSeconds: 600, MedianSeconds: 300, P90Seconds: 3600, Great: 6, Okay: 5, Late: 4, Breached: 2,
				Resolution: &triagev1.Resolution{Closed: 4, MeanSeconds: 7200, MedianSeconds: 5400, P90Seconds: 14400}},
		},
		ByCategoryResponse: []*triagev1.GroupResponseStats{
			{Key: "performance", Conversations: 12, Responded: 12, MeanSeconds: 600, MedianSeconds: 300, P90Seconds: 3600, Great: 6, Okay: 3, Late: 2, Breached: 1},
			{Key: "deployments/setup", Conversations: 7, Responded: 5, MeanSeconds: 1800, MedianSeconds: 900, P90Seconds: 5400, Okay: 2, Late: 2, Breached: 2},
		},
	}
}

func TestReport(t *testing.T) {
	h := newHarness(t)
	h.respond("Summary", sampleSummary())
	out, err := h.run(t, "report", "--from", "2026-02-01", "--to", "2026-03-01T00:00:00+01:00")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "Summary", &triagev1.SummaryRequest{From: ts("2026-02-01T00:00:00Z"), To: ts("2026-02-28T23:00:00Z")})
	want := `Conversations opened 2026-02-01 00:00 UTC to 2026-02-28 23:00 UTC

CATEGORY           CONVERSATIONS
Performance        12
Deployments/Setup  7

TIER       CONVERSATIONS
priority   5
community  14

CHANNEL  CONVERSATIONS
slack    11
email    8

First response, in working time
TIER        CONVERSATIONS  RESPONDED  MEAN    MEDIAN  P90     GREAT  OKAY  LATE  BREACHED
priority    5              5          12m30s  9m      45m30s  60%    40%   0%    0 (0%)
subscriber  1              0          -       -       -       0%     0%    0%    1 (100%)
community   14             12         30h00m  45s     26h00m  25%    25%   33%   2 (17%)

First response by person (who answered first; unanswered by assignee)
PERSON    CONVERSATIONS  RESPONDED  MEAN  MEDIAN  P90    GREAT  OKAY  LATE  BREACHED
(nobody)  1              0          -     -       -      0      0     0     1
alice     17             17         10m   5m      1h00m  6      5     4     2

First response by category
CATEGORY           CONVERSATIONS  RESPONDED  MEAN  MEDIAN  P90    GREAT  OKAY  LATE  BREACHED
performance        12             12         10m   5m      1h00m  6      3     2     1
deployments/setup  7              5          30m   15m     1h30m  0      2     2     2

Resolution, opening to close in wall time (spam left out)
TIER        CLOSED  MEAN   MEDIAN  P90
priority    4       2h00m  1h30m   4h00m
subscriber  0       -      -       -
community   0       -      -       -
`
	if out != want {
		t.Fatalf("report:\n%s\nwant:\n%s", out, want)
	}

	out, err = h.run(t, "report", "--from", "2026-02-01", "--to", "2026-03-01", "--csv")
	if err != nil {
		t.Fatal(err)
	}
	wantCSV := `section,key,conversations,responded,mean_seconds,median_seconds,p90_seconds,great,okay,late,breached,closed,resolution_mean_seconds,resolution_median_seconds,resolution_p90_seconds
tier,priority,5,5,750,540,2730.4,3,2,0,0,4,7200,5400,14400
tier,subscriber,1,0,,,,0,0,0,1,0,,,
tier,community,14,12,108000,45,93600,3,3,4,2,0,,,
person,,1,0,,,,0,0,0,1,0,,,
person,alice,17,17,600,300,3600,6,5,4,2,4,7200,5400,14400
category,performance,12,12,600,300,3600,6,3,2,1,0,,,
category,deployments/setup,7,5,1800,900,5400,0,2,2,2,0,,,
conversations_by_category,Performance,12,,,,,,,,,,,,
conversations_by_category,Deployments/Setup,7,,,,,,,,,,,,
conversations_by_tier,priority,5,,,,,,,,,,,,
conversations_by_tier,community,14,,,,,,,,,,,,
conversations_by_channel,slack,11,,,,,,,,,,,,
conversations_by_channel,email,8,,,,,,,,,,,,
`
	if out != wantCSV {
		t.Fatalf("--csv:\n%s\nwant:\n%s", out, wantCSV)
	}
	if _, err := h.run(t, "report", "--json", "--csv"); err == nil {
		t.Error("--json with --csv accepted")
	}

	out, err = h.run(t, "report", "--from", "2026-02-01", "--to", "2026-03-01", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got triagev1.SummaryResponse
	if err := protojson.Unmarshal([]byte(out), &got); err != nil || !proto.Equal(&got, sampleSummary()) {
		t.Fatalf("--json: %v\n%s", err, out)
	}
}

func TestReportRange(t *testing.T) {
	h := newHarness(t)
	h.respond("Summary", &triagev1.SummaryResponse{})

	// Without --from: the seven days before --to.
	if _, err := h.run(t, "report", "--to", "2026-03-08"); err != nil {
		t.Fatal(err)
	}
	h.want(t, "Summary", &triagev1.SummaryRequest{From: ts("2026-03-01T00:00:00Z"), To: ts("2026-03-08T00:00:00Z")})

	// Without either: a week up to now.
	out, err := h.run(t, "report")
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	last := h.reqs["Summary"][len(h.reqs["Summary"])-1].(*triagev1.SummaryRequest)
	h.mu.Unlock()
	if span := last.GetTo().AsTime().Sub(last.GetFrom().AsTime()); span != 7*24*time.Hour {
		t.Fatalf("default range spans %s", span)
	}
	if !strings.Contains(out, "(none)") {
		t.Fatalf("an empty report should say so:\n%s", out)
	}

	for _, args := range [][]string{
		{"report", "--from", "2026-03-08", "--to", "2026-03-01"},
		{"report", "--from", "last tuesday"},
	} {
		if _, err := h.run(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if n := h.calls("Summary"); n != 2 {
		t.Fatalf("Summary called %d times, want 2 (bad ranges are not sent)", n)
	}
}

// The agreement line counts each conversation once: one exact and one none
// read 50% and 50%, not "50% matched, 50% shared" (issue 17).
func TestReportAgreement(t *testing.T) {
	h := newHarness(t)
	h.respond("Summary", &triagev1.SummaryResponse{Agreement: &triagev1.CategoryAgreement{
		Pairs: 2, Exact: 1, None: 1, ExactRate: 0.5, NoneRate: 0.5,
	}})
	out, err := h.run(t, "report")
	if err != nil {
		t.Fatal(err)
	}
	if want := "Category suggestions against what people confirmed (2 conversations): 1 exact (50%), 0 overlapping (0%), 1 none (50%)\n"; !strings.HasSuffix(out, want) {
		t.Fatalf("report ends:\n%s\nwant:\n%s", out, want)
	}
}

// TestReportAlerts: alerts get their own section, by time to acknowledge
// and resolve, and their own CSV rows.
func TestReportAlerts(t *testing.T) {
	h := newHarness(t)
	h.respond("Summary", &triagev1.SummaryResponse{Alerts: &triagev1.AlertStats{
		Opened: 3, Occurrences: 400, Acknowledged: 2, AcknowledgeMeanSeconds: 360, AcknowledgeMedianSeconds: 360, AcknowledgeP90Seconds: 552,
		Resolution: &triagev1.Resolution{Closed: 1, MeanSeconds: 4200, MedianSeconds: 4200, P90Seconds: 4200},
	}})
	out, err := h.run(t, "report")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Alerts (Sentry issues, left out above): 3 opened, 400 occurrences\n",
		"acknowledge  2      6m     6m      9m12s\n", "resolve      1      1h10m  1h10m   1h10m\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	out, err = h.run(t, "report", "--csv")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "\nalerts,,3,2,360,360,552,0,0,0,0,1,4200,4200,4200\n") || !strings.Contains(out, "\nalert_occurrences,,400,") {
		t.Errorf("CSV:\n%s", out)
	}
}

// report classifier measures the built-in rules locally, and an
// organisation's rules with --org.
func TestReportClassifier(t *testing.T) {
	h := newHarness(t)
	out, err := h.run(t, "report", "classifier")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Category classifier on 114 labelled messages, 6-fold cross-validation",
		"CATEGORY                       SUPPORT  SUGGESTED  CORRECT  PRECISION  RECALL  F1\n",
		"\nbilling                        6        6          6        1.00       1.00    1.00\n",
		"\nMacro-F1 0.770 over the categories with labelled messages\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report classifier lacks %q:\n%s", want, out)
		}
	}
	if h.calls("Summary") != 0 {
		t.Error("report classifier called the server")
	}

	// Rules that know nothing: every message is "other", nothing else is
	// right.
	org := filepath.Join(t.TempDir(), "org.yaml")
	if err := os.WriteFile(org, []byte("triage:\n  classifier:\n    categories:\n      - {category: billing, keywords: [zzzunused]}\n    spam: {channels: []}\n    model_min_docs: 1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = h.run(t, "report", "classifier", "--org", org, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		MacroF1     float64 `json:"macro_f1"`
		Unsuggested int     `json:"unsuggested"`
		Exact       int     `json:"exact"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if rep.Unsuggested != 114 || rep.Exact != 6 {
		t.Errorf("rules that know nothing: %+v", rep)
	}
	if _, err := h.run(t, "report", "classifier", "--org", filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing --org file was accepted")
	}
}
