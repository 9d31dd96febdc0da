package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCustomersImport(t *testing.T) {
	h := newHarness(t)
	file := writeFile(t, "customers.csv", "id,name,plan,monthly_revenue,in_sales_process,email_domains\n"+
		"acme,Acme,enterprise,12000,false,acme.com;acme.io\n"+
		"globex,Globex,cloud,499.50,true,\n")
	changes := []string{
		`create customer acme: name="Acme" organisation="" plan="enterprise" revenue=$12,000/month in_sales_process=false email_domains=[acme.com acme.io] slack=[] github=[] sentry=[]; tier priority (plan enterprise)`,
		`update customer globex: plan "free" -> "cloud"; tier community -> subscriber (paying $499.50/month)`,
	}
	wantReq := &triagev1.UpsertCustomersRequest{DryRun: true, Customers: []*triagev1.Customer{
		{Id: "acme", Name: "Acme", Plan: "enterprise", MonthlyRevenueCents: 1200000, EmailDomains: []string{"acme.com", "acme.io"}},
		{Id: "globex", Name: "Globex", Plan: "cloud", MonthlyRevenueCents: 49950, InSalesProcess: true},
	}}

	h.respond("UpsertCustomers", &triagev1.UpsertCustomersResponse{Changes: changes})
	out, err := h.run(t, "customers", "import", file, "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "UpsertCustomers", wantReq)
	if want := changes[0] + "\n" + changes[1] + "\ndry run: 2 change(s) among 2 customers, nothing applied\n"; out != want {
		t.Fatalf("dry run printed:\n%s\nwant:\n%s", out, want)
	}

	h.respond("UpsertCustomers", &triagev1.UpsertCustomersResponse{Changes: changes, Applied: true})
	out, err = h.run(t, "customers", "import", file)
	if err != nil {
		t.Fatal(err)
	}
	wantReq.DryRun = false
	h.want(t, "UpsertCustomers", wantReq)
	if !strings.HasSuffix(out, "\napplied 2 change(s) among 2 customers\n") {
		t.Fatalf("import printed:\n%s", out)
	}

	h.respond("UpsertCustomers", &triagev1.UpsertCustomersResponse{Applied: true})
	if out, err = h.run(t, "customers", "import", file); err != nil || out != "no changes (2 customers read)\n" {
		t.Fatalf("second import: %v %q", err, out)
	}

	// JSON from standard input, and --json output.
	h.respond("UpsertCustomers", &triagev1.UpsertCustomersResponse{Changes: changes[:1], Applied: true})
	out, err = runEnv(t, h.env, `[{"id": "acme", "plan": "enterprise", "monthly_revenue": 12000}]`, "customers", "import", "-", "--json")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "UpsertCustomers", &triagev1.UpsertCustomersRequest{Customers: []*triagev1.Customer{{Id: "acme", Plan: "enterprise", MonthlyRevenueCents: 1200000}}})
	var resp triagev1.UpsertCustomersResponse
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil || !resp.GetApplied() || len(resp.GetChanges()) != 1 {
		t.Fatalf("--json: %v\n%s", err, out)
	}
}

func TestCustomersImportBadFileSendsNothing(t *testing.T) {
	h := newHarness(t)
	file := writeFile(t, "customers.csv", "id,plan,monthly_revenue\nacme,cloud,12.345\n,cloud,1\n")
	_, err := h.run(t, "customers", "import", file)
	want := file + ": 2 bad row(s), nothing imported:\n" +
		`line 2: monthly_revenue: "12.345" is not an amount of dollars like 499 or 1234.50` + "\n" +
		"line 3: id is empty"
	if err == nil || err.Error() != want {
		t.Fatalf("error:\n%v\nwant:\n%s", err, want)
	}
	if n := h.total(); n != 0 {
		t.Fatalf("%d request(s) sent for a bad file", n)
	}
	if _, err := h.run(t, "customers", "import", filepath.Join(t.TempDir(), "missing.csv")); err == nil || !strings.Contains(err.Error(), "missing.csv") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestCustomersShow(t *testing.T) {
	h := newHarness(t)
	c := &triagev1.Customer{
		Id: "acme", Name: "Acme", Organisation: "Acme Inc", Plan: "enterprise", MonthlyRevenueCents: 1200050,
		InSalesProcess: true, EmailDomains: []string{"acme.com", "acme.io"}, GithubLogins: []string{"acme-bot"},
		Tier: supportv1.Tier_TIER_PRIORITY, TierReason: "plan enterprise",
	}
	h.respond("GetCustomer", &triagev1.GetCustomerResponse{Customer: c})
	out, err := h.run(t, "customers", "show", "acme")
	if err != nil {
		t.Fatal(err)
	}
	h.want(t, "GetCustomer", &triagev1.GetCustomerRequest{Id: "acme"})
	want := `ID                acme
Name              Acme
Organisation      Acme Inc
Plan              enterprise
Monthly revenue   $12,000.50
In sales process  true
Tier              priority (plan enterprise)
Email domains     acme.com, acme.io
Slack users       -
GitHub logins     acme-bot
Sentry users      -
`
	if out != want {
		t.Fatalf("show:\n%s\nwant:\n%s", out, want)
	}

	// What show --json prints imports again unchanged.
	out, err = h.run(t, "customers", "show", "acme", "--json")
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseCustomers("json", []byte("["+out+"]"))
	if err != nil {
		t.Fatal(err)
	}
	in := proto.Clone(c).(*triagev1.Customer)
	in.Tier, in.TierReason = 0, ""
	equalCustomers(t, back, []*triagev1.Customer{in})
}
