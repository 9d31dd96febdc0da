package policy

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
)

// RulePodSecurityStandard names violations of the Pod Security Standard
// "restricted" as k8s.io/pod-security-admission evaluates it.
const RulePodSecurityStandard = "pod-security-restricted"

// checkPodSecurityStandard evaluates a workload's pod template the way the
// API server's Pod Security admission would in a namespace enforcing
// "restricted": what it reports is what would make the namespace refuse
// the pods.
func (c *checker) checkPodSecurityStandard(w workload) {
	// The admission controller's own checks, at the "restricted" level of
	// the newest policy version they know.
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		c.fail(w.id, RulePodSecurityStandard, "pod security evaluator: %v", err)
		return
	}
	lv := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	for _, r := range eval.EvaluatePod(lv, w.meta, w.spec) {
		if !r.Allowed {
			c.fail(w.id, RulePodSecurityStandard, "%s: %s", r.ForbiddenReason, r.ForbiddenDetail)
		}
	}
}

// CheckPodSecurity applies the rules that also hold for workloads Sidekick
// does not build, such as the NATS chart's: the Pod Security Standard
// "restricted", a CPU and memory request and limit on every container, and
// an image with a tag or digest other than latest. The other rules of
// Check (probes on every container, a read-only root file system, drain
// times) are Sidekick's own conventions.
func CheckPodSecurity(objs []Object) []Violation {
	c := &checker{objs: objs}
	for _, o := range objs {
		var meta *metav1.ObjectMeta
		var spec *corev1.PodSpec
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			meta, spec = &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec
		case *appsv1.StatefulSet:
			meta, spec = &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec
		case *batchv1.Job:
			meta, spec = &v.Spec.Template.ObjectMeta, &v.Spec.Template.Spec
		default:
			continue
		}
		w := workload{kind: o.Kind, id: o.ID(), name: o.Name, meta: meta, spec: spec}
		c.checkPodSecurityStandard(w)
		for _, ctr := range slices.Concat(spec.InitContainers, spec.Containers) {
			c.checkResources(w.id+" container "+ctr.Name, ctr.Resources)
			if msg := imageProblem(ctr.Image); msg != "" {
				c.fail(w.id+" container "+ctr.Name, RuleImage, "%s", msg)
			}
		}
	}
	return c.out
}
