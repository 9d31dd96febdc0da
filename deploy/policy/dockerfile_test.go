package policy_test

import (
	"os"
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
FROM golang:1.26.8-bookworm@sha256:dc9ad6c05acc7a88e5b71bde60a5fe3bd4b9f0db209011711b464107438a8107 AS build
ENV CGO_ENABLED=0
RUN go build -ldflags "-X github.com/sidekickhq/sidekick/platform/buildinfo.Version=1 -X github.com/sidekickhq/sidekick/platform/buildinfo.Commit=abc" -o /out/app ./cmd/app
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
