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
// version and commit stamped in.
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
	cgoOff, stamped := false, false
	for i, s := range stages {
		obj := "Dockerfile stage " + stageName(s, i)
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
			}
		}
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
		if entry == nil {
			fail(obj, RuleEntrypoint, "no ENTRYPOINT")
		} else if entry.PrependShell {
			fail(obj, RuleEntrypoint, "ENTRYPOINT in shell form needs a shell the runtime image does not have")
		}
	}
	slices.Sort(rep.Targets)
	return rep, nil
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
