module github.com/sidekickhq/sidekick/services/rotation

go 1.26.8

require (
	github.com/sidekickhq/sidekick/platform v0.0.0
	github.com/sidekickhq/sidekick/proto v0.0.0
)

require gopkg.in/yaml.v3 v3.0.1

replace (
	github.com/sidekickhq/sidekick/platform => ../../platform
	github.com/sidekickhq/sidekick/proto => ../../proto
)
