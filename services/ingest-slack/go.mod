module github.com/sidekickhq/sidekick/services/ingest-slack

go 1.26.8

require (
	github.com/sidekickhq/sidekick/platform v0.0.0
	github.com/sidekickhq/sidekick/proto v0.0.0
)

replace (
	github.com/sidekickhq/sidekick/platform => ../../platform
	github.com/sidekickhq/sidekick/proto => ../../proto
)
