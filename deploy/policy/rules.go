package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Rule names, as reported in Violation.Rule.
const (
	RuleProbes          = "probes"
	RuleResources       = "resources"
	RuleSecurity        = "security-context"
	RuleGracePeriod     = "termination-grace-period"
	RuleImage           = "image"
	RuleMigration       = "migration"
	RuleDisruption      = "pod-disruption-budget"
	RuleTopologySpread  = "topology-spread"
	RuleReference       = "reference"
	RuleServiceSelector = "service-selector"
	RuleNetworkPolicy   = "network-policy"
	RulePodSecurity     = "namespace-pod-security"
	RuleConsoleURL      = "console-url"
	RuleSecretEnv       = "secret-env"
	RuleBackups         = "backups"
)

// Options tells Check what an overlay may rely on outside itself and which
// production-only rules apply.
type Options struct {
	// ExternalSecrets are Secrets the overlay references but does not
	// create: made by the operators, an operator or cert-manager. Every one
	// must also be listed in docs/operations.md.
	ExternalSecrets []string
	// ExternalConfigMaps likewise for ConfigMaps.
	ExternalConfigMaps []string
	// NetworkPolicies requires a default deny plus the allow rules each
	// Sidekick service needs, and nothing more for the ports checked.
	NetworkPolicies bool
	// IngressNamespace is the namespace of the ingress controller that may
	// reach the ingest services and the console (when NetworkPolicies is
	// set).
	IngressNamespace string
}

// Violation is one broken rule.
type Violation struct {
	Object string // e.g. "Deployment/triage"
	Rule   string // one of the Rule* constants
	Detail string
}

func (v Violation) String() string { return v.Object + ": " + v.Rule + ": " + v.Detail }

// Labels and conventions the rules rely on.
const (
	partOfLabel    = "app.kubernetes.io/part-of"
	componentLabel = "app.kubernetes.io/component"
	nsNameLabel    = "kubernetes.io/metadata.name"
	// grpcClientLabel marks pods (the CLI Job) allowed to call the gRPC APIs.
	grpcClientLabel = "sidekick.io/grpc-client"
	// defaultShutdown is SIDEKICK_SHUTDOWN_TIMEOUT's default.
	defaultShutdown = 20 * time.Second
)

// workload is a pod template with its owner, replica count and labels.
type workload struct {
	kind     string
	id       string
	name     string
	ns       string
	replicas int32
	selector *metav1.LabelSelector
	labels   map[string]string
	meta     *metav1.ObjectMeta // the pod template's
	spec     *corev1.PodSpec
	sidekick bool // part of Sidekick (not NATS, PostgreSQL or a dev helper)
}

type checker struct {
	opt        Options
	objs       []Object
	workloads  []workload
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
	out        []Violation
}

func (c *checker) fail(obj, rule, format string, args ...any) {
	c.out = append(c.out, Violation{Object: obj, Rule: rule, Detail: fmt.Sprintf(format, args...)})
}

// Check applies every rule to the decoded objects of one overlay and
// returns the violations, sorted; none means the overlay passes.
func Check(objs []Object, opt Options) []Violation {
	c := &checker{opt: opt, objs: objs, secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}}
	hpaMin := map[string]int32{}
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *corev1.Secret:
			c.secrets[v.Name] = v
		case *corev1.ConfigMap:
			c.configMaps[v.Name] = v
		case *autoscalingv2.HorizontalPodAutoscaler:
			minR := int32(1)
			if v.Spec.MinReplicas != nil {
				minR = *v.Spec.MinReplicas
			}
			hpaMin[v.Spec.ScaleTargetRef.Kind+"/"+v.Spec.ScaleTargetRef.Name] = minR
		}
	}
	for _, o := range objs {
		var w workload
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			w = workload{replicas: replicas(v.Spec.Replicas), selector: v.Spec.Selector, labels: v.Spec.Template.Labels, meta: &v.Spec.Template.ObjectMeta, spec: &v.Spec.Template.Spec}
		case *appsv1.StatefulSet:
			w = workload{replicas: replicas(v.Spec.Replicas), selector: v.Spec.Selector, labels: v.Spec.Template.Labels, meta: &v.Spec.Template.ObjectMeta, spec: &v.Spec.Template.Spec}
		case *batchv1.Job:
			w = workload{replicas: 1, selector: v.Spec.Selector, labels: v.Spec.Template.Labels, meta: &v.Spec.Template.ObjectMeta, spec: &v.Spec.Template.Spec}
		default:
			continue
		}
		w.kind, w.id, w.name, w.ns = o.Kind, o.ID(), o.Name, o.Namespace
		if m, ok := hpaMin[o.ID()]; ok && m > w.replicas {
			w.replicas = m
		}
		w.sidekick = w.labels[partOfLabel] == "sidekick"
		c.workloads = append(c.workloads, w)
	}

	for _, w := range c.workloads {
		c.checkWorkload(w)
	}
	c.checkObjects()
	c.checkConsoleURL()
	if opt.NetworkPolicies {
		c.checkNetworkPolicies()
	}
	sort.Slice(c.out, func(i, j int) bool { return c.out[i].String() < c.out[j].String() })
	return c.out
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

func (c *checker) checkWorkload(w workload) {
	// A Job's selector is generated by the API server.
	if w.selector == nil && w.kind != "Job" {
		c.fail(w.id, RuleServiceSelector, "no selector")
	} else if w.selector != nil && !selects(w.selector, w.labels) {
		c.fail(w.id, RuleServiceSelector, "selector does not match its own pod template labels")
	}
	c.checkPodSecurity(w)
	c.checkPodSecurityStandard(w)
	for _, ctr := range w.spec.InitContainers {
		c.checkContainer(w, ctr)
	}
	for _, ctr := range w.spec.Containers {
		c.checkContainer(w, ctr)
		if w.kind == "Job" {
			continue // runs to completion: no probes, no drain
		}
		c.checkProbes(w, ctr)
		if w.sidekick {
			c.checkGracePeriod(w, ctr)
			c.checkMigration(w, ctr)
			c.checkRequiredSecrets(w, ctr)
		}
	}
	c.checkPodRefs(w)
	if w.replicas >= 2 {
		c.checkDisruptionBudget(w)
		c.checkTopologySpread(w)
	}
}

func (c *checker) checkPodSecurity(w workload) {
	s := w.spec
	if s.HostNetwork || s.HostPID || s.HostIPC {
		c.fail(w.id, RuleSecurity, "uses the host's network, PID or IPC namespace")
	}
	for _, v := range s.Volumes {
		if v.HostPath != nil {
			c.fail(w.id, RuleSecurity, "volume %s mounts a host path", v.Name)
		}
	}
}

func (c *checker) checkContainer(w workload, ctr corev1.Container) {
	id := w.id + " container " + ctr.Name
	pod := w.spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := ctr.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	nonRoot := pod.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		c.fail(id, RuleSecurity, "runAsNonRoot is not true")
	}
	uid := pod.RunAsUser
	if sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if uid != nil && *uid == 0 {
		c.fail(id, RuleSecurity, "runs as UID 0")
	}
	seccomp := pod.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || (seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault && seccomp.Type != corev1.SeccompProfileTypeLocalhost) {
		c.fail(id, RuleSecurity, "seccomp profile is not RuntimeDefault")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		c.fail(id, RuleSecurity, "allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		c.fail(id, RuleSecurity, "privileged")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		c.fail(id, RuleSecurity, "readOnlyRootFilesystem is not true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		c.fail(id, RuleSecurity, "capabilities do not drop ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		c.fail(id, RuleSecurity, "adds capabilities %v", sc.Capabilities.Add)
	}

	c.checkResources(id, ctr.Resources)

	if msg := imageProblem(ctr.Image); msg != "" {
		c.fail(id, RuleImage, "%s", msg)
	}
	c.checkSecretEnv(w, ctr)
}

// checkResources: a CPU and memory request and limit, the request not above
// the limit.
func (c *checker) checkResources(id string, r corev1.ResourceRequirements) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		switch {
		case !hasReq || req.IsZero():
			c.fail(id, RuleResources, "no %s request", name)
		case !hasLim || lim.IsZero():
			c.fail(id, RuleResources, "no %s limit", name)
		case req.Cmp(lim) > 0:
			c.fail(id, RuleResources, "%s request %s above its limit %s", name, req.String(), lim.String())
		}
	}
}

// imageProblem says what is wrong with an image reference, "" if nothing:
// it must carry a digest or a tag, and the tag must not be latest.
func imageProblem(ref string) string {
	if ref == "" {
		return "no image"
	}
	name, digest, _ := strings.Cut(ref, "@")
	if digest != "" {
		if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
			return fmt.Sprintf("image %s has a malformed digest", ref)
		}
	}
	tag := ""
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag = name[i+1:]
	}
	switch {
	case tag == "latest":
		return fmt.Sprintf("image %s uses the tag latest", ref)
	case tag == "" && digest == "":
		return fmt.Sprintf("image %s has neither tag nor digest (means latest)", ref)
	}
	return ""
}

func (c *checker) checkProbes(w workload, ctr corev1.Container) {
	id := w.id + " container " + ctr.Name
	if ctr.ReadinessProbe == nil {
		c.fail(id, RuleProbes, "no readiness probe")
	}
	if ctr.LivenessProbe == nil {
		c.fail(id, RuleProbes, "no liveness probe")
	}
	if !w.sidekick || ctr.ReadinessProbe == nil || ctr.LivenessProbe == nil {
		return
	}
	if hasPort(ctr, "grpc") {
		// gRPC services: grpc.health.v1 on the gRPC port, or on the
		// plaintext health port when mTLS is on.
		for kind, p := range map[string]*corev1.Probe{"readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe} {
			if p.GRPC == nil || (p.GRPC.Port != 9090 && p.GRPC.Port != 9091) {
				c.fail(id, RuleProbes, "%s probe is not grpc.health.v1 on port 9090 or 9091", kind)
			}
		}
		// Liveness is the process (""), readiness the dependencies
		// ("readiness"): a liveness probe that followed readiness would
		// restart every replica on a database or NATS blip.
		if g := ctr.LivenessProbe.GRPC; g != nil && g.Service != nil && *g.Service != "" {
			c.fail(id, RuleProbes, "liveness probe asks grpc.health.v1 service %q; want the overall status \"\"", *g.Service)
		}
		if g := ctr.ReadinessProbe.GRPC; g != nil && (g.Service == nil || *g.Service != "readiness") {
			c.fail(id, RuleProbes, "readiness probe does not ask grpc.health.v1 service \"readiness\"")
		}
		return
	}
	if g := ctr.ReadinessProbe.HTTPGet; g == nil || g.Path != "/readyz" {
		c.fail(id, RuleProbes, "readiness probe is not GET /readyz")
	}
	if g := ctr.LivenessProbe.HTTPGet; g == nil || g.Path != "/healthz" {
		c.fail(id, RuleProbes, "liveness probe is not GET /healthz")
	}
}

func hasPort(ctr corev1.Container, name string) bool {
	for _, p := range ctr.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

// checkGracePeriod: Kubernetes kills the pod terminationGracePeriodSeconds
// after it starts stopping it, preStop included; the service needs the
// preStop pause plus SIDEKICK_SHUTDOWN_TIMEOUT to drain.
func (c *checker) checkGracePeriod(w workload, ctr corev1.Container) {
	grace := 30 * time.Second
	if w.spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*w.spec.TerminationGracePeriodSeconds) * time.Second
	}
	drain := defaultShutdown
	if v, ok := c.envValue(ctr, "SIDEKICK_SHUTDOWN_TIMEOUT"); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			c.fail(w.id, RuleGracePeriod, "SIDEKICK_SHUTDOWN_TIMEOUT %q: %v", v, err)
			return
		}
		drain = d
	}
	var pause time.Duration
	if ctr.Lifecycle != nil && ctr.Lifecycle.PreStop != nil && ctr.Lifecycle.PreStop.Sleep != nil {
		pause = time.Duration(ctr.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	if grace <= pause+drain {
		c.fail(w.id, RuleGracePeriod, "terminationGracePeriodSeconds %v is not longer than preStop %v + shutdown timeout %v", grace, pause, drain)
	}
}

// envValue resolves a literal environment variable of a container, from
// env or from a ConfigMap in envFrom (later sources win, env wins last).
func (c *checker) envValue(ctr corev1.Container, name string) (string, bool) {
	val, found := "", false
	for _, ef := range ctr.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		if cm, ok := c.configMaps[ef.ConfigMapRef.Name]; ok {
			if v, ok := cm.Data[strings.TrimPrefix(name, ef.Prefix)]; ok && strings.HasPrefix(name, ef.Prefix) {
				val, found = v, true
			}
		}
	}
	for _, e := range ctr.Env {
		if e.Name == name && e.ValueFrom == nil {
			val, found = e.Value, true
		}
	}
	return val, found
}

func hasEnv(ctr corev1.Container, name string) bool {
	for _, e := range ctr.Env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// checkMigration: a service with a database runs `<binary> migrate` as an
// init container of the same image, so a new version serves only on a
// migrated schema.
func (c *checker) checkMigration(w workload, ctr corev1.Container) {
	if !hasEnv(ctr, "SIDEKICK_DATABASE_URL") {
		return
	}
	for _, ic := range w.spec.InitContainers {
		if ic.Image == ctr.Image && len(ic.Args) > 0 && ic.Args[0] == "migrate" {
			return
		}
	}
	c.fail(w.id, RuleMigration, "container %s uses a database but no init container runs %s migrate", ctr.Name, ctr.Image)
}

func (c *checker) checkDisruptionBudget(w workload) {
	for _, o := range c.objs {
		pdb, ok := o.Obj.(*policyv1.PodDisruptionBudget)
		if !ok || !selects(pdb.Spec.Selector, w.labels) {
			continue
		}
		if mu := pdb.Spec.MaxUnavailable; mu != nil && mu.Type == intstr.Int && mu.IntVal == 0 {
			c.fail(w.id, RuleDisruption, "%s allows no disruption (maxUnavailable 0): node drains would hang", o.ID())
		}
		if ma := pdb.Spec.MinAvailable; ma != nil && ma.Type == intstr.Int && ma.IntVal >= w.replicas {
			c.fail(w.id, RuleDisruption, "%s minAvailable %d leaves nothing to evict of %d replicas", o.ID(), ma.IntVal, w.replicas)
		}
		return
	}
	c.fail(w.id, RuleDisruption, "%d replicas and no PodDisruptionBudget selects them", w.replicas)
}

func (c *checker) checkTopologySpread(w workload) {
	for _, t := range w.spec.TopologySpreadConstraints {
		if t.TopologyKey == "kubernetes.io/hostname" && t.LabelSelector != nil && selects(t.LabelSelector, w.labels) {
			return
		}
	}
	c.fail(w.id, RuleTopologySpread, "%d replicas and no topology spread over kubernetes.io/hostname selecting its own pods", w.replicas)
}

func (c *checker) checkPodRefs(w workload) {
	s := w.spec
	if sa := s.ServiceAccountName; sa != "" && sa != "default" && !c.exists("ServiceAccount", sa) {
		c.fail(w.id, RuleReference, "ServiceAccount %s does not exist", sa)
	}
	for _, ps := range s.ImagePullSecrets {
		c.secretRef(w.id, ps.Name, "", true)
	}
	for _, v := range s.Volumes {
		switch {
		case v.Secret != nil:
			optional := v.Secret.Optional != nil && *v.Secret.Optional
			c.secretRef(w.id, v.Secret.SecretName, "", optional)
			for _, it := range v.Secret.Items {
				c.secretRef(w.id, v.Secret.SecretName, it.Key, optional)
			}
		case v.ConfigMap != nil:
			optional := v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
			c.configMapRef(w.id, v.ConfigMap.Name, "", optional)
			for _, it := range v.ConfigMap.Items {
				c.configMapRef(w.id, v.ConfigMap.Name, it.Key, optional)
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					c.secretRef(w.id, src.Secret.Name, "", src.Secret.Optional != nil && *src.Secret.Optional)
				}
				if src.ConfigMap != nil {
					c.configMapRef(w.id, src.ConfigMap.Name, "", src.ConfigMap.Optional != nil && *src.ConfigMap.Optional)
				}
			}
		}
	}
	for _, ctr := range slices.Concat(s.InitContainers, s.Containers) {
		for _, ef := range ctr.EnvFrom {
			if ef.SecretRef != nil {
				c.secretRef(w.id, ef.SecretRef.Name, "", ef.SecretRef.Optional != nil && *ef.SecretRef.Optional)
			}
			if ef.ConfigMapRef != nil {
				c.configMapRef(w.id, ef.ConfigMapRef.Name, "", ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional)
			}
		}
		for _, e := range ctr.Env {
			if e.ValueFrom == nil {
				continue
			}
			if r := e.ValueFrom.SecretKeyRef; r != nil {
				c.secretRef(w.id, r.Name, r.Key, r.Optional != nil && *r.Optional)
			}
			if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
				c.configMapRef(w.id, r.Name, r.Key, r.Optional != nil && *r.Optional)
			}
		}
	}
}

// secretRef checks that a referenced Secret exists in the overlay or is
// declared external, and that a referenced key is in it. An optional
// reference must still name a Secret the overlay or the operators know of:
// that is what catches a typo.
func (c *checker) secretRef(from, name, key string, optional bool) {
	s, ok := c.secrets[name]
	if !ok {
		if !slices.Contains(c.opt.ExternalSecrets, name) {
			c.fail(from, RuleReference, "Secret %s is neither in the overlay nor declared external", name)
		}
		return
	}
	if key == "" || optional {
		return
	}
	_, inData := s.Data[key]
	_, inString := s.StringData[key]
	if !inData && !inString {
		c.fail(from, RuleReference, "Secret %s has no key %s", name, key)
	}
}

func (c *checker) configMapRef(from, name, key string, optional bool) {
	cm, ok := c.configMaps[name]
	if !ok {
		if !slices.Contains(c.opt.ExternalConfigMaps, name) {
			c.fail(from, RuleReference, "ConfigMap %s is neither in the overlay nor declared external", name)
		}
		return
	}
	if key == "" || optional {
		return
	}
	_, inData := cm.Data[key]
	_, inBinary := cm.BinaryData[key]
	if !inData && !inBinary {
		c.fail(from, RuleReference, "ConfigMap %s has no key %s", name, key)
	}
}

func (c *checker) exists(kind, name string) bool {
	for _, o := range c.objs {
		if o.Kind == kind && o.Name == name {
			return true
		}
	}
	return false
}

// checkObjects covers the objects that are not workloads.
func (c *checker) checkObjects() {
	for _, o := range c.objs {
		switch v := o.Obj.(type) {
		case *corev1.Namespace:
			if v.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				c.fail(o.ID(), RulePodSecurity, "pod-security.kubernetes.io/enforce is not restricted")
			}
		case *corev1.Service:
			c.checkService(o.ID(), v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			if !c.exists(v.Spec.ScaleTargetRef.Kind, v.Spec.ScaleTargetRef.Name) {
				c.fail(o.ID(), RuleReference, "scale target %s/%s does not exist", v.Spec.ScaleTargetRef.Kind, v.Spec.ScaleTargetRef.Name)
			}
			if v.Spec.MinReplicas == nil || *v.Spec.MinReplicas < 2 {
				c.fail(o.ID(), RuleDisruption, "minReplicas below 2: one pod is a single point of failure")
			}
		case *policyv1.PodDisruptionBudget:
			if !c.selectsAnyWorkload(v.Spec.Selector) {
				c.fail(o.ID(), RuleReference, "selects no workload")
			}
		case *networkingv1.Ingress:
			for _, t := range v.Spec.TLS {
				c.secretRef(o.ID(), t.SecretName, "", false)
			}
			for _, r := range v.Spec.Rules {
				if r.HTTP == nil {
					continue
				}
				for _, p := range r.HTTP.Paths {
					if b := p.Backend.Service; b != nil {
						c.serviceRef(o.ID(), b.Name, b.Port.Name, b.Port.Number)
					}
				}
			}
		case *monitoringv1.ServiceMonitor:
			c.checkServiceMonitor(o.ID(), v)
		case *CNPGCluster:
			for _, r := range v.Spec.Managed.Roles {
				if r.PasswordSecret != nil {
					c.secretRef(o.ID(), r.PasswordSecret.Name, "", false)
				}
			}
			c.checkBackups(o.ID(), v)
		case *BarmanObjectStore:
			if cr := v.Spec.Configuration.S3Credentials; cr != nil {
				c.secretRef(o.ID(), cr.AccessKeyID.Name, cr.AccessKeyID.Key, false)
				c.secretRef(o.ID(), cr.SecretAccessKey.Name, cr.SecretAccessKey.Key, false)
			}
		}
	}
}

// barmanPlugin is the Barman Cloud plugin's name in a CloudNativePG Cluster.
const barmanPlugin = "barman-cloud.cloudnative-pg.io"

// checkBackups: a CloudNativePG cluster archives its WAL through the Barman
// Cloud plugin to an ObjectStore of the overlay, and a ScheduledBackup
// takes base backups of it with that plugin: without both, point-in-time
// recovery is impossible.
func (c *checker) checkBackups(id string, cl *CNPGCluster) {
	archived := false
	for _, p := range cl.Spec.Plugins {
		if p.Name != barmanPlugin || !p.IsWALArchiver || (p.Enabled != nil && !*p.Enabled) {
			continue
		}
		archived = true
		if store := p.Parameters["barmanObjectName"]; !c.exists("ObjectStore", store) {
			c.fail(id, RuleBackups, "WAL archive to ObjectStore %q, which the overlay does not have", store)
		}
	}
	if !archived {
		c.fail(id, RuleBackups, "no WAL archiving: no enabled %s plugin with isWALArchiver", barmanPlugin)
	}
	for _, o := range c.objs {
		if b, ok := o.Obj.(*CNPGScheduledBackup); ok && b.Spec.Cluster.Name == cl.Name &&
			b.Spec.Method == "plugin" && b.Spec.PluginConfiguration.Name == barmanPlugin {
			return
		}
	}
	c.fail(id, RuleBackups, "no ScheduledBackup takes base backups of it with the %s plugin", barmanPlugin)
}

func (c *checker) checkService(id string, svc *corev1.Service) {
	if len(svc.Spec.Selector) == 0 {
		c.fail(id, RuleServiceSelector, "no selector")
		return
	}
	var matched []workload
	for _, w := range c.workloads {
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.labels)) {
			matched = append(matched, w)
		}
	}
	if len(matched) == 0 {
		c.fail(id, RuleServiceSelector, "selector %v matches no workload", svc.Spec.Selector)
		return
	}
	for _, p := range svc.Spec.Ports {
		if !portServed(matched, p.TargetPort, p.Port) {
			c.fail(id, RuleServiceSelector, "port %s: target %s is not a container port of %s", p.Name, p.TargetPort.String(), matched[0].id)
		}
	}
}

// portServed: a Service port's target is a container port (by name or
// number) of a selected workload; an unset target means the port number.
func portServed(ws []workload, target intstr.IntOrString, port int32) bool {
	for _, w := range ws {
		for _, ctr := range w.spec.Containers {
			for _, cp := range ctr.Ports {
				switch {
				case target.Type == intstr.String && target.StrVal != "":
					if cp.Name == target.StrVal {
						return true
					}
				case target.IntVal != 0:
					if cp.ContainerPort == target.IntVal {
						return true
					}
				default:
					if cp.ContainerPort == port {
						return true
					}
				}
			}
		}
	}
	return false
}

func (c *checker) serviceRef(from, name, portName string, portNumber int32) {
	for _, o := range c.objs {
		svc, ok := o.Obj.(*corev1.Service)
		if !ok || svc.Name != name {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if (portName != "" && p.Name == portName) || (portName == "" && p.Port == portNumber) {
				return
			}
		}
		c.fail(from, RuleReference, "Service %s has no port %s", name, firstNonEmpty(portName, fmt.Sprint(portNumber)))
		return
	}
	c.fail(from, RuleReference, "Service %s does not exist", name)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *checker) checkServiceMonitor(id string, sm *monitoringv1.ServiceMonitor) {
	var svcs []*corev1.Service
	for _, o := range c.objs {
		if svc, ok := o.Obj.(*corev1.Service); ok && selects(&sm.Spec.Selector, svc.Labels) {
			svcs = append(svcs, svc)
		}
	}
	if len(svcs) == 0 {
		c.fail(id, RuleReference, "selects no Service")
		return
	}
	for _, ep := range sm.Spec.Endpoints {
		for _, svc := range svcs {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				c.fail(id, RuleReference, "Service %s has no port named %q to scrape", svc.Name, ep.Port)
			}
		}
	}
}

// checkConsoleURL: where an Ingress publishes the console, it publishes
// exactly the prefix /console the console serves under (its /metrics and
// /readyz stay inside), and triage's share links (SIDEKICK_CONSOLE_URL)
// point there: https when the host has TLS.
func (c *checker) checkConsoleURL() {
	var public []string
	for _, o := range c.objs {
		ing, ok := o.Obj.(*networkingv1.Ingress)
		if !ok {
			continue
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				if p.Backend.Service == nil || !c.serviceSelectsWorkload(p.Backend.Service.Name, "console") {
					continue
				}
				if p.Path != "/console" || p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix {
					c.fail(o.ID(), RuleConsoleURL, "publishes the console at %s: publish the prefix /console, where it serves, and nothing else", p.Path)
					continue
				}
				if r.Host == "" {
					continue // any host: no one URL to compare with
				}
				scheme := "http"
				if slices.ContainsFunc(ing.Spec.TLS, func(t networkingv1.IngressTLS) bool { return slices.Contains(t.Hosts, r.Host) }) {
					scheme = "https"
				}
				public = append(public, scheme+"://"+r.Host+p.Path)
			}
		}
	}
	if len(public) == 0 {
		return
	}
	for _, w := range c.workloads {
		if w.name != "triage" || !w.sidekick {
			continue
		}
		for _, ctr := range w.spec.Containers {
			url, ok := c.envValue(ctr, "SIDEKICK_CONSOLE_URL")
			switch {
			case !ok:
				c.fail(w.id, RuleConsoleURL, "SIDEKICK_CONSOLE_URL is not set: share links point at localhost, not at the console published at %s", public[0])
			case !slices.Contains(public, strings.TrimSuffix(url, "/")):
				c.fail(w.id, RuleConsoleURL, "SIDEKICK_CONSOLE_URL %s is not where the Ingress publishes the console (%s)", url, strings.Join(public, ", "))
			}
		}
	}
}

// serviceSelectsWorkload: the Service called name selects the pods of the
// Sidekick workload called workload.
func (c *checker) serviceSelectsWorkload(name, workload string) bool {
	for _, o := range c.objs {
		svc, ok := o.Obj.(*corev1.Service)
		if !ok || svc.Name != name || len(svc.Spec.Selector) == 0 {
			continue
		}
		for _, w := range c.workloads {
			if w.name == workload && w.sidekick && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(w.labels)) {
				return true
			}
		}
	}
	return false
}

func (c *checker) selectsAnyWorkload(sel *metav1.LabelSelector) bool {
	for _, w := range c.workloads {
		if selects(sel, w.labels) {
			return true
		}
	}
	return false
}

// selects reports whether a label selector matches a label set. A nil
// selector selects nothing; an empty one selects everything.
func selects(sel *metav1.LabelSelector, set map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(set))
}
