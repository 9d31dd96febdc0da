package policy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"
)

const alertTests = "../kubernetes/components/monitoring/tests"

// promtool finds promtool: $PROMTOOL, bin/promtool at the repository root
// (scripts/ensure-promtool.sh puts it there; make test runs that), or the
// PATH. Without one the alert tests cannot run: that fails the test, except
// under -short, where it skips.
func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../../bin/promtool"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if testing.Short() {
		t.Skip("no promtool: run scripts/ensure-promtool.sh or set PROMTOOL")
	}
	t.Fatal("no promtool: run scripts/ensure-promtool.sh (make test does) or set PROMTOOL")
	return ""
}

// alertRules is the PrometheusRule of an overlay, as rendered.
func alertRules(t *testing.T, dir string) *monitoringv1.PrometheusRule {
	t.Helper()
	var found *monitoringv1.PrometheusRule
	for _, o := range render(t, dir) {
		if pr, ok := o.Obj.(*monitoringv1.PrometheusRule); ok {
			if found != nil {
				t.Fatalf("%s renders two PrometheusRules", dir)
			}
			found = pr
		}
	}
	if found == nil {
		t.Fatalf("%s renders no PrometheusRule", dir)
	}
	return found
}

// TestAlertRulesUnitTests runs promtool on the rules as the production
// overlay renders them: `promtool check rules`, then the unit tests in
// components/monitoring/tests, and requires every alert to fire in at
// least one of them.
func TestAlertRulesUnitTests(t *testing.T) {
	tool := promtool(t)
	pr := alertRules(t, "overlays/production")
	rules, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(alertTests, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no alert tests in %s (%v)", alertTests, err)
	}
	fired := map[string]bool{}
	var tests []string
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var suite struct {
			RuleFiles []string `json:"rule_files"`
			Tests     []struct {
				AlertRuleTest []struct {
					AlertName string `json:"alertname"`
					ExpAlerts []any  `json:"exp_alerts"`
				} `json:"alert_rule_test"`
			} `json:"tests"`
		}
		if err := yaml.Unmarshal(raw, &suite); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !slices.Equal(suite.RuleFiles, []string{"rules.yaml"}) {
			t.Errorf("%s: rule_files %v, want [rules.yaml] (the rendered rules)", f, suite.RuleFiles)
		}
		for _, tc := range suite.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fired[a.AlertName] = true
				}
			}
		}
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(dst, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, dst)
	}

	alerts := 0
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			if !fired[r.Alert] {
				t.Errorf("alert %s fires in no test of %s", r.Alert, alertTests)
			}
		}
	}
	t.Logf("%d alerts", alerts)

	run := func(args ...string) {
		cmd := exec.Command(tool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
	}
	run("check", "rules", "rules.yaml")
	run(append([]string{"test", "rules"}, tests...)...)
}

// TestConsumerLagCoversEveryStream: SidekickConsumerLag's stream matcher
// matches every JetStream stream the code declares (a constant named
// Stream… or …Stream), so a new stream's consumers are watched too.
func TestConsumerLagCoversEveryStream(t *testing.T) {
	streams := codeStreams(t)
	matcher := alertMatcher(t, alertRules(t, "overlays/production"), "SidekickConsumerLag", "stream_name")
	for _, s := range streams {
		if !matcher.MatchString(s) {
			t.Errorf("stream %s is not watched by SidekickConsumerLag (%s)", s, matcher)
		}
	}
	t.Logf("streams in the code: %v", streams)
}

// codeStreams are the JetStream streams the code declares: the values of
// constants named Stream… or …Stream in platform/ and services/.
func codeStreams(t *testing.T) []string {
	t.Helper()
	decl := regexp.MustCompile(`(?m)^\s*(?:const\s+)?\w*Stream\w*\s*=\s*"([A-Z][A-Z0-9_]*)"`)
	var streams []string
	for _, root := range []string{"../../platform", "../../services"} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range decl.FindAllSubmatch(src, -1) {
				streams = append(streams, string(m[1]))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Contains(streams, "SUPPORT_INBOUND") || !slices.Contains(streams, "SENTRY_OCCURRENCES") {
		t.Fatalf("streams found in the code: %v; the declaration pattern no longer matches", streams)
	}
	return streams
}

// TestProductionStreamLimits: production gives every SUPPORT_* stream a
// byte limit, and the limits (with SENTRY_OCCURRENCES' own 1GiB default)
// fit in the JetStream storage of each NATS server, which holds every
// three-replica stream, with room to spare.
func TestProductionStreamLimits(t *testing.T) {
	var env map[string]string
	for _, o := range render(t, "overlays/production") {
		if cm, ok := o.Obj.(*corev1.ConfigMap); ok && strings.HasPrefix(cm.Name, "sidekick-env") {
			env = cm.Data
		}
	}
	limits := env["SIDEKICK_STREAM_MAX_BYTES"]
	byStream := map[string]int64{}
	item := regexp.MustCompile(`^([A-Z_]+)=(\d+)(KiB|MiB|GiB|TiB)?$`)
	for _, kv := range strings.Split(limits, ",") {
		m := item.FindStringSubmatch(strings.TrimSpace(kv))
		if m == nil {
			t.Fatalf("SIDEKICK_STREAM_MAX_BYTES %q: cannot read %q", limits, kv)
		}
		n, err := strconv.ParseInt(m[2], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		byStream[m[1]] = n << map[string]int{"": 0, "KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[3]]
	}
	// Besides the SUPPORT_* streams, ingest-sentry's stream,
	// ingest-email's object store of large content and the three reply
	// ledgers (platform/outbound) take their share, as production sets
	// them or else by the code's default.
	budget := map[string]int64{}
	for name, variable := range map[string]string{
		"SENTRY_OCCURRENCES":      "SIDEKICK_SENTRY_OCCURRENCE_MAX_BYTES",
		"SUPPORT_INBOUND_CONTENT": "SIDEKICK_EMAIL_CONTENT_MAX_BYTES",
		"KV_OUTBOUND_SLACK":       "SIDEKICK_OUTBOUND_LEDGER_MAX_BYTES",
		"KV_OUTBOUND_EMAIL":       "SIDEKICK_OUTBOUND_LEDGER_MAX_BYTES",
		"KV_OUTBOUND_GITHUB":      "SIDEKICK_OUTBOUND_LEDGER_MAX_BYTES",
	} {
		v, ok := env[variable]
		if !ok {
			v = codeDefault(t, variable)
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			t.Errorf("%s %q: want a byte limit, or %s is unbounded", variable, v, name)
		}
		budget[name] = n
	}
	var total int64
	for _, n := range budget {
		total += n
	}
	for _, s := range codeStreams(t) {
		if !strings.HasPrefix(s, "SUPPORT_") {
			continue
		}
		if byStream[s] <= 0 {
			t.Errorf("production gives %s no byte limit (SIDEKICK_STREAM_MAX_BYTES)", s)
		}
		total += byStream[s]
	}
	store := resource.MustParse(readNATSValues(t).Config.JetStream.FileStore.PVC.Size)
	if total > store.Value()*8/10 {
		t.Errorf("stream limits add up to %d bytes, more than 80%% of the %s each NATS server stores", total, store.String())
	}
	t.Logf("stream limits: %v, and %v: %.1f GiB in all of %s", byStream, budget, float64(total)/(1<<30), store.String())
}

// codeDefault is the envDefault of the configuration field read from
// variable, as the services' code declares it.
func codeDefault(t *testing.T, variable string) string {
	t.Helper()
	tag := regexp.MustCompile(`env:"` + variable + `"\s+envDefault:"([^"]*)"`)
	var found string
	walk := func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if m := tag.FindSubmatch(src); m != nil {
			found = string(m[1])
		}
		return nil
	}
	err := filepath.WalkDir("../../services", walk)
	if err == nil {
		// Settings every service shares (platform/app.Common).
		err = filepath.WalkDir("../../platform/app", walk)
	}
	if err != nil || found == "" {
		t.Fatalf("no envDefault for %s in services/ or platform/app (%v)", variable, err)
	}
	return found
}
