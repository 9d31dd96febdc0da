package cli

import (
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

func TestParseDollars(t *testing.T) {
	good := map[string]int64{
		"0": 0, "499": 49900, "1234.5": 123450, "1234.50": 123450, "$1,234.50": 123450,
		" 12000 ": 1200000, "0.01": 1, "1,000,000": 100000000, "$7": 700,
	}
	for in, want := range good {
		if got, err := parseDollars(in); err != nil || got != want {
			t.Errorf("parseDollars(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-5", "12.345", "1,23", "12,3456", "1e3", "abc", "$", "12.", ".5", "99999999999999"} {
		if got, err := parseDollars(in); err == nil {
			t.Errorf("parseDollars(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseCustomersCSV(t *testing.T) {
	csvFile := "\xef\xbb\xbfid,name,organisation,plan,monthly_revenue,in_sales_process,email_domains,slack_user_ids,github_logins,sentry_users\n" +
		"acme,Acme,Acme Inc,enterprise,\"$12,000\",false,acme.com; acme.io,U1;U2,acme-bot,\n" +
		"\n" +
		"globex, Globex ,,cloud,499.5,TRUE,globex.com,,,sentry-7\n"
	got, err := parseCustomers("csv", []byte(csvFile))
	if err != nil {
		t.Fatal(err)
	}
	want := []*triagev1.Customer{
		{Id: "acme", Name: "Acme", Organisation: "Acme Inc", Plan: "enterprise", MonthlyRevenueCents: 1200000,
			EmailDomains: []string{"acme.com", "acme.io"}, SlackUserIds: []string{"U1", "U2"}, GithubLogins: []string{"acme-bot"}},
		{Id: "globex", Name: "Globex", Plan: "cloud", MonthlyRevenueCents: 49950, InSalesProcess: true,
			EmailDomains: []string{"globex.com"}, SentryUsers: []string{"sentry-7"}},
	}
	equalCustomers(t, got, want)

	// Columns in any order; only id is required.
	got, err = parseCustomers("csv", []byte("plan,ID\r\nscale,initech\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	equalCustomers(t, got, []*triagev1.Customer{{Id: "initech", Plan: "scale"}})
}

func TestParseCustomersJSON(t *testing.T) {
	jsonFile := `[
  {"id": "acme", "name": "Acme", "organisation": "Acme Inc", "plan": "enterprise",
   "monthly_revenue": 12000, "in_sales_process": false,
   "email_domains": ["acme.com", " acme.io "], "slack_user_ids": "U1;U2", "github_logins": ["acme-bot"]},
  {"id": "globex", "plan": "cloud", "monthly_revenue": "$499.50", "in_sales_process": true},
  {"id": "initech", "monthly_revenue_cents": "1999", "tier": "TIER_SUBSCRIBER", "tier_reason": "paying $19.99/month"}
]`
	got, err := parseCustomers("json", []byte(jsonFile))
	if err != nil {
		t.Fatal(err)
	}
	equalCustomers(t, got, []*triagev1.Customer{
		{Id: "acme", Name: "Acme", Organisation: "Acme Inc", Plan: "enterprise", MonthlyRevenueCents: 1200000,
			EmailDomains: []string{"acme.com", "acme.io"}, SlackUserIds: []string{"U1", "U2"}, GithubLogins: []string{"acme-bot"}},
		{Id: "globex", Plan: "cloud", MonthlyRevenueCents: 49950, InSalesProcess: true},
		{Id: "initech", MonthlyRevenueCents: 1999},
	})
}

// Every bad row is reported, with its line, and nothing is returned.
func TestParseCustomersBadRows(t *testing.T) {
	tests := []struct {
		name   string
		format string
		file   string
		want   []rowError
	}{
		{
			name: "csv values", format: "csv",
			file: "id,name,monthly_revenue,in_sales_process\n" +
				"acme,Acme,12000,false\n" +
				",Nameless,10,false\n" +
				"globex,Globex,12.345,maybe\n" +
				"acme,Acme again,1,true\n" +
				"initech,Initech,1\n" +
				"hooli,\"Hooli\nMultiline\",-3,false\n",
			want: []rowError{
				{3, "id is empty"},
				{4, `monthly_revenue: "12.345" is not an amount of dollars like 499 or 1234.50; in_sales_process: "maybe" is not true or false`},
				{5, "customer acme is listed twice (first on line 2)"},
				{6, "3 fields, the header has 4"},
				{7, `monthly_revenue: "-3" is not an amount of dollars like 499 or 1234.50`},
			},
		},
		{
			name: "csv header", format: "csv",
			file: "id,nmae,plan,plan\nacme,Acme,cloud,cloud\n",
			want: []rowError{
				{1, `unknown column "nmae" (columns: id, name, organisation, plan, monthly_revenue, in_sales_process, email_domains, slack_user_ids, github_logins, sentry_users)`},
				{1, `column "plan" appears twice`},
			},
		},
		{
			name: "csv without id column", format: "csv",
			file: "name,plan\nAcme,cloud\n",
			want: []rowError{{1, "no id column"}},
		},
		{
			name: "csv quoting", format: "csv",
			file: "id,name\nacme,Acme\nglobex,\"Glo\"bex\"\n",
			want: []rowError{{3, `extraneous or missing " in quoted-field`}},
		},
		{
			name: "json values", format: "json",
			file: `[
  {"id": "acme", "monthly_revenue": 100},
  {"id": "globex", "monthly_revenue": -1},
  {"id": "initech", "plna": "cloud"},
  {"id": "hooli", "in_sales_process": "yes"},
  {"name": "No id"},
  "acme",
  {"id": "acme"},
  {"id": "umbrella", "monthly_revenue": 5, "monthly_revenue_cents": 500},
  {"id": "wayne", "email_domains": 42}
]`,
			want: []rowError{
				{3, `monthly_revenue: "-1" is not an amount of dollars like 499 or 1234.50`},
				{4, `unknown field "plna"`},
				{5, "in_sales_process: want bool, got string"},
				{6, "id is empty"},
				{7, "want a customer object, got string"},
				{8, "customer acme is listed twice (first on line 2)"},
				{9, "give monthly_revenue or monthly_revenue_cents, not both"},
				{10, "want an array of strings or a ';'-separated string"},
			},
		},
		{
			name: "json syntax", format: "json",
			file: "[\n  {\"id\": \"acme\"},\n  {\"id\": \"globex\",,}\n]",
			want: []rowError{{3, `bad JSON: invalid character ',' looking for beginning of object key string`}},
		},
		{
			name: "json not an array", format: "json",
			file: "\n{\"id\": \"acme\"}",
			want: []rowError{{2, "want a JSON array of customer objects"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCustomers(tc.format, []byte(tc.file))
			var bad rowErrors
			if !errors.As(err, &bad) {
				t.Fatalf("got %d customers, error %v; want row errors", len(got), err)
			}
			if got != nil {
				t.Fatalf("a file with bad rows returned %d customers", len(got))
			}
			if len(bad) != len(tc.want) {
				t.Fatalf("errors:\n%v\nwant %d of them", bad, len(tc.want))
			}
			for i := range bad {
				if bad[i] != tc.want[i] {
					t.Errorf("error %d: %+v\n want %+v", i, bad[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseCustomersEmpty(t *testing.T) {
	for format, file := range map[string]string{"csv": "", "json": "[]"} {
		if _, err := parseCustomers(format, []byte(file)); err == nil {
			t.Errorf("%s %q: no error", format, file)
		}
	}
	if _, err := parseCustomers("csv", []byte("id,name\n")); err == nil || !strings.Contains(err.Error(), "no customers") {
		t.Errorf("header only: %v", err)
	}
}

func TestCustomerFormat(t *testing.T) {
	tests := []struct{ name, flag, data, want string }{
		{"customers.csv", "", "[", "csv"},
		{"customers.JSON", "", "id", "json"},
		{"-", "", "  \n[{}]", "json"},
		{"-", "", "id,name", "csv"},
		{"export.txt", "json", "", "json"},
	}
	for _, tc := range tests {
		if got, err := customerFormat(tc.name, tc.flag, []byte(tc.data)); err != nil || got != tc.want {
			t.Errorf("customerFormat(%q, %q) = %q, %v; want %q", tc.name, tc.flag, got, err, tc.want)
		}
	}
	if _, err := customerFormat("x", "xml", nil); err == nil {
		t.Error("--format xml accepted")
	}
}

func equalCustomers(t *testing.T, got, want []*triagev1.Customer) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d customers, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("customer %d:\n got  %s\n want %s", i, prototext.Format(got[i]), prototext.Format(want[i]))
		}
	}
}
