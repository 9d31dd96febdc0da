package policy_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/sidekickhq/sidekick/deploy/policy"
)

// natsValues is the part of the nats/nats chart values Sidekick sets;
// strict decoding catches a misspelt key in deploy/nats/values.yaml.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
			TLS      struct {
				Enabled    bool           `json:"enabled"`
				SecretName string         `json:"secretName"`
				Merge      map[string]any `json:"merge"`
			} `json:"tls"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool   `json:"enabled"`
				Dir     string `json:"dir"`
				PVC     struct {
					Enabled bool   `json:"enabled"`
					Size    string `json:"size"`
				} `json:"pvc"`
			} `json:"fileStore"`
			MemoryStore struct {
				Enabled bool `json:"enabled"`
			} `json:"memoryStore"`
			Merge map[string]any `json:"merge"`
		} `json:"jetstream"`
		Monitor struct {
			Enabled bool `json:"enabled"`
			Port    int  `json:"port"`
		} `json:"monitor"`
		NATS struct {
			TLS struct {
				Enabled    bool   `json:"enabled"`
				SecretName string `json:"secretName"`
			} `json:"tls"`
		} `json:"nats"`
		Merge map[string]any `json:"merge"`
	} `json:"config"`
	TLSCA struct {
		Enabled    bool   `json:"enabled"`
		SecretName string `json:"secretName"`
		Key        string `json:"key"`
	} `json:"tlsCA"`
	Container struct {
		Image struct {
			Tag string `json:"tag"`
		} `json:"image"`
		Env   map[string]string `json:"env"`
		Merge containerPatch    `json:"merge"`
		Patch []jsonPatch       `json:"patch"`
	} `json:"container"`
	Reloader struct {
		Merge containerPatch `json:"merge"`
	} `json:"reloader"`
	PodTemplate struct {
		Merge                     podPatch                  `json:"merge"`
		Patch                     []jsonPatch               `json:"patch"`
		TopologySpreadConstraints map[string]map[string]any `json:"topologySpreadConstraints"`
	} `json:"podTemplate"`
	PodDisruptionBudget struct {
		Enabled bool `json:"enabled"`
	} `json:"podDisruptionBudget"`
	PromExporter struct {
		Enabled    bool           `json:"enabled"`
		Merge      containerPatch `json:"merge"`
		PodMonitor struct {
			Enabled bool `json:"enabled"`
			Merge   struct {
				Metadata struct {
					Labels map[string]string `json:"labels"`
				} `json:"metadata"`
			} `json:"merge"`
		} `json:"podMonitor"`
	} `json:"promExporter"`
	NatsBox struct {
		Enabled  bool `json:"enabled"`
		Contexts map[string]struct {
			NKey struct {
				SecretName string `json:"secretName"`
				Key        string `json:"key"`
			} `json:"nkey"`
		} `json:"contexts"`
		Container struct {
			Env   map[string]string `json:"env"`
			Merge containerPatch    `json:"merge"`
		} `json:"container"`
		PodTemplate struct {
			Merge podPatch `json:"merge"`
		} `json:"podTemplate"`
	} `json:"natsBox"`
	ExtraResources []map[string]any `json:"extraResources"`
}

// jsonPatch is one operation of the chart's JSON patches.
type jsonPatch struct {
	Op    string         `json:"op"`
	Path  string         `json:"path"`
	Value map[string]any `json:"value"`
}

// containerPatch and podPatch are what the values merge into the chart's
// containers and pod templates.
type containerPatch struct {
	Resources       corev1.ResourceRequirements `json:"resources"`
	SecurityContext *corev1.SecurityContext     `json:"securityContext"`
}

type podPatch struct {
	Spec struct {
		SecurityContext *corev1.PodSecurityContext `json:"securityContext"`
	} `json:"spec"`
}

func readNATSValues(t *testing.T) natsValues {
	t.Helper()
	raw, err := os.ReadFile("../nats/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v natsValues
	if err := yaml.UnmarshalStrict(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNATSValues(t *testing.T) {
	v := readNATSValues(t)
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 {
		t.Errorf("cluster enabled=%v replicas=%d, want a 3-node cluster", c.Cluster.Enabled, c.Cluster.Replicas)
	}
	if !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled || !c.JetStream.FileStore.PVC.Enabled || c.JetStream.FileStore.PVC.Size == "" {
		t.Errorf("JetStream must store files on persistent volumes: %+v", c.JetStream.FileStore)
	}
	if c.JetStream.Merge["sync_interval"] == nil {
		t.Error("jetstream sync_interval is not set (docs/operations.md explains the choice)")
	}
	if _, ok := v.PodTemplate.TopologySpreadConstraints["kubernetes.io/hostname"]; !ok {
		t.Error("NATS servers are not spread over nodes")
	}
	if !v.PodDisruptionBudget.Enabled || !v.PromExporter.Enabled {
		t.Error("NATS needs its PodDisruptionBudget and the Prometheus exporter (nats_consumer_num_pending)")
	}
}

// renderedNATS decodes deploy/nats/rendered.yaml, the chart's output for
// values.yaml, strictly into the API types.
func renderedNATS(t *testing.T) []policy.Object {
	t.Helper()
	raw, err := os.ReadFile("../nats/rendered.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(raw), -1) {
		if strings.Contains(doc, "apiVersion:") {
			docs = append(docs, []byte(doc))
		}
	}
	objs, err := policy.Decode(docs)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestNATSChartRendered: the NATS chart's objects, as values.yaml renders
// them, pass Pod Security "restricted" with requests and limits on every
// container (server, config reloader, exporter, nats-box); the server is
// the version the code is tested on (platform/go.mod); GOMEMLIMIT is below
// the memory limit; and rendered.yaml is not stale.
func TestNATSChartRendered(t *testing.T) {
	objs := renderedNATS(t)
	for _, v := range policy.CheckPodSecurity(objs) {
		t.Error(v)
	}
	var sts *appsv1.StatefulSet
	var box *appsv1.Deployment
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *appsv1.StatefulSet:
			sts = v
		case *appsv1.Deployment:
			box = v
		}
	}
	if sts == nil || box == nil {
		t.Fatal("rendered.yaml has no NATS StatefulSet or nats-box Deployment")
	}
	containers := map[string]corev1.Container{}
	for _, c := range sts.Spec.Template.Spec.Containers {
		containers[c.Name] = c
	}
	nats, ok := containers["nats"]
	if !ok || len(containers) != 3 {
		t.Fatalf("StatefulSet containers %v, want nats, reloader and prom-exporter", containers)
	}

	gomod, err := os.ReadFile("../../platform/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github\.com/nats-io/nats-server/v2 v(\S+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("platform/go.mod does not require nats-server")
	}
	if want := "nats:" + string(m[1]) + "-alpine"; nats.Image != want {
		t.Errorf("NATS server image %s, want %s: the version platform's tests run (platform/go.mod)", nats.Image, want)
	}

	limit := nats.Resources.Limits[corev1.ResourceMemory]
	var gomemlimit string
	for _, e := range nats.Env {
		if e.Name == "GOMEMLIMIT" {
			gomemlimit = e.Value
		}
	}
	soft, err := resource.ParseQuantity(strings.TrimSuffix(gomemlimit, "B"))
	switch {
	case gomemlimit == "" || err != nil:
		t.Errorf("GOMEMLIMIT %q: want a size such as 1700MiB (%v)", gomemlimit, err)
	case limit.IsZero() || soft.Cmp(limit) >= 0 || soft.Value() < limit.Value()/2:
		t.Errorf("GOMEMLIMIT %s: want it under the memory limit %s, and not below half of it", gomemlimit, limit.String())
	default:
		t.Logf("GOMEMLIMIT %s under the %s limit", gomemlimit, limit.String())
	}

	// Stale? Compare what values.yaml asks for with what was rendered.
	v := readNATSValues(t)
	if want := "nats:" + v.Container.Image.Tag; nats.Image != want {
		t.Errorf("rendered.yaml is stale: image %s, values.yaml %s", nats.Image, want)
	}
	if gomemlimit != v.Container.Env["GOMEMLIMIT"] {
		t.Errorf("rendered.yaml is stale: GOMEMLIMIT %q, values.yaml %q", gomemlimit, v.Container.Env["GOMEMLIMIT"])
	}
	for name, want := range map[string]containerPatch{"nats": v.Container.Merge, "reloader": v.Reloader.Merge, "prom-exporter": v.PromExporter.Merge, "nats-box": v.NatsBox.Container.Merge} {
		got, ok := containers[name]
		if name == "nats-box" {
			got, ok = box.Spec.Template.Spec.Containers[0], true
		}
		if !ok || !equality.Semantic.DeepEqual(got.Resources, want.Resources) || !equality.Semantic.DeepEqual(got.SecurityContext, want.SecurityContext) {
			t.Errorf("rendered.yaml is stale: container %s has resources %v and security context %v, values.yaml %v and %v",
				name, got.Resources, got.SecurityContext, want.Resources, want.SecurityContext)
		}
	}
	if !equality.Semantic.DeepEqual(sts.Spec.Template.Spec.SecurityContext, v.PodTemplate.Merge.Spec.SecurityContext) ||
		!equality.Semantic.DeepEqual(box.Spec.Template.Spec.SecurityContext, v.NatsBox.PodTemplate.Merge.Spec.SecurityContext) {
		t.Error("rendered.yaml is stale: the pods' security contexts differ from values.yaml")
	}
}

// TestNATSChartCatchesProblems: the checks above fail for real on a pod
// that runs as root or a container without limits.
func TestNATSChartCatchesProblems(t *testing.T) {
	for name, mutate := range map[string]func(*appsv1.StatefulSet){
		"server as root": func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.SecurityContext = nil },
		"reloader without limits": func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[1].Resources.Limits = nil
		},
		"exporter may escalate": func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.Containers[2].SecurityContext.AllowPrivilegeEscalation = nil
		},
	} {
		objs := renderedNATS(t)
		for _, o := range objs {
			if s, ok := o.Obj.(*appsv1.StatefulSet); ok {
				mutate(s)
			}
		}
		if got := policy.CheckPodSecurity(objs); len(got) == 0 {
			t.Errorf("%s: no violation", name)
		} else {
			t.Logf("%s: %v", name, got[0])
		}
	}
}

// TestNATSUsersAndTLS: the NATS servers, as rendered, speak TLS on the
// client port with the certificate cert-manager renews, include the
// public keys (Secret sidekick-nats-keys) and then Sidekick's users
// (ConfigMap sidekick-nats-users, which the values carry: natsauth's tests
// check its text), and the config reloader watches all of them, so a new
// key, permission or certificate needs no restart. nats-box is the admin.
func TestNATSUsersAndTLS(t *testing.T) {
	objs := renderedNATS(t)
	var conf string
	var users *corev1.ConfigMap
	var sts *appsv1.StatefulSet
	var box *appsv1.Deployment
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *corev1.ConfigMap:
			switch v.Name {
			case "nats-config":
				conf = v.Data["nats.conf"]
			case "sidekick-nats-users":
				users = v
			}
		case *appsv1.StatefulSet:
			sts = v
		case *appsv1.Deployment:
			box = v
		}
	}
	if sts == nil || box == nil || conf == "" {
		t.Fatal("rendered.yaml lacks the StatefulSet, nats-box or nats.conf")
	}
	keys := strings.Index(conf, "include ../nats-sidekick-keys/keys.conf;")
	usersAt := strings.Index(conf, "include ../nats-sidekick-users/users.conf;")
	if keys < 0 || usersAt < keys {
		t.Errorf("nats.conf does not include keys.conf and then users.conf:\n%s", conf)
	}
	if !regexp.MustCompile(`"tls": \{[^}]*"cert_file": "/etc/nats-certs/nats/tls.crt"`).MatchString(conf) {
		t.Errorf("nats.conf has no TLS on the client port:\n%s", conf)
	}
	// The routes between the servers: mutual TLS, dialled as tls://.
	if cluster := regexp.MustCompile(`(?s)"cluster": \{.*?\n  \}`).FindString(conf); !strings.Contains(cluster, `"tls://nats-0.nats-headless:6222"`) ||
		!regexp.MustCompile(`"tls": \{[^}]*"cert_file": "/etc/nats-certs/cluster/tls.crt"[^}]*"verify": true`).MatchString(cluster) {
		t.Errorf("nats.conf's cluster routes are not on mutual TLS:\n%s", cluster)
	}
	if users == nil || !strings.Contains(users.Data["users.conf"], "authorization {") {
		t.Error("rendered.yaml has no ConfigMap sidekick-nats-users with the users")
	}
	v := readNATSValues(t)
	for _, r := range v.ExtraResources {
		data, _ := r["data"].(map[string]any)
		if users != nil && data != nil && data["users.conf"] != users.Data["users.conf"] {
			t.Error("rendered.yaml is stale: users.conf differs from values.yaml")
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, vol := range sts.Spec.Template.Spec.Volumes {
		volumes[vol.Name] = vol
	}
	if vol := volumes["sidekick-keys"]; vol.Secret == nil || vol.Secret.SecretName != "sidekick-nats-keys" {
		t.Errorf("volume sidekick-keys %+v, want the Secret sidekick-nats-keys", vol)
	}
	if vol := volumes["sidekick-users"]; vol.ConfigMap == nil || vol.ConfigMap.Name != "sidekick-nats-users" {
		t.Errorf("volume sidekick-users %+v, want the ConfigMap sidekick-nats-users", vol)
	}
	if vol := volumes["nats-tls"]; vol.Secret == nil || vol.Secret.SecretName != "nats-server-tls" {
		t.Errorf("volume nats-tls %+v, want the Secret nats-server-tls", vol)
	}
	for _, c := range sts.Spec.Template.Spec.Containers {
		if c.Name != "reloader" {
			continue
		}
		args := strings.Join(c.Args, " ")
		for _, f := range []string{"/etc/nats-sidekick-keys/keys.conf", "/etc/nats-sidekick-users/users.conf", "/etc/nats-certs/nats/tls.crt", "/etc/nats-certs/cluster/tls.crt"} {
			if !strings.Contains(args, "-config "+f) {
				t.Errorf("the config reloader does not watch %s: %s", f, args)
			}
		}
	}
	found := false
	for _, vol := range box.Spec.Template.Spec.Volumes {
		found = found || (vol.Secret != nil && vol.Secret.SecretName == "sidekick-nats-admin")
	}
	if !found {
		t.Error("nats-box does not mount the admin user's seed (sidekick-nats-admin)")
	}
}
