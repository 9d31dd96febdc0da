package policy_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

var metricName = regexp.MustCompile(`\b(?:sidekick|nats)_[a-z0-9_]+\b`)

// TestMetricsDocumented: every metric the alerts and the dashboard query is
// in the metrics table of docs/operations.md, which service authors match,
// and every alert's runbook_url points at a heading of that guide.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := regexp.MustCompile("^\\| `((?:sidekick|nats)_[a-z0-9_]+)`").FindStringSubmatch(line); m != nil {
			table[m[1]] = true
		}
	}
	if len(table) == 0 {
		t.Fatal("docs/operations.md has no metrics table (rows starting with | `sidekick_...`)")
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "#") {
			anchors[anchor(strings.TrimLeft(line, "# "))] = true
		}
	}

	used := map[string]bool{}
	alerts := 0
	for _, o := range render(t, "overlays/production") {
		switch v := o.Obj.(type) {
		case *monitoringv1.PrometheusRule:
			for _, g := range v.Spec.Groups {
				for _, r := range g.Rules {
					for _, m := range metricName.FindAllString(r.Expr.String(), -1) {
						used[m] = true
					}
					if r.Alert == "" {
						continue
					}
					alerts++
					url := r.Annotations["runbook_url"]
					_, frag, ok := strings.Cut(url, "docs/operations.md#")
					if !ok || !anchors[frag] {
						t.Errorf("alert %s: runbook_url %q is not a heading of docs/operations.md", r.Alert, url)
					}
					if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
						t.Errorf("alert %s: needs a severity label and a summary", r.Alert)
					}
				}
			}
		case *corev1.ConfigMap:
			for _, data := range v.Data {
				if strings.Contains(v.Name, "dashboard") {
					for _, m := range metricName.FindAllString(data, -1) {
						used[m] = true
					}
				}
			}
		}
	}
	if alerts < 7 {
		t.Errorf("%d alerts, want the 7 the guide describes", alerts)
	}
	for m := range used {
		// Histogram and counter suffixes belong to their base metric.
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if !table[m] && !table[base] {
			t.Errorf("metric %s is queried but not in the metrics table of docs/operations.md", m)
		}
	}
	var names []string
	for m := range used {
		names = append(names, m)
	}
	slices.Sort(names)
	t.Logf("%d alerts; metrics queried: %v", alerts, names)
}

// TestTargetDownCoversEveryService: SidekickTargetDown watches the job of
// every Service a ServiceMonitor scrapes (the Prometheus Operator names the
// job after the Service), so a new service is not left out of it.
func TestTargetDownCoversEveryService(t *testing.T) {
	objs := render(t, "overlays/production")
	var jobs *regexp.Regexp
	for _, o := range objs {
		if pr, ok := o.Obj.(*monitoringv1.PrometheusRule); ok {
			jobs = alertMatcher(t, pr, "SidekickTargetDown", "job")
		}
	}
	if jobs == nil {
		t.Fatal("no PrometheusRule")
	}
	scraped := 0
	for _, o := range objs {
		sm, ok := o.Obj.(*monitoringv1.ServiceMonitor)
		if !ok {
			continue
		}
		for _, so := range objs {
			svc, ok := so.Obj.(*corev1.Service)
			if !ok || !labels.SelectorFromSet(sm.Spec.Selector.MatchLabels).Matches(labels.Set(svc.Labels)) {
				continue
			}
			scraped++
			if !jobs.MatchString(svc.Name) {
				t.Errorf("%s scrapes Service %s, whose job SidekickTargetDown does not watch (%s)", o.ID(), svc.Name, jobs)
			}
		}
	}
	if scraped == 0 {
		t.Fatal("no ServiceMonitor selects a Service")
	}
}

// TestReleaseLabel: every Prometheus Operator object of the production
// overlays carries the release label (set by one patch in the production
// kustomization), and the NATS chart values put the same label on the
// exporter's PodMonitor; kube-prometheus-stack ignores objects without it.
func TestReleaseLabel(t *testing.T) {
	v := readNATSValues(t)
	want := v.PromExporter.PodMonitor.Merge.Metadata.Labels["release"]
	if want == "" {
		t.Error("deploy/nats/values.yaml: the exporter's PodMonitor has no release label (promExporter.podMonitor.merge.metadata.labels.release)")
	}
	for _, dir := range []string{"overlays/production", "examples/production-cloudnative-pg"} {
		n := 0
		for _, o := range render(t, dir) {
			if !strings.HasPrefix(o.APIVersion, "monitoring.coreos.com/") {
				continue
			}
			n++
			var labels map[string]string
			switch m := o.Obj.(type) {
			case *monitoringv1.ServiceMonitor:
				labels = m.Labels
			case *monitoringv1.PrometheusRule:
				labels = m.Labels
			default:
				t.Fatalf("%s: %s not handled", dir, o.ID())
			}
			if got := labels["release"]; got == "" || got != want {
				t.Errorf("%s: %s has release label %q, the NATS PodMonitor %q: set both (docs/operations.md, Monitoring)", dir, o.ID(), got, want)
			}
		}
		if n < 9 {
			t.Errorf("%s: %d monitoring objects, want the 8 ServiceMonitors and the PrometheusRule", dir, n)
		}
	}
}

// alertMatcher returns, anchored, the regular expression the named alert
// matches label against (label=~"..." in its expression).
func alertMatcher(t *testing.T, pr *monitoringv1.PrometheusRule, alert, label string) *regexp.Regexp {
	t.Helper()
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != alert {
				continue
			}
			m := regexp.MustCompile(label + `=~"([^"]+)"`).FindStringSubmatch(r.Expr.String())
			if m == nil {
				t.Fatalf("%s: no %s=~\"...\" in %s", alert, label, r.Expr.String())
			}
			return regexp.MustCompile("^(?:" + m[1] + ")$")
		}
	}
	t.Fatalf("no alert %s", alert)
	return nil
}

// anchor is GitHub's heading anchor: lower case, spaces to dashes,
// punctuation other than - and _ dropped.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}
