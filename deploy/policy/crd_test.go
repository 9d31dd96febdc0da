package policy_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/sidekickhq/sidekick/deploy/policy"
)

var (
	crdsOnce sync.Once
	crds     *policy.CRDs
	crdsErr  error
)

// loadCRDs fetches the CRD manifests of policy.CRDSources through the Go
// module proxy (`go mod download`, cached in the module cache like any
// dependency) and loads them once per test binary.
func loadCRDs(t *testing.T) *policy.CRDs {
	t.Helper()
	crdsOnce.Do(func() {
		var paths []string
		for _, src := range policy.CRDSources {
			cmd := exec.Command("go", "mod", "download", "-json", src.Module+"@"+src.Version)
			cmd.Dir = os.TempDir() // outside any module or workspace
			cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
			out, err := cmd.Output()
			var mod struct{ Dir, Error string }
			if jerr := json.Unmarshal(out, &mod); err != nil || jerr != nil || mod.Error != "" {
				crdsErr = fmt.Errorf("go mod download %s@%s: %s %v", src.Module, src.Version, strings.TrimSpace(string(out)), err)
				return
			}
			for _, f := range src.Files {
				paths = append(paths, filepath.Join(mod.Dir, f))
			}
		}
		crds, crdsErr = policy.LoadCRDs(paths...)
	})
	if crdsErr != nil {
		t.Fatal(crdsErr)
	}
	return crds
}

// customResources are the rendered documents of every overlay and of the
// NATS chart whose kind is a custom resource, by overlay.
func customResources(t *testing.T, c *policy.CRDs) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	keep := func(where string, doc []byte) {
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if c.Knows(tm.APIVersion, tm.Kind) {
			out[where] = append(out[where], doc)
		}
	}
	for _, o := range overlays() {
		docs, err := policy.Render(filepath.Join(kube, o.dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs {
			keep(o.dir, d)
		}
	}
	raw, err := os.ReadFile("../nats/rendered.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range regexp.MustCompile(`(?m)^---$`).Split(string(raw), -1) {
		if strings.Contains(d, "apiVersion:") {
			keep("nats/rendered.yaml", []byte(d))
		}
	}
	return out
}

// TestCustomResourcesMatchTheirCRDs: every CloudNativePG, Barman Cloud
// and Prometheus Operator resource the overlays and the NATS chart render
// passes its CRD's OpenAPI schema, as the API server would check it, with
// no field the schema does not know. The Go types of policy.Decode are
// ours and could agree with a mistake; the CRDs are the operators'.
func TestCustomResourcesMatchTheirCRDs(t *testing.T) {
	c := loadCRDs(t)
	seen := map[string]int{}
	for where, docs := range customResources(t, c) {
		for _, doc := range docs {
			var tm struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			_ = yaml.Unmarshal(doc, &tm)
			seen[tm.Kind]++
			if err := c.Validate(doc); err != nil {
				t.Errorf("%s: %s/%s: %v", where, tm.Kind, tm.Metadata.Name, err)
			}
		}
	}
	// Checking nothing passes too: every custom kind the manifests use
	// must have been checked.
	for _, kind := range []string{"Cluster", "Database", "ScheduledBackup", "ObjectStore", "ServiceMonitor", "PrometheusRule", "PodMonitor"} {
		if seen[kind] == 0 {
			t.Errorf("no %s was checked against its CRD", kind)
		}
	}
	t.Logf("checked against the CRDs: %v", seen)
}

// TestCRDValidationCatchesProblems: a misspelt field, a wrong type, a
// value outside an enum and a bad duration are each refused, naming the
// field.
func TestCRDValidationCatchesProblems(t *testing.T) {
	c := loadCRDs(t)
	var cluster, monitor map[string]any
	for _, docs := range customResources(t, c) {
		for _, doc := range docs {
			var m map[string]any
			if err := yaml.Unmarshal(doc, &m); err != nil {
				t.Fatal(err)
			}
			switch m["kind"] {
			case "Cluster":
				cluster = m
			case "ServiceMonitor":
				monitor = m
			}
		}
	}
	if cluster == nil || monitor == nil {
		t.Fatal("no Cluster or ServiceMonitor rendered to break")
	}
	if err := c.Validate(marshal(t, cluster)); err != nil {
		t.Fatalf("the unbroken Cluster: %v", err)
	}
	for _, tc := range []struct {
		name   string
		obj    map[string]any
		mutate func(spec map[string]any)
		want   string
	}{
		{"misspelt field", cluster, func(s map[string]any) { s["instancess"] = 3 }, "unknown field spec.instancess"},
		{"wrong type", cluster, func(s map[string]any) { s["instances"] = "three" }, "spec.instances"},
		{"outside an enum", cluster, func(s map[string]any) { s["primaryUpdateStrategy"] = "sometimes" }, "spec.primaryUpdateStrategy"},
		{"bad duration", monitor, func(s map[string]any) {
			eps := s["endpoints"].([]any)
			eps[0].(map[string]any)["interval"] = "soon"
		}, "spec.endpoints[0].interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var obj map[string]any
			if err := yaml.Unmarshal(marshal(t, tc.obj), &obj); err != nil {
				t.Fatal(err)
			}
			tc.mutate(obj["spec"].(map[string]any))
			err := c.Validate(marshal(t, obj))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
