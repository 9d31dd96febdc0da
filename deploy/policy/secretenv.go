package policy

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// secretEnv matches variable names that hold a secret.
var secretEnv = regexp.MustCompile(`(?i)SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL`)

// requiredSecretEnv are the variables, by workload, without which a Sidekick
// service refuses to start or cannot do its work outside dev mode: the gRPC
// servers refuse to start without the gRPC token, the console without its
// sign-in token, and the console's every call needs the gRPC token. Each
// must come from a Secret reference that is not optional.
var requiredSecretEnv = map[string][]string{
	"console":  {"SIDEKICK_CONSOLE_TOKEN", "SIDEKICK_GRPC_TOKEN"},
	"triage":   {"SIDEKICK_GRPC_TOKEN"},
	"rotation": {"SIDEKICK_GRPC_TOKEN"},
	"notifier": {"SIDEKICK_GRPC_TOKEN"},
}

// checkSecretEnv: a variable named like a secret is never a literal in the
// manifest or a ConfigMap key; it comes from a Secret.
func (c *checker) checkSecretEnv(w workload, ctr corev1.Container) {
	id := w.id + " container " + ctr.Name
	for _, e := range ctr.Env {
		if !secretEnv.MatchString(e.Name) {
			continue
		}
		switch {
		case e.ValueFrom == nil && e.Value != "":
			c.fail(id, RuleSecretEnv, "%s is a literal in the manifest, not a Secret reference", e.Name)
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef == nil:
			c.fail(id, RuleSecretEnv, "%s comes from something other than a Secret", e.Name)
		}
	}
	for _, ef := range ctr.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm, ok := c.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			continue // checkPodRefs reports it
		}
		for key := range cm.Data {
			if name := ef.Prefix + key; secretEnv.MatchString(name) {
				c.fail(id, RuleSecretEnv, "%s comes from ConfigMap %s, not from a Secret", name, ef.ConfigMapRef.Name)
			}
		}
	}
}

// checkRequiredSecrets: the service's container gets each variable of
// requiredSecretEnv from a Secret reference that is not optional.
func (c *checker) checkRequiredSecrets(w workload, ctr corev1.Container) {
	id := w.id + " container " + ctr.Name
	for _, name := range requiredSecretEnv[w.name] {
		var ref *corev1.SecretKeySelector
		found := false
		for _, e := range ctr.Env {
			if e.Name == name {
				found = true
				if e.ValueFrom != nil {
					ref = e.ValueFrom.SecretKeyRef
				}
			}
		}
		switch {
		case !found:
			c.fail(id, RuleSecretEnv, "%s is not set: %s cannot work without it (%s)", name, w.name, strings.Join(requiredSecretEnv[w.name], ", "))
		case ref == nil:
			// checkSecretEnv names the problem.
		case ref.Optional != nil && *ref.Optional:
			c.fail(id, RuleSecretEnv, "%s comes from an optional reference to Secret %s: %s cannot work without it", name, ref.Name, w.name)
		}
	}
}
