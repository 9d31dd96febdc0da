package policy

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Dockerfile rule names, as reported in Violation.Rule.
const (
	RuleBasePinned   = "base-image-pinned"
	RuleNonRootUser  = "non-root-user"
	RuleBakedSecret  = "no-baked-secrets"
	RuleEntrypoint   = "exec-entrypoint"
	RuleStaticStamps = "static-build-stamped"
	RuleCrossCompile = "cross-compiled"
	RuleReproducible = "reproducible-build"
)

var (
	pinned    = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)
	sensitive = regexp.MustCompile(`(?i)SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|KEY`)
)

// DockerfileReport is what CheckDockerfile found.
type DockerfileReport struct {
	// Targets are the final stages: images one can build with --target.
	Targets []string
	// Violations are the broken rules, empty when the Dockerfile passes.
	Violations []Violation
}

// CheckDockerfile parses a Dockerfile with BuildKit's parser and checks that
// every base image is pinned by digest, that every final image runs as a
// numeric non-root USER with an exec-form ENTRYPOINT (distroless has no
// shell), that no ARG or ENV bakes in a value for a name that looks like a
// secret, and that the binaries are built static (CGO_ENABLED=0) with the
// version and commit stamped in. The go build must cross-compile: its stage
// runs on the build platform (FROM --platform=$BUILDPLATFORM) and takes
// GOOS and GOARCH from TARGETOS and TARGETARCH, while no final stage pins a
// platform; and it must be reproducible: -trimpath and -buildvcs=false.
func CheckDockerfile(r io.Reader) (DockerfileReport, error) {
	var rep DockerfileReport
	res, err := parser.Parse(r)
	if err != nil {
		return rep, fmt.Errorf("parse Dockerfile: %w", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return rep, fmt.Errorf("parse Dockerfile instructions: %w", err)
	}
	fail := func(obj, rule, format string, args ...any) {
		rep.Violations = append(rep.Violations, Violation{Object: obj, Rule: rule, Detail: fmt.Sprintf(format, args...)})
	}

	meta := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			meta[kv.Key] = kv.ValueString()
			checkSecret(fail, "Dockerfile", "ARG", kv.Key, kv.ValueString())
		}
	}

	byName := map[string]int{}
	used := map[string]bool{} // stages another stage builds on or copies from
	cgoOff, stamped, builds := false, false, 0
	for i, s := range stages {
		obj := "Dockerfile stage " + stageName(s, i)
		args := map[string]bool{}
		base := os.Expand(s.BaseName, func(k string) string { return meta[k] })
		if _, ok := byName[base]; ok {
			used[base] = true
		} else if base != "scratch" && !pinned.MatchString(base) {
			fail(obj, RuleBasePinned, "FROM %s is not pinned by digest (@sha256:...)", base)
		}
		if s.Name != "" {
			byName[s.Name] = i
		}
		for _, cmd := range s.Commands {
			switch c := cmd.(type) {
			case *instructions.ArgCommand:
				for _, kv := range c.Args {
					checkSecret(fail, obj, "ARG", kv.Key, kv.ValueString())
					args[kv.Key] = true
				}
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					checkSecret(fail, obj, "ENV", kv.Key, kv.Value)
					if kv.Key == "CGO_ENABLED" && kv.Value == "0" {
						cgoOff = true
					}
				}
			case *instructions.CopyCommand:
				if c.From != "" {
					used[c.From] = true
				}
			case *instructions.RunCommand:
				line := strings.Join(c.CmdLine, " ")
				cgoOff = cgoOff || strings.Contains(line, "CGO_ENABLED=0")
				stamped = stamped || (strings.Contains(line, "platform/buildinfo.Version=") && strings.Contains(line, "platform/buildinfo.Commit="))
				if goBuild.MatchString(line) {
					builds++
					checkBuild(fail, obj, s, args, line)
				}
			}
		}
	}
	if builds == 0 {
		fail("Dockerfile", RuleCrossCompile, "no stage runs go build")
	}
	if !cgoOff {
		fail("Dockerfile", RuleStaticStamps, "no stage sets CGO_ENABLED=0")
	}
	if !stamped {
		fail("Dockerfile", RuleStaticStamps, "no RUN stamps platform/buildinfo.Version and .Commit")
	}

	for i, s := range stages {
		if used[s.Name] {
			continue
		}
		name := stageName(s, i)
		rep.Targets = append(rep.Targets, name)
		obj := "Dockerfile target " + name
		user, entry := effective(stages, byName, i)
		if user == "" {
			fail(obj, RuleNonRootUser, "no USER: the image runs as root")
		} else if uid, err := strconv.Atoi(strings.SplitN(user, ":", 2)[0]); err != nil {
			fail(obj, RuleNonRootUser, "USER %s is not numeric: Kubernetes runAsNonRoot cannot verify a name", user)
		} else if uid == 0 {
			fail(obj, RuleNonRootUser, "USER %s is root", user)
		}
		if p := platformOf(stages, byName, i); p != "" {
			fail(obj, RuleCrossCompile, "FROM --platform=%s: a final image must be built for the target platform", p)
		}
		if entry == nil {
			fail(obj, RuleEntrypoint, "no ENTRYPOINT")
		} else if entry.PrependShell {
			fail(obj, RuleEntrypoint, "ENTRYPOINT in shell form needs a shell the runtime image does not have")
		}
	}
	slices.Sort(rep.Targets)
	return rep, nil
}

var goBuild = regexp.MustCompile(`\bgo build\b`)

// checkBuild checks the stage and the RUN line of a go build.
func checkBuild(fail func(obj, rule, format string, args ...any), obj string, s instructions.Stage, args map[string]bool, line string) {
	if s.Platform != "$BUILDPLATFORM" && s.Platform != "${BUILDPLATFORM}" {
		fail(obj, RuleCrossCompile, "go build runs in a stage without FROM --platform=$BUILDPLATFORM: other platforms would build under emulation")
	}
	for _, pair := range [][2]string{{"GOOS", "TARGETOS"}, {"GOARCH", "TARGETARCH"}} {
		goVar, v := pair[0], pair[1]
		if !args[v] {
			fail(obj, RuleCrossCompile, "no ARG %s in the stage: BuildKit sets it only when declared", v)
		}
		if !strings.Contains(line, goVar+"=${"+v+"}") && !strings.Contains(line, goVar+"=$"+v+" ") {
			fail(obj, RuleCrossCompile, "go build does not set %s=${%s}", goVar, v)
		}
	}
	for _, flag := range []string{"-trimpath", "-buildvcs=false"} {
		if !regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(flag) + `(\s|$)`).MatchString(line) {
			fail(obj, RuleReproducible, "go build without %s", flag)
		}
	}
}

// platformOf is the --platform of a stage's FROM, or of the stages it
// builds on.
func platformOf(stages []instructions.Stage, byName map[string]int, i int) string {
	for seen := 0; seen <= len(stages); seen++ {
		if stages[i].Platform != "" {
			return stages[i].Platform
		}
		next, ok := byName[stages[i].BaseName]
		if !ok {
			return ""
		}
		i = next
	}
	return ""
}

func stageName(s instructions.Stage, i int) string {
	if s.Name != "" {
		return s.Name
	}
	return "#" + strconv.Itoa(i)
}

// effective walks a stage and the stages it builds on for the last USER
// and ENTRYPOINT.
func effective(stages []instructions.Stage, byName map[string]int, i int) (user string, entry *instructions.EntrypointCommand) {
	for seen := 0; seen <= len(stages); seen++ {
		s := stages[i]
		for j := len(s.Commands) - 1; j >= 0; j-- {
			switch c := s.Commands[j].(type) {
			case *instructions.UserCommand:
				if user == "" {
					user = c.User
				}
			case *instructions.EntrypointCommand:
				if entry == nil {
					entry = c
				}
			}
		}
		next, ok := byName[s.BaseName]
		if !ok || (user != "" && entry != nil) {
			return user, entry
		}
		i = next
	}
	return user, entry
}

func checkSecret(fail func(obj, rule, format string, args ...any), obj, kind, key, value string) {
	if value != "" && sensitive.MatchString(key) {
		fail(obj, RuleBakedSecret, "%s %s has a value baked into the image", kind, key)
	}
}
