package main

import (
	"fmt"
	"io"
	"strings"
)

// reportMeta is what the results table is printed with, so a reader can
// tell where the figures came from.
type reportMeta struct {
	Command  string
	Date     string
	Commit   string
	LoadAvg  string // at the start and at the end
	Machine  string
	Settings string
}

// totals sums the runs of one scenario.
func totals(rs []result) result {
	var t result
	for _, r := range rs {
		t.Sent += r.Sent
		t.Accepted += r.Accepted
		t.Stored += r.Stored
		t.Lost += r.Lost
		t.Duplicated += r.Duplicated
		t.Attempts += r.Attempts
		t.Expected += r.Expected
		t.Pinged += r.Pinged
		t.Digested += r.Digested
		t.Once += r.Once
		t.Never += r.Never
		t.Refused += r.Refused
		t.Twice += r.Twice
		t.DupPings += r.DupPings
		t.OverLimit += r.OverLimit
		t.SentryEvents += r.SentryEvents
		t.SentryAccepted += r.SentryAccepted
		t.Issues += r.Issues
		t.IssuesStored += r.IssuesStored
		t.IssuesPaged += r.IssuesPaged
		t.DupPages += r.DupPages
		t.Crashes += r.Crashes
	}
	return t
}

// byScenario groups results by scenario, in the order they first ran.
func byScenario(rs []result) (names []string, groups map[string][]result) {
	groups = map[string][]result{}
	for _, r := range rs {
		if _, ok := groups[r.Scenario]; !ok {
			names = append(names, r.Scenario)
		}
		groups[r.Scenario] = append(groups[r.Scenario], r)
	}
	return names, groups
}

const tableHeader = "| scenario | runs | sent | accepted | stored | lost | duplicated | to notify | notified once | never notified (of which only in refused posts) | notified 2+ times | duplicate pings | posts over Slack's limits | Sentry issues paged | duplicate pages | crashes |\n" +
	"|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"

func row(w io.Writer, name string, runs int, t result) {
	fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %d | %d | %d (%d) | %d | %d | %d | %d/%d | %d | %d |\n",
		name, runs, t.Sent, t.Accepted, t.Stored, t.Lost, t.Duplicated, t.Expected, t.Once, t.Never, t.Refused, t.Twice,
		t.DupPings, t.OverLimit, t.IssuesPaged, t.Issues, t.DupPages, t.Crashes)
}

// markdown writes the results: one row per scenario summed over its
// repeats, then one row per run with what was done.
func markdown(w io.Writer, meta reportMeta, rs []result) {
	fmt.Fprintf(w, "Command: `%s`  \n", meta.Command)
	fmt.Fprintf(w, "Date: %s  \nCommit: %s  \nLoad average (1, 5, 15 min) at the start and the end: %s  \nMachine: %s  \n", meta.Date, meta.Commit, meta.LoadAvg, meta.Machine)
	fmt.Fprintf(w, "Settings: %s\n\n", meta.Settings)
	names, groups := byScenario(rs)
	io.WriteString(w, tableHeader)
	for _, n := range names {
		row(w, n, len(groups[n]), totals(groups[n]))
	}
	if len(names) > 1 {
		row(w, "**all**", len(rs), totals(rs))
	}
	fmt.Fprintf(w, "\n<details><summary>Each run</summary>\n\n")
	io.WriteString(w, strings.Replace(tableHeader, "| runs |", "| run |", 1))
	for _, r := range rs {
		row(w, r.Scenario, r.Run, r)
	}
	fmt.Fprintf(w, "\nWhat each run did:\n\n")
	for _, r := range rs {
		fmt.Fprintf(w, "- run %d, %s (repeat %d): %s\n", r.Run, r.Scenario, r.Repeat, r.Fault)
	}
	fmt.Fprintf(w, "\n</details>\n")
}

// failures lists what the runs broke of what is required: "messages"
// (nothing lost or duplicated, every Sentry issue stored) and
// "notified" (every conversation notified exactly once, no duplicate
// ping, nothing over Slack's limits, every issue paged once).
func failures(rs []result, require map[string]bool) []string {
	var out []string
	for _, r := range rs {
		at := fmt.Sprintf("run %d (%s)", r.Run, r.Scenario)
		if require["messages"] {
			if r.Lost > 0 {
				out = append(out, fmt.Sprintf("%s: %d accepted messages lost", at, r.Lost))
			}
			if r.Duplicated > 0 {
				out = append(out, fmt.Sprintf("%s: %d messages stored twice", at, r.Duplicated))
			}
			if r.IssuesStored < r.Issues {
				out = append(out, fmt.Sprintf("%s: %d of %d Sentry issues not stored", at, r.Issues-r.IssuesStored, r.Issues))
			}
		}
		if require["notified"] {
			if r.Never > 0 || r.Twice > 0 {
				out = append(out, fmt.Sprintf("%s: of %d conversations to notify, %d never notified, %d notified more than once", at, r.Expected, r.Never, r.Twice))
			}
			if r.DupPings > 0 {
				out = append(out, fmt.Sprintf("%s: %d duplicate pings", at, r.DupPings))
			}
			if r.OverLimit > 0 {
				out = append(out, fmt.Sprintf("%s: %d posts over Slack's limits", at, r.OverLimit))
			}
			if r.IssuesPaged < r.Issues || r.DupPages > 0 {
				out = append(out, fmt.Sprintf("%s: %d of %d Sentry issues paged, %d duplicate pages", at, r.IssuesPaged, r.Issues, r.DupPages))
			}
		}
	}
	return out
}
