package policy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/sidekickhq/sidekick/deploy/policy"
)

const dockerfile = "../docker/Dockerfile"

var images = []string{"ingest-email", "ingest-github", "ingest-sentry", "ingest-slack", "notifier", "rotation", "sidekick", "triage"}

func TestDockerfilePasses(t *testing.T) {
	f, err := os.Open(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := policy.CheckDockerfile(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range rep.Violations {
		t.Error(v)
	}
	if !slices.Equal(rep.Targets, images) {
		t.Errorf("Dockerfile targets %v, want %v", rep.Targets, images)
	}
}

// TestImagesMatchTargets: build-images.sh builds every target, and every
// Sidekick Deployment runs an image the Dockerfile builds.
func TestImagesMatchTargets(t *testing.T) {
	script, err := os.ReadFile("../build-images.sh")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ALL=\(([^)]*)\)`).FindSubmatch(script)
	if m == nil {
		t.Fatal("build-images.sh: no ALL=(...) list")
	}
	all := strings.Fields(string(m[1]))
	slices.Sort(all)
	if !slices.Equal(all, images) {
		t.Errorf("build-images.sh builds %v, the Dockerfile has %v", all, images)
	}
	for _, o := range render(t, "overlays/production") {
		d, ok := o.Obj.(*appsv1.Deployment)
		if !ok {
			continue
		}
		for _, c := range slices.Concat(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers) {
			name, _, _ := strings.Cut(strings.TrimPrefix(c.Image, "ghcr.io/sidekickhq/sidekick/"), ":")
			if !slices.Contains(images, name) {
				t.Errorf("%s runs %s, which no Dockerfile target builds", o.ID(), c.Image)
			}
		}
	}
}

func TestDockerfileRulesCatchProblems(t *testing.T) {
	const good = `ARG BASE=gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm@sha256:dc9ad6c05acc7a88e5b71bde60a5fe3bd4b9f0db209011711b464107438a8107 AS build
ARG TARGETOS TARGETARCH
ENV CGO_ENABLED=0
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -buildvcs=false -ldflags "-X github.com/sidekickhq/sidekick/platform/buildinfo.Version=1 -X github.com/sidekickhq/sidekick/platform/buildinfo.Commit=abc" -o /out/app ./cmd/app
FROM ${BASE} AS app
COPY --from=build /out/app /app
USER 65532:65532
ENTRYPOINT ["/app"]
`
	rep, err := policy.CheckDockerfile(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Violations) > 0 || !slices.Equal(rep.Targets, []string{"app"}) {
		t.Fatalf("good Dockerfile: targets %v, violations %v", rep.Targets, rep.Violations)
	}
	cases := []struct {
		name, old, new, rule string
	}{
		{"base by tag only", "static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639", "static-debian12:nonroot", policy.RuleBasePinned},
		{"builder by tag only", "golang:1.26.8-bookworm@sha256:dc9ad6c05acc7a88e5b71bde60a5fe3bd4b9f0db209011711b464107438a8107", "golang:1.26.8-bookworm", policy.RuleBasePinned},
		{"no USER", "USER 65532:65532\n", "", policy.RuleNonRootUser},
		{"USER root", "USER 65532:65532", "USER 0", policy.RuleNonRootUser},
		{"USER by name", "USER 65532:65532", "USER nonroot", policy.RuleNonRootUser},
		{"secret in ENV", "ENV CGO_ENABLED=0", "ENV CGO_ENABLED=0 SIDEKICK_SLACK_BOT_TOKEN=xoxb-123", policy.RuleBakedSecret},
		{"secret in ARG default", "AS app\n", "AS app\nARG DB_PASSWORD=hunter2\n", policy.RuleBakedSecret},
		{"shell-form ENTRYPOINT", `ENTRYPOINT ["/app"]`, "ENTRYPOINT /app", policy.RuleEntrypoint},
		{"cgo on", "ENV CGO_ENABLED=0", "ENV CGO_ENABLED=1", policy.RuleStaticStamps},
		{"no build info", "buildinfo.Commit=abc", "", policy.RuleStaticStamps},
		{"build stage emulated", "FROM --platform=$BUILDPLATFORM golang", "FROM golang", policy.RuleCrossCompile},
		{"GOARCH not from the target", "GOARCH=${TARGETARCH} ", "", policy.RuleCrossCompile},
		{"TARGETOS not declared", "ARG TARGETOS TARGETARCH", "ARG TARGETARCH", policy.RuleCrossCompile},
		{"final image pinned to a platform", "FROM ${BASE} AS app", "FROM --platform=linux/amd64 ${BASE} AS app", policy.RuleCrossCompile},
		{"build paths in the binary", " -trimpath", "", policy.RuleReproducible},
		{"VCS stamping", " -buildvcs=false", "", policy.RuleReproducible},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			broken := strings.Replace(good, tc.old, tc.new, 1)
			if broken == good {
				t.Fatalf("mutation %q changed nothing", tc.old)
			}
			rep, err := policy.CheckDockerfile(strings.NewReader(broken))
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range rep.Violations {
				if v.Rule == tc.rule {
					t.Logf("caught: %s", v)
					return
				}
			}
			t.Fatalf("want a %s violation, got %v", tc.rule, rep.Violations)
		})
	}
}

// TestBuildScript: build-images.sh cross-builds both platforms with SBOM
// and provenance attestations when pushing, pins image timestamps to
// SOURCE_DATE_EPOCH, and builds for the engine's platform alone when not
// pushing (the classic image store holds one platform per tag).
func TestBuildScript(t *testing.T) {
	dryRun := func(env ...string) string {
		t.Helper()
		cmd := exec.Command("bash", "../build-images.sh", "triage")
		cmd.Env = append(os.Environ(), append([]string{"DRY_RUN=1", "VERSION=v9.9.9", "COMMIT=abc123", "SOURCE_DATE_EPOCH=1700000000", "PUSH=", "PLATFORM="}, env...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("build-images.sh %v: %v\n%s", env, err, out)
		}
		return string(out)
	}
	pushed := dryRun("PUSH=1")
	for _, want := range []string{
		"docker buildx build ", "--platform linux/amd64,linux/arm64", "--sbom=true", "--provenance=mode=max",
		"--build-arg SOURCE_DATE_EPOCH=1700000000", "--build-arg VERSION=v9.9.9", "--build-arg COMMIT=abc123",
		"--target triage", "rewrite-timestamp=true", "push=true", "name=ghcr.io/sidekickhq/sidekick/triage:v9.9.9",
	} {
		if !strings.Contains(pushed, want) {
			t.Errorf("PUSH=1: no %q in\n%s", want, pushed)
		}
	}
	local := dryRun()
	for _, want := range []string{"type=docker,rewrite-timestamp=true", "--build-arg SOURCE_DATE_EPOCH=1700000000"} {
		if !strings.Contains(local, want) {
			t.Errorf("local build: no %q in\n%s", want, local)
		}
	}
	if strings.Contains(local, "--platform") || strings.Contains(local, "push=true") {
		t.Errorf("local build: want the engine's platform and no push:\n%s", local)
	}
}

// TestLicenseMatchesImageLabel: the images say Apache-2.0, and the
// repository carries that licence's text.
func TestLicenseMatchesImageLabel(t *testing.T) {
	df, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`org\.opencontainers\.image\.licenses="([^"]+)"`).FindSubmatch(df)
	if m == nil || string(m[1]) != "Apache-2.0" {
		t.Fatalf("Dockerfile licence label %q, want Apache-2.0", m)
	}
	lic, err := os.ReadFile("../../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(string(lic)), " ")
	for _, want := range []string{
		"Apache License Version 2.0, January 2004 http://www.apache.org/licenses/",
		"TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
		"9. Accepting Warranty or Additional Liability.",
		"END OF TERMS AND CONDITIONS",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("LICENSE is not the Apache License 2.0 text: no %q", want)
		}
	}
}

// TestDockerignoreNamesRealPaths: every plain path Dockerfile.dockerignore
// leaves out of the build context is in the repository or is one .gitignore
// names (made by a build or a dev run); a stale entry hides a mistake.
func TestDockerignoreNamesRealPaths(t *testing.T) {
	raw, err := os.ReadFile("../docker/Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	gitignore, err := os.ReadFile("../../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		p := strings.TrimSpace(line)
		if p == "" || strings.HasPrefix(p, "#") || strings.ContainsAny(p, "*?[!") {
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", p)); err == nil {
			continue
		}
		if regexp.MustCompile(`(?m)^/?` + regexp.QuoteMeta(p) + `/?$`).Match(gitignore) {
			continue
		}
		t.Errorf("Dockerfile.dockerignore: %s is neither in the repository nor in .gitignore", p)
	}
}
