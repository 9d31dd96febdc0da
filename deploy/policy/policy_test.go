package policy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sidekickhq/sidekick/deploy/policy"
)

const kube = "../kubernetes"

// productionExternal are the Secrets the production overlay references but
// does not create; docs/operations.md lists each one.
var productionExternal = []string{
	"sidekick-grpc", "sidekick-console", "sidekick-slack", "sidekick-email", "sidekick-github",
	"sidekick-sentry", "sidekick-smtp", "sidekick-db-triage", "sidekick-db-rotation",
	"sidekick-db-notifier", "sidekick-ingest-tls",
	// NATS: the admin user's seed (provision steps, the CLI Job), each
	// service's own, the CA of the NATS servers' certificate
	"sidekick-nats-admin", "sidekick-nats-tls",
	"sidekick-nats-ingest-slack", "sidekick-nats-ingest-email", "sidekick-nats-ingest-github", "sidekick-nats-ingest-sentry",
	"sidekick-nats-triage", "sidekick-nats-rotation", "sidekick-nats-notifier", "sidekick-nats-console",
	// optional references
	"sidekick-sentry-dsn", "sidekick-pagerduty", "sidekick-webhook",
}

// cnpgExternal are the extra Secrets of the CloudNativePG example: the
// roles' passwords and the backup bucket's credentials (made by the
// operators) and the cluster CA (made by the CloudNativePG operator).
var cnpgExternal = []string{"sidekick-pg-triage", "sidekick-pg-rotation", "sidekick-pg-notifier", "sidekick-pg-ca", "sidekick-pg-backup-s3"}

type overlay struct {
	dir string
	opt policy.Options
}

func overlays() []overlay {
	prod := policy.Options{ExternalSecrets: productionExternal, NetworkPolicies: true, IngressNamespace: "ingress-nginx"}
	cnpg := prod
	cnpg.ExternalSecrets = slices.Concat(productionExternal, cnpgExternal)
	return []overlay{
		{dir: "overlays/dev"},
		{dir: "overlays/production", opt: prod},
		{dir: "examples/production-cloudnative-pg", opt: cnpg},
	}
}

func render(t *testing.T, dir string) []policy.Object {
	t.Helper()
	docs, err := policy.Render(filepath.Join(kube, dir))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := policy.Decode(docs)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestEveryOverlayDirectoryIsChecked keeps the table above complete: a new
// overlay or example must be added to it.
func TestEveryOverlayDirectoryIsChecked(t *testing.T) {
	var found []string
	for _, parent := range []string{"overlays", "examples"} {
		entries, err := os.ReadDir(filepath.Join(kube, parent))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			found = append(found, parent+"/"+e.Name())
		}
	}
	var listed []string
	for _, o := range overlays() {
		listed = append(listed, o.dir)
	}
	slices.Sort(found)
	slices.Sort(listed)
	if !slices.Equal(found, listed) {
		t.Fatalf("overlay directories %v, checked %v", found, listed)
	}
}

func TestOverlaysPassPolicy(t *testing.T) {
	for _, o := range overlays() {
		t.Run(o.dir, func(t *testing.T) {
			objs := render(t, o.dir)
			for _, v := range policy.Check(objs, o.opt) {
				t.Error(v)
			}
			kinds := map[string]int{}
			for _, obj := range objs {
				kinds[obj.Kind]++
			}
			t.Logf("%d objects: %v", len(objs), kinds)
			if kinds["Deployment"] < 8 {
				t.Errorf("%d Deployments, want the 7 services and the console", kinds["Deployment"])
			}
		})
	}
}

func TestProductionShape(t *testing.T) {
	objs := render(t, "overlays/production")
	count := map[string]int{}
	for _, o := range objs {
		count[o.Kind]++
		if o.Namespace != "sidekick" && o.Kind != "Namespace" {
			t.Errorf("%s in namespace %q, want sidekick", o.ID(), o.Namespace)
		}
		if cm, ok := o.Obj.(*corev1.ConfigMap); ok && strings.HasPrefix(cm.Name, "sidekick-env") {
			if got := cm.Data["SIDEKICK_STREAM_REPLICAS"]; got != "3" {
				t.Errorf("SIDEKICK_STREAM_REPLICAS = %q in production, want 3", got)
			}
		}
		if s, ok := o.Obj.(*corev1.Secret); ok {
			t.Errorf("production overlay creates Secret %s: production Secrets come from outside", s.Name)
		}
	}
	// The 7 services and the console; rotation and the console have a fixed
	// replica count, the others an autoscaler.
	want := map[string]int{"Deployment": 8, "Service": 8, "ServiceAccount": 8, "HorizontalPodAutoscaler": 6,
		"PodDisruptionBudget": 8, "ServiceMonitor": 8, "PrometheusRule": 1, "Ingress": 1}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %s objects, want %d", count[k], k, n)
		}
	}
}

// TestPolicyCatchesBrokenRules breaks one rule at a time in a rendered
// production overlay and expects Check to name it: the policy test must
// fail for real.
func TestPolicyCatchesBrokenRules(t *testing.T) {
	docs, err := policy.Render(filepath.Join(kube, "overlays/production"))
	if err != nil {
		t.Fatal(err)
	}
	opt := overlays()[1].opt
	deploy := func(objs []policy.Object, name string) *appsv1.Deployment {
		for _, o := range objs {
			if d, ok := o.Obj.(*appsv1.Deployment); ok && d.Name == name {
				return d
			}
		}
		t.Fatalf("no Deployment %s", name)
		return nil
	}
	drop := func(objs []policy.Object, kind, name string) []policy.Object {
		return slices.DeleteFunc(objs, func(o policy.Object) bool { return o.Kind == kind && o.Name == name })
	}
	env := func(objs []policy.Object, deployment, name string) *corev1.EnvVar {
		c := &deploy(objs, deployment).Spec.Template.Spec.Containers[0]
		for i := range c.Env {
			if c.Env[i].Name == name {
				return &c.Env[i]
			}
		}
		t.Fatalf("Deployment %s has no %s", deployment, name)
		return nil
	}
	netpol := func(objs []policy.Object, name string) *networkingv1.NetworkPolicy {
		for _, o := range objs {
			if p, ok := o.Obj.(*networkingv1.NetworkPolicy); ok && p.Name == name {
				return p
			}
		}
		t.Fatalf("no NetworkPolicy %s", name)
		return nil
	}
	ingressPath := func(objs []policy.Object, service string) *networkingv1.HTTPIngressPath {
		for _, o := range objs {
			if ing, ok := o.Obj.(*networkingv1.Ingress); ok {
				for _, r := range ing.Spec.Rules {
					for i, p := range r.HTTP.Paths {
						if p.Backend.Service != nil && p.Backend.Service.Name == service {
							return &r.HTTP.Paths[i]
						}
					}
				}
			}
		}
		t.Fatalf("no Ingress path to %s", service)
		return nil
	}
	cases := []struct {
		name   string
		rule   string
		object string
		mutate func([]policy.Object) []policy.Object
	}{
		{"readiness probe removed", policy.RuleProbes, "Deployment/triage", func(o []policy.Object) []policy.Object {
			deploy(o, "triage").Spec.Template.Spec.Containers[0].ReadinessProbe = nil
			return o
		}},
		{"gRPC service probed over HTTP", policy.RuleProbes, "Deployment/rotation", func(o []policy.Object) []policy.Object {
			c := &deploy(o, "rotation").Spec.Template.Spec.Containers[0]
			c.LivenessProbe.GRPC = nil
			c.LivenessProbe.HTTPGet = &corev1.HTTPGetAction{Path: "/healthz"}
			return o
		}},
		{"gRPC readiness probe on the liveness status", policy.RuleProbes, "Deployment/notifier", func(o []policy.Object) []policy.Object {
			deploy(o, "notifier").Spec.Template.Spec.Containers[0].ReadinessProbe.GRPC.Service = nil
			return o
		}},
		{"HTTP service readiness on /healthz", policy.RuleProbes, "Deployment/ingest-github", func(o []policy.Object) []policy.Object {
			deploy(o, "ingest-github").Spec.Template.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/healthz"
			return o
		}},
		{"memory limit removed", policy.RuleResources, "Deployment/notifier", func(o []policy.Object) []policy.Object {
			delete(deploy(o, "notifier").Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
			return o
		}},
		{"init container without resources", policy.RuleResources, "Deployment/triage", func(o []policy.Object) []policy.Object {
			deploy(o, "triage").Spec.Template.Spec.InitContainers[0].Resources = corev1.ResourceRequirements{}
			return o
		}},
		{"writable root filesystem", policy.RuleSecurity, "Deployment/ingest-slack", func(o []policy.Object) []policy.Object {
			f := false
			deploy(o, "ingest-slack").Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
			return o
		}},
		{"capabilities not dropped", policy.RuleSecurity, "Deployment/ingest-email", func(o []policy.Object) []policy.Object {
			deploy(o, "ingest-email").Spec.Template.Spec.Containers[0].SecurityContext.Capabilities = nil
			return o
		}},
		{"runs as root", policy.RuleSecurity, "Deployment/rotation", func(o []policy.Object) []policy.Object {
			f, root := false, int64(0)
			d := deploy(o, "rotation")
			d.Spec.Template.Spec.SecurityContext.RunAsNonRoot = &f
			d.Spec.Template.Spec.SecurityContext.RunAsUser = &root
			return o
		}},
		{"no seccomp profile", policy.RuleSecurity, "Deployment/ingest-sentry", func(o []policy.Object) []policy.Object {
			deploy(o, "ingest-sentry").Spec.Template.Spec.SecurityContext.SeccompProfile = nil
			return o
		}},
		{"image tag latest", policy.RuleImage, "Deployment/triage", func(o []policy.Object) []policy.Object {
			deploy(o, "triage").Spec.Template.Spec.Containers[0].Image = "ghcr.io/sidekickhq/sidekick/triage:latest"
			return o
		}},
		{"image without tag", policy.RuleImage, "Deployment/notifier", func(o []policy.Object) []policy.Object {
			deploy(o, "notifier").Spec.Template.Spec.InitContainers[0].Image = "ghcr.io/sidekickhq/sidekick/notifier"
			return o
		}},
		{"grace period not above drain", policy.RuleGracePeriod, "Deployment/ingest-slack", func(o []policy.Object) []policy.Object {
			g := int64(20)
			deploy(o, "ingest-slack").Spec.Template.Spec.TerminationGracePeriodSeconds = &g
			return o
		}},
		{"migration init container removed", policy.RuleMigration, "Deployment/rotation", func(o []policy.Object) []policy.Object {
			deploy(o, "rotation").Spec.Template.Spec.InitContainers = nil
			return o
		}},
		{"PDB of a multi-replica Deployment removed", policy.RuleDisruption, "Deployment/rotation", func(o []policy.Object) []policy.Object {
			return drop(o, "PodDisruptionBudget", "rotation")
		}},
		{"HPA-scaled Deployment loses its PDB", policy.RuleDisruption, "Deployment/triage", func(o []policy.Object) []policy.Object {
			return drop(o, "PodDisruptionBudget", "triage")
		}},
		{"topology spread removed", policy.RuleTopologySpread, "Deployment/notifier", func(o []policy.Object) []policy.Object {
			deploy(o, "notifier").Spec.Template.Spec.TopologySpreadConstraints = nil
			return o
		}},
		{"Secret reference misspelt", policy.RuleReference, "Deployment/ingest-github", func(o []policy.Object) []policy.Object {
			deploy(o, "ingest-github").Spec.Template.Spec.Containers[0].Env[0].ValueFrom.SecretKeyRef.Name = "sidekick-gihtub"
			return o
		}},
		{"ConfigMap missing", policy.RuleReference, "Deployment/triage", func(o []policy.Object) []policy.Object {
			for _, obj := range o {
				if cm, ok := obj.Obj.(*corev1.ConfigMap); ok && strings.HasPrefix(cm.Name, "sidekick-org") {
					return drop(o, "ConfigMap", cm.Name)
				}
			}
			t.Fatal("no sidekick-org ConfigMap")
			return o
		}},
		{"Service selects nothing", policy.RuleServiceSelector, "Service/notifier", func(o []policy.Object) []policy.Object {
			for _, obj := range o {
				if s, ok := obj.Obj.(*corev1.Service); ok && s.Name == "notifier" {
					s.Spec.Selector = map[string]string{"app.kubernetes.io/name": "notifer"}
				}
			}
			return o
		}},
		{"default deny removed", policy.RuleNetworkPolicy, "NetworkPolicy/*", func(o []policy.Object) []policy.Object {
			return drop(o, "NetworkPolicy", "default-deny")
		}},
		{"notifier loses SMTP egress", policy.RuleNetworkPolicy, "Deployment/notifier", func(o []policy.Object) []policy.Object {
			return drop(o, "NetworkPolicy", "notifier-deliveries")
		}},
		{"ingest-github's 443 only through the optional error reporting", policy.RuleNetworkPolicy, "Deployment/ingest-github", func(o []policy.Object) []policy.Object {
			return drop(o, "NetworkPolicy", "ingest-github-to-github")
		}},
		{"ingest-email cannot reach its SMTP relay", policy.RuleNetworkPolicy, "Deployment/ingest-email", func(o []policy.Object) []policy.Object {
			return drop(o, "NetworkPolicy", "ingest-email-to-smtp")
		}},
		{"triage may send email", policy.RuleNetworkPolicy, "Deployment/triage", func(o []policy.Object) []policy.Object {
			p := netpol(o, "ingest-email-to-smtp")
			p.Spec.PodSelector.MatchLabels = map[string]string{"app.kubernetes.io/part-of": "sidekick"}
			return o
		}},
		{"ingest unreachable from the ingress controller", policy.RuleNetworkPolicy, "Deployment/ingest-slack", func(o []policy.Object) []policy.Object {
			return drop(o, "NetworkPolicy", "ingest-from-ingress")
		}},
		{"console without its token Secret", policy.RuleSecretEnv, "Deployment/console", func(o []policy.Object) []policy.Object {
			c := &deploy(o, "console").Spec.Template.Spec.Containers[0]
			c.Env = slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "SIDEKICK_CONSOLE_TOKEN" })
			return o
		}},
		{"console token from an optional reference", policy.RuleSecretEnv, "Deployment/console", func(o []policy.Object) []policy.Object {
			yes := true
			env(o, "console", "SIDEKICK_CONSOLE_TOKEN").ValueFrom.SecretKeyRef.Optional = &yes
			return o
		}},
		{"gRPC token as a literal", policy.RuleSecretEnv, "Deployment/console", func(o []policy.Object) []policy.Object {
			*env(o, "console", "SIDEKICK_GRPC_TOKEN") = corev1.EnvVar{Name: "SIDEKICK_GRPC_TOKEN", Value: "not-so-secret"}
			return o
		}},
		{"token in the shared ConfigMap", policy.RuleSecretEnv, "Deployment/console", func(o []policy.Object) []policy.Object {
			for _, obj := range o {
				if cm, ok := obj.Obj.(*corev1.ConfigMap); ok && strings.HasPrefix(cm.Name, "sidekick-env") {
					cm.Data["SIDEKICK_CONSOLE_TOKEN"] = "0123456789abcdef"
					return o
				}
			}
			t.Fatal("no sidekick-env ConfigMap")
			return o
		}},
		{"live console kept from NATS", policy.RuleNetworkPolicy, "Deployment/console", func(o []policy.Object) []policy.Object {
			netpol(o, "allow-nats").Spec.PodSelector.MatchExpressions = []metav1.LabelSelectorRequirement{
				{Key: "app.kubernetes.io/name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"console"}}}
			return o
		}},
		{"console without live updates reaches NATS", policy.RuleNetworkPolicy, "Deployment/console", func(o []policy.Object) []policy.Object {
			env(o, "console", "SIDEKICK_CONSOLE_LIVE").Value = "false"
			return o
		}},
		{"console labelled a gRPC client reaches notifier", policy.RuleNetworkPolicy, "Deployment/console", func(o []policy.Object) []policy.Object {
			deploy(o, "console").Spec.Template.Labels["sidekick.io/grpc-client"] = "true"
			return o
		}},
		{"triage and rotation do not admit the console", policy.RuleNetworkPolicy, "Deployment/console", func(o []policy.Object) []policy.Object {
			return drop(o, "NetworkPolicy", "console-grpc")
		}},
		{"console unreachable from the ingress controller", policy.RuleNetworkPolicy, "Deployment/console", func(o []policy.Object) []policy.Object {
			return drop(o, "NetworkPolicy", "console-from-ingress")
		}},
		{"console reaches Postgres", policy.RuleNetworkPolicy, "Deployment/console", func(o []policy.Object) []policy.Object {
			e := &netpol(o, "allow-postgres").Spec.PodSelector.MatchExpressions[0]
			e.Values = append(e.Values, "console")
			return o
		}},
		{"share links point elsewhere", policy.RuleConsoleURL, "Deployment/triage", func(o []policy.Object) []policy.Object {
			env(o, "triage", "SIDEKICK_CONSOLE_URL").Value = "https://sidekick.example.org/console"
			return o
		}},
		{"Ingress publishes the console's /metrics", policy.RuleConsoleURL, "Ingress/sidekick-ingest", func(o []policy.Object) []policy.Object {
			ingressPath(o, "console").Path = "/"
			return o
		}},
		{"host port (Pod Security restricted)", policy.RulePodSecurityStandard, "Deployment/ingest-email", func(o []policy.Object) []policy.Object {
			deploy(o, "ingest-email").Spec.Template.Spec.Containers[0].Ports[0].HostPort = 8080
			return o
		}},
		{"custom SELinux type (Pod Security restricted)", policy.RulePodSecurityStandard, "Deployment/notifier", func(o []policy.Object) []policy.Object {
			deploy(o, "notifier").Spec.Template.Spec.SecurityContext.SELinuxOptions = &corev1.SELinuxOptions{Type: "spc_t"}
			return o
		}},
		{"namespace not restricted", policy.RulePodSecurity, "Namespace/sidekick", func(o []policy.Object) []policy.Object {
			for _, obj := range o {
				if ns, ok := obj.Obj.(*corev1.Namespace); ok {
					delete(ns.Labels, "pod-security.kubernetes.io/enforce")
				}
			}
			return o
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := policy.Decode(docs) // fresh copy per case
			if err != nil {
				t.Fatal(err)
			}
			got := policy.Check(tc.mutate(objs), opt)
			for _, v := range got {
				if v.Rule == tc.rule && strings.HasPrefix(v.Object, tc.object) {
					t.Logf("caught: %s", v)
					return
				}
			}
			t.Fatalf("want a %s violation on %s, got %v", tc.rule, tc.object, got)
		})
	}
}

// TestCNPGBackups: the CloudNativePG example archives WAL and takes base
// backups; taking either away, or the deprecated in-tree fields, fails.
func TestCNPGBackups(t *testing.T) {
	docs, err := policy.Render(filepath.Join(kube, "examples/production-cloudnative-pg"))
	if err != nil {
		t.Fatal(err)
	}
	opt := overlays()[2].opt
	cases := map[string]func([]policy.Object) []policy.Object{
		"no WAL archiver": func(o []policy.Object) []policy.Object {
			for _, obj := range o {
				if cl, ok := obj.Obj.(*policy.CNPGCluster); ok {
					cl.Spec.Plugins[0].IsWALArchiver = false
				}
			}
			return o
		},
		"no scheduled backup": func(o []policy.Object) []policy.Object {
			return slices.DeleteFunc(o, func(obj policy.Object) bool { return obj.Kind == "ScheduledBackup" })
		},
		"no object store": func(o []policy.Object) []policy.Object {
			return slices.DeleteFunc(o, func(obj policy.Object) bool { return obj.Kind == "ObjectStore" })
		},
	}
	for name, mutate := range cases {
		objs, err := policy.Decode(docs)
		if err != nil {
			t.Fatal(err)
		}
		if got := policy.Check(mutate(objs), opt); !slices.ContainsFunc(got, func(v policy.Violation) bool { return v.Rule == policy.RuleBackups }) {
			t.Errorf("%s: want a %s violation, got %v", name, policy.RuleBackups, got)
		}
	}
	for _, deprecated := range []string{"spec: {instances: 3, monitoring: {enablePodMonitor: true}}", "spec: {instances: 3, backup: {retentionPolicy: 30d}}"} {
		doc := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: x}\n" + deprecated + "\n"
		if _, err := policy.Decode([][]byte{[]byte(doc)}); err == nil {
			t.Errorf("the deprecated %s decoded without error", deprecated)
		}
	}
}

func TestDecodeIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: x, image: x:1}]}}
`,
		"unknown kind": `apiVersion: example.com/v1
kind: Widget
metadata: {name: x}
`,
		"misspelt CRD field": `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: x}
spec: {instance: 3}
`,
		"duplicate field": `apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {a: "1"}
data: {b: "2"}
`,
	} {
		if _, err := policy.Decode([][]byte{[]byte(doc)}); err == nil {
			t.Errorf("%s: decoded without error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// TestProductionExternalsDocumented: every Secret the production overlays
// expect from outside is named in the operations guide.
func TestProductionExternalsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range slices.Concat(productionExternal, cnpgExternal) {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/operations.md does not mention `%s`", name)
		}
	}
}

// TestCLIJob: the CLI Job of the runbook meets the same rules, and the
// production network policies let it reach NATS, DNS and the gRPC APIs.
func TestCLIJob(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(kube, "jobs/sidekick-cli.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	job, err := policy.Decode([][]byte{raw})
	if err != nil {
		t.Fatal(err)
	}
	objs := append(render(t, "overlays/production"), job...)
	for _, v := range policy.Check(objs, overlays()[1].opt) {
		t.Error(v)
	}
}

// TestEmailRecipientsSet: ingest-email refuses to start outside dev mode
// without SIDEKICK_EMAIL_RECIPIENTS (its SMTP listener would take mail for
// any address), so every overlay gives its container one, from the
// manifest or a ConfigMap it reads.
func TestEmailRecipientsSet(t *testing.T) {
	for _, o := range overlays() {
		objs := render(t, o.dir)
		configMaps := map[string]*corev1.ConfigMap{}
		for _, obj := range objs {
			if cm, ok := obj.Obj.(*corev1.ConfigMap); ok {
				configMaps[cm.Name] = cm
			}
		}
		found := false
		for _, obj := range objs {
			d, ok := obj.Obj.(*appsv1.Deployment)
			if !ok || d.Name != "ingest-email" {
				continue
			}
			found = true
			env := map[string]string{}
			for _, ctr := range d.Spec.Template.Spec.Containers {
				for _, ef := range ctr.EnvFrom {
					if ef.ConfigMapRef != nil && configMaps[ef.ConfigMapRef.Name] != nil {
						for k, v := range configMaps[ef.ConfigMapRef.Name].Data {
							env[ef.Prefix+k] = v
						}
					}
				}
				for _, e := range ctr.Env {
					env[e.Name] = e.Value
				}
			}
			if strings.TrimSpace(env["SIDEKICK_EMAIL_RECIPIENTS"]) == "" && env["SIDEKICK_SMTP_ADDR"] != "off" {
				t.Errorf("%s: ingest-email has no SIDEKICK_EMAIL_RECIPIENTS and would refuse to start", o.dir)
			}
		}
		if !found {
			t.Errorf("%s: no ingest-email Deployment", o.dir)
		}
	}
}
