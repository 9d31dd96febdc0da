package classify

// DefaultRules returns the rules that follow the handbook's taxonomy:
// keyword and pattern lists per category (one point per distinct hit), and
// GitHub labels worth three points, enough to decide on their own. They
// carry no channel or Sentry project rules, which depend on the
// organisation (for instance `channels: ["slack:C0BILLING"]` for a billing
// channel, or `sentry_projects: [plugin-server]` for plugins).
func DefaultRules() Rules {
	r := Rules{Categories: []Rule{
		{Category: "performance", Keywords: []string{
			"slow", "slowly", "slowness", "sluggish", "laggy", "latency", "takes forever",
			"taking forever", "loading forever", "timeout", "timed out", "times out",
			"high cpu", "cpu usage", "memory usage", "out of memory", "oom", "memory leak",
			"page load", "load time", "loading time", "performance", "unresponsive",
			"spinning", "spinner", "bottleneck",
		}, Patterns: []string{
			`\b(?:takes?|taking|took)\s+(?:over\s+|more\s+than\s+|about\s+|around\s+|~)?\d+\s*(?:s|secs?|seconds?|mins?|minutes?)\b`,
			`\b50[234]\b|gateway time-?out`,
		}},
		{Category: "performance", Weight: 3, Labels: []string{"performance", "perf", "slow"}},

		{Category: "deployments", Keywords: []string{
			"self hosted", "self host", "self hosting", "selfhosted", "kubernetes", "k8s",
			"helm", "helm chart", "our instance", "our deployment", "on prem", "on premise",
			"on premises", "docker image", "clickhouse", "kafka", "postgres", "redis",
			"zookeeper", "pod", "pods",
		}},
		{Category: "deployments", Weight: 3, Labels: []string{"deployment", "self-hosted", "helm", "kubernetes"}},
		{Category: "deployments/scaling", Keywords: []string{
			"scaling", "scale up", "scale out", "autoscaling", "replicas", "more nodes",
			"horizontal", "throughput", "events per second", "ingestion lag", "lagging behind",
			"kafka lag", "capacity", "sharding", "shards", "million events",
		}},
		{Category: "deployments/setup", Keywords: []string{
			"install", "installing", "installation", "set up", "setting up", "fresh install",
			"first deploy", "getting started", "wont start", "won't start", "does not start",
			"crashloopbackoff", "environment variable", "env var", "ingress", "tls certificate",
			"values yaml", "helm install",
		}},
		{Category: "deployments/maintenance", Keywords: []string{
			"upgrade", "upgrading", "upgraded", "helm upgrade", "new version", "backup",
			"backups", "restore", "disk full", "disk space", "running out of space",
			"out of disk", "clean up", "cleanup", "ttl", "rotate", "downtime",
			"maintenance",
		}},
		{Category: "deployments/hobbyist", Keywords: []string{
			"hobby", "hobby deploy", "hobby deployment", "docker compose", "docker-compose",
			"single server", "one server", "droplet", "digitalocean", "vps",
			"raspberry pi", "side project", "personal project", "homelab",
		}},
		{Category: "deployments/migrations", Keywords: []string{
			"migrate", "migrating", "migration", "migrations", "move to cloud", "moving to cloud",
			"move from self hosted", "export all our data", "import our data",
			"async migration", "async migrations", "transfer our data",
		}},
		{Category: "deployments/managed-instances", Keywords: []string{
			"managed instance", "managed deployment", "private cloud", "dedicated instance",
			"you manage", "you host", "managed by you", "our managed", "single tenant",
		}},

		{Category: "instrumentation", Keywords: []string{
			"snippet", "sdk", "library", "js library", "javascript library", "npm",
			"tracking code", "capture", "capturing", "autocapture", "identify", "alias",
			"distinct id", "react native", "ios", "android", "flutter", "next js", "nextjs",
			"segment", "tag manager", "gtm", "init", "script tag", "ad blocker", "adblock",
			"cookie", "cookies", "not tracking", "not showing up", "events not showing",
			"pageview", "pageviews", "installing the snippet",
		}},
		{Category: "instrumentation", Weight: 3, Labels: []string{"sdk", "instrumentation", "library"}},

		{Category: "ux-confusion", Keywords: []string{
			"how do i", "how can i", "how to", "where do i", "where can i", "where is",
			"cant find", "can't find", "cannot find", "confused", "confusing", "not sure how",
			"not sure what", "doesnt make sense", "does not make sense", "what does",
			"what is the difference", "difference between", "unclear", "documentation", "docs",
			"is it possible to", "meaning of",
		}},
		{Category: "ux-confusion", Weight: 3, Labels: []string{"question", "docs", "documentation"}},

		{Category: "data-integrity", Keywords: []string{
			"missing events", "missing data", "data missing", "events missing", "lost events",
			"lost data", "data loss", "wrong numbers", "wrong count", "counts are off",
			"doesnt match", "don't match", "do not match", "does not match", "mismatch",
			"discrepancy", "discrepancies", "duplicate events", "duplicated", "duplicates",
			"double counting", "double counted", "inaccurate", "incorrect", "undercounting",
			"overcounting", "numbers are different", "dropped events", "gaps in the data",
		}},
		{Category: "data-integrity", Weight: 3, Labels: []string{"data integrity", "data-loss"}},

		{Category: "api", Keywords: []string{
			"api", "rest api", "endpoint", "endpoints", "api key", "personal api key",
			"rate limit", "rate limited", "rate limiting", "429", "401", "403",
			"json response", "curl", "pagination", "query api", "events api", "openapi",
		}, Patterns: []string{`/api/[a-z_]+`}},
		{Category: "api", Weight: 3, Labels: []string{"api"}},

		{Category: "plugins", Keywords: []string{
			"plugin", "plugins", "plugin server", "app server", "geoip", "bigquery export",
			"s3 export", "snowflake export", "redshift export", "export plugin",
			"transformation", "webhook destination", "data pipeline", "destination",
		}},
		{Category: "plugins", Weight: 3, Labels: []string{"plugins", "plugin", "apps"}},

		{Category: "recordings", Keywords: []string{
			"recording", "recordings", "session recording", "session recordings",
			"session replay", "replay", "replays", "rrweb", "playback", "screen recording",
			"blank recording", "recorded sessions",
		}},
		{Category: "recordings", Weight: 3, Labels: []string{"session recording", "recordings", "replay"}},

		{Category: "toolbar", Keywords: []string{
			"toolbar", "heatmap", "heatmaps", "click map", "authorized urls",
			"authorized domains", "launch toolbar", "inspect element", "action toolbar",
		}},
		{Category: "toolbar", Weight: 3, Labels: []string{"toolbar", "heatmaps"}},

		{Category: "feature-flags", Keywords: []string{
			"feature flag", "feature flags", "flag", "flags", "rollout", "roll out",
			"rollout percentage", "multivariate", "variant", "variants", "experiment",
			"experiments", "a b test", "ab test", "isfeatureenabled", "getfeatureflag",
			"bootstrap", "release condition", "release conditions",
		}},
		{Category: "feature-flags", Weight: 3, Labels: []string{"feature flags", "feature-flags", "experiments"}},

		{Category: "not-a-bug", Keywords: []string{
			"working as intended", "works as intended", "expected behaviour", "expected behavior",
			"by design", "user error", "my mistake", "my bad", "never mind", "nevermind",
			"figured it out", "false alarm", "not a bug", "ignore this", "my fault",
			"sorted it out", "resolved it",
		}},
		{Category: "not-a-bug", Weight: 3, Labels: []string{"invalid", "wontfix", "not a bug", "works as intended"}},

		{Category: "billing", Keywords: []string{
			"invoice", "invoices", "billing", "billed", "bill", "charged", "charge",
			"charges", "credit card", "card declined", "refund", "subscription", "pricing",
			"price", "payment", "receipt", "overcharged", "quota", "billing limit",
			"usage limit", "vat", "tax id", "downgrade", "cancel our plan", "paid plan",
			"free plan", "free tier", "discount", "startup program",
		}},
		{Category: "billing", Weight: 3, Labels: []string{"billing"}},

		{Category: "feature-request", Keywords: []string{
			"feature request", "would be great", "would be nice", "would love", "it would be useful",
			"any plans", "are there plans", "on the roadmap", "roadmap", "please add",
			"could you add", "can you add", "wish", "suggestion", "feature idea",
			"it would help", "do you plan to", "is there a way to", "support for",
		}},
		{Category: "feature-request", Weight: 3, Labels: []string{"enhancement", "feature request", "feature"}},

		{Category: "business", Keywords: []string{
			"partnership", "partner", "partners", "partner program", "co marketing",
			"collaboration", "collaborate", "sponsor", "sponsorship", "reseller", "resell",
			"affiliate", "integration partner", "marketplace listing", "joint webinar",
			"case study", "press release", "journalist", "podcast", "interview", "conference",
			"investment", "investor", "acquisition", "marketing agency", "digital agency",
		}},
	}}
	r.Spam.Phrases = []string{
		"guest post", "guest posting", "backlink", "backlinks", "seo services", "seo audit",
		"rank your website", "first page of google", "increase your traffic", "website traffic",
		"web design services", "app development services", "development agency", "outsource",
		"outsourcing", "lead generation", "leads list", "email list", "contact list",
		"crypto", "bitcoin", "forex", "casino", "viagra", "loan", "wire transfer",
		"investment opportunity", "limited time offer", "act now", "click here", "claim your",
		"you have won", "winner", "congratulations", "dear sir", "dear sir madam",
		"i came across your website", "verify your account", "account will be suspended",
		"password expires", "unsubscribe", "100 free", "risk free",
	}
	return r.WithDefaults()
}
