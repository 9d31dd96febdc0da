// Package natsauth is the one definition of who may do what on NATS: a
// user per service, each allowed to publish and subscribe only what that
// service does (its own subjects, the JetStream API of its own durable
// consumers, key-value buckets and object stores, acknowledgements of its
// own deliveries, replies to its own inbox), and an admin user that
// provisions streams and runs the operator's CLI.
//
// ServerConfig renders it as nats-server configuration. The Helm values of
// deploy/nats embed that text (a deploy test fails when they differ) and
// the tests load the same text into an embedded server, so production and
// tests cannot drift apart. Each user authenticates with an NKey: the
// server configuration refers to the public keys through variables
// (NKeyVar) defined in a file the servers include from a Secret (Keys),
// and each service signs with its seed (SIDEKICK_NATS_NKEY_SEED).
//
// Service users may read the configuration of the streams but never
// create, update, purge or delete one: a stream update can shrink limits
// and so discard messages as surely as a delete. Streams, buckets and
// object stores are made by the admin user, through each service's
// `provision` step (platform/app).
package natsauth

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nats-io/nkeys"
)

// Stream names, as in platform/bus (this package imports nothing of the
// bus, so that the deploy tests can read it without the NATS client).
const (
	streamInbound       = "SUPPORT_INBOUND"
	streamConversations = "SUPPORT_CONVERSATIONS"
	streamActions       = "SUPPORT_ACTIONS"
	streamRotation      = "SUPPORT_ROTATION"
	streamNotify        = "SUPPORT_NOTIFY"
	streamDeadLetter    = "SUPPORT_DEADLETTER"
	streamOutbound      = "SUPPORT_OUTBOUND"
	streamSentry        = "SENTRY_OCCURRENCES"
	// contentStore holds large inbound emails and their attachments.
	contentStore = "SUPPORT_INBOUND_CONTENT"
)

// configApplied is where rotation announces an applied organisation file
// (orgwatch.Subject).
const configApplied = "support.rotation.config_applied"

// SupportStreams are the streams every service checks at start.
var SupportStreams = []string{streamInbound, streamConversations, streamActions, streamRotation, streamNotify, streamOutbound, streamDeadLetter}

// Admin is the user that provisions streams, buckets and object stores and
// that the operator's CLI (dead letters, events) and nats-box use: every
// subject of the account.
const Admin = "admin"

// Consumer is a durable pull consumer a service creates and reads.
type Consumer struct {
	Stream, Durable string
	// Filter is the consumer's one filter subject, which the server then
	// checks against the create request's subject; empty for a consumer
	// with several filters, whose filters permissions cannot pin.
	Filter string
}

// User is what one service may do.
type User struct {
	// Name is the service's name (ingest-slack, triage, …).
	Name string
	// Publish are the subjects it publishes events on (dead letters are
	// added: support.deadletter.<Name>).
	Publish []string
	// Consumers are its durable pull consumers.
	Consumers []Consumer
	// KV are the key-value buckets it reads and writes.
	KV []string
	// ObjectsWrite and ObjectsRead are the object stores it puts objects
	// into and reads them from.
	ObjectsWrite, ObjectsRead []string
	// Serves are the core NATS request subjects it answers (the dead-letter
	// replays of platform/bus, sidekick.replay.<Name>); the user may then
	// answer the requests it receives, and only those (allow_responses).
	Serves []string
	// Subscribe are subjects it watches with plain (core NATS)
	// subscriptions, at most once, without a stream consumer: the
	// console's live updates, the organisation file applied.
	Subscribe []string
	// LastOf are streams it reads single messages of (the last one on a
	// subject): the organisation file last applied, for
	// platform/orgfile/orgwatch.
	LastOf []string
}

// Users is every service's user, in a fixed order.
func Users() []User {
	outbound := func(service, channel string) (Consumer, string, string) {
		return Consumer{Stream: streamOutbound, Durable: service + "-outbound-" + channel, Filter: "support.outbound." + channel},
			"support.outbound." + channel + ".receipt",
			"OUTBOUND_" + strings.ToUpper(channel)
	}
	slackOut, slackReceipt, slackKV := outbound("ingest-slack", "slack")
	emailOut, emailReceipt, emailKV := outbound("ingest-email", "email")
	githubOut, githubReceipt, githubKV := outbound("ingest-github", "github")
	return []User{
		{
			Name: "ingest-slack",
			// Messages, and the buttons of notifications (ack, escalate,
			// close) as actions.
			Publish:   []string{"support.inbound.slack", "support.action.ack", "support.action.escalate", "support.action.close", slackReceipt},
			Consumers: []Consumer{slackOut},
			KV:        []string{slackKV},
			Serves:    []string{replay("ingest-slack")},
		},
		{
			Name:         "ingest-email",
			Publish:      []string{"support.inbound.email", emailReceipt},
			Consumers:    []Consumer{emailOut},
			KV:           []string{emailKV},
			ObjectsWrite: []string{contentStore},
			Serves:       []string{replay("ingest-email")},
		},
		{
			Name:      "ingest-github",
			Publish:   []string{"support.inbound.github", githubReceipt},
			Consumers: []Consumer{githubOut},
			KV:        []string{githubKV},
			Serves:    []string{replay("ingest-github")},
		},
		{
			Name: "ingest-sentry",
			// Webhooks wait in SENTRY_OCCURRENCES until coalesced per issue.
			Publish:   []string{"support.inbound.sentry", "sentry.occurrences.>"},
			Consumers: []Consumer{{Stream: streamSentry, Durable: "ingest-sentry-coalescer"}},
			Serves:    []string{replay("ingest-sentry")},
			// The organisation file applied through rotation (orgwatch):
			// its sentry.ownership rules.
			Subscribe: []string{configApplied},
			LastOf:    []string{streamRotation},
		},
		{
			Name: "triage",
			// Its outbox: conversation events and replies to send.
			Publish: []string{"support.conversation.>", "support.outbound.slack", "support.outbound.email", "support.outbound.github"},
			Consumers: []Consumer{
				{Stream: streamInbound, Durable: "triage-inbound", Filter: "support.inbound.>"},
				{Stream: streamRotation, Durable: "triage-rotation"},
				{Stream: streamActions, Durable: "triage-actions"},
				// Notifier's acknowledgements: when an alert was first
				// acknowledged, however it was.
				{Stream: streamNotify, Durable: "triage-acks", Filter: "support.notify.acked"},
				{Stream: streamOutbound, Durable: "triage-receipts", Filter: "support.outbound.*.receipt"},
			},
			ObjectsRead: []string{contentStore},
			// The organisation file applied through rotation (orgwatch).
			Subscribe: []string{configApplied},
			LastOf:    []string{streamRotation},
		},
		{
			Name:    "rotation",
			Publish: []string{"support.rotation.>"},
		},
		{
			Name:    "notifier",
			Publish: []string{"support.notify.>"},
			Consumers: []Consumer{
				{Stream: streamConversations, Durable: "notifier-conversations", Filter: "support.conversation.>"},
				{Stream: streamActions, Durable: "notifier-actions"},
				{Stream: streamRotation, Durable: "notifier-rotation"},
			},
			Subscribe: []string{configApplied},
			LastOf:    []string{streamRotation},
		},
		{
			Name: "console",
			// Live updates of the pages open in browsers: it watches
			// conversation events as they are published, and publishes
			// nothing.
			Subscribe: []string{"support.conversation.>"},
		},
	}
}

// replay is the subject on which a service replays its dead letters' raw
// requests for the CLI (bus.ReplaySubject).
func replay(service string) string { return "sidekick.replay." + service }

// Lookup returns the user of a service.
func Lookup(name string) (User, bool) {
	i := slices.IndexFunc(Users(), func(u User) bool { return u.Name == name })
	if i < 0 {
		return User{}, false
	}
	return Users()[i], true
}

// InboxPrefix is the prefix of a service's reply subjects (nats.go's
// CustomInboxPrefix). Each service subscribes to its own only: with the
// shared _INBOX.> any user could read the replies to another, pulled
// messages included.
func InboxPrefix(name string) string {
	return "_INBOX_" + strings.NewReplacer("-", "_", ".", "_").Replace(name)
}

// NKeyVar is the nats-server variable holding a user's public NKey, to
// which the server configuration refers (defined in keys.conf, Keys).
func NKeyVar(name string) string {
	return "SIDEKICK_NKEY_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// PublishAllow is every subject the user may publish on.
func (u User) PublishAllow() []string {
	p := append([]string(nil), u.Publish...)
	p = append(p, "support.deadletter."+u.Name)
	for _, s := range SupportStreams {
		p = append(p, "$JS.API.STREAM.INFO."+s)
	}
	for _, c := range u.Consumers {
		create := "$JS.API.CONSUMER.CREATE." + c.Stream + "." + c.Durable
		if c.Filter != "" {
			create += "." + c.Filter
		}
		p = append(p, create,
			"$JS.API.CONSUMER.INFO."+c.Stream+"."+c.Durable,
			"$JS.API.CONSUMER.MSG.NEXT."+c.Stream+"."+c.Durable,
			"$JS.ACK."+c.Stream+"."+c.Durable+".>")
		if !slices.Contains(SupportStreams, c.Stream) {
			p = append(p, "$JS.API.STREAM.INFO."+c.Stream)
		}
	}
	for _, st := range u.LastOf {
		p = append(p, "$JS.API.STREAM.MSG.GET."+st, "$JS.API.DIRECT.GET."+st, "$JS.API.DIRECT.GET."+st+".>")
	}
	for _, b := range u.KV {
		p = append(p, "$JS.API.STREAM.INFO.KV_"+b, "$KV."+b+".>",
			"$JS.API.DIRECT.GET.KV_"+b+".>", "$JS.API.STREAM.MSG.GET.KV_"+b)
	}
	for _, o := range slices.Concat(u.ObjectsWrite, u.ObjectsRead) {
		p = append(p, "$JS.API.STREAM.INFO.OBJ_"+o, "$JS.API.DIRECT.GET.OBJ_"+o+".>", "$JS.API.STREAM.MSG.GET.OBJ_"+o)
	}
	for _, o := range u.ObjectsWrite {
		p = append(p, "$O."+o+".>")
	}
	for _, o := range u.ObjectsRead {
		// Reading an object is an ordered consumer of its chunks.
		p = append(p, "$JS.API.CONSUMER.CREATE.OBJ_"+o, "$JS.API.CONSUMER.CREATE.OBJ_"+o+".>",
			"$JS.API.CONSUMER.DELETE.OBJ_"+o+".>", "$JS.FC.OBJ_"+o+".>")
	}
	return dedupe(p)
}

// SubscribeAllow is every subject the user may subscribe to: its inbox,
// the requests it serves and the subjects it watches.
func (u User) SubscribeAllow() []string {
	return slices.Concat([]string{InboxPrefix(u.Name) + ".>"}, u.Serves, u.Subscribe)
}

func dedupe(s []string) []string {
	out := s[:0]
	seen := map[string]bool{}
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// ServerConfig is the nats-server authorization block for every user: an
// NKey user per service with its permissions, and the admin user. Public
// keys are references to the variables NKeyVar names, which a file
// included before it defines (Keys.KeysConfig).
func ServerConfig() string {
	var b strings.Builder
	b.WriteString("# GENERATED by platform/natsauth (ServerConfig): one NKey user per Sidekick\n")
	b.WriteString("# service, limited to its own subjects, streams and buckets, and the admin user.\n")
	b.WriteString("# Public keys are variables of keys.conf (the Secret sidekick-nats-keys).\n")
	b.WriteString("authorization {\n  users = [\n")
	for _, u := range Users() {
		fmt.Fprintf(&b, "    # %s\n", u.Name)
		fmt.Fprintf(&b, "    {\n      nkey: $%s\n      permissions: {\n", NKeyVar(u.Name))
		writeList(&b, "publish", u.PublishAllow())
		writeList(&b, "subscribe", u.SubscribeAllow())
		if len(u.Serves) > 0 {
			b.WriteString("        allow_responses: true\n")
		}
		b.WriteString("      }\n    }\n")
	}
	fmt.Fprintf(&b, "    # %s: provisioning (each service's provision step), the sidekick CLI, nats-box\n", Admin)
	fmt.Fprintf(&b, "    {nkey: $%s}\n", NKeyVar(Admin))
	b.WriteString("  ]\n}\n")
	return b.String()
}

func writeList(b *strings.Builder, name string, subjects []string) {
	fmt.Fprintf(b, "        %s: {allow: [\n", name)
	for _, s := range subjects {
		fmt.Fprintf(b, "          %q\n", s)
	}
	b.WriteString("        ]}\n")
}

// Keys are an NKey pair per user: the seeds in files, as the services'
// Secrets hold them, and the public keys in a file of nats-server
// variables (KeysFile), as the NATS servers' Secret holds it.
type Keys struct {
	dir           string
	seeds, public map[string]string
}

// UserNames are the names of every user: each service's and Admin.
func UserNames() []string {
	names := []string{Admin}
	for _, u := range Users() {
		names = append(names, u.Name)
	}
	return names
}

// NewKeys makes a key pair for each of names (every user when none is
// given), writing each seed to dir/<user>.nk and the public keys to
// dir/keys.conf.
func NewKeys(dir string, names ...string) (*Keys, error) {
	if len(names) == 0 {
		names = UserNames()
	}
	k := &Keys{dir: dir, seeds: map[string]string{}, public: map[string]string{}}
	for _, name := range names {
		if name != Admin {
			if _, ok := Lookup(name); !ok {
				return nil, fmt.Errorf("nkey for %s: no such NATS user (want one of %s)", name, strings.Join(UserNames(), ", "))
			}
		}
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, fmt.Errorf("nkey for %s: %w", name, err)
		}
		seed, err := kp.Seed()
		if err != nil {
			return nil, fmt.Errorf("nkey for %s: %w", name, err)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("nkey for %s: %w", name, err)
		}
		path := filepath.Join(dir, name+".nk")
		if err := os.WriteFile(path, seed, 0o600); err != nil {
			return nil, fmt.Errorf("nkey for %s: %w", name, err)
		}
		k.seeds[name], k.public[name] = path, pub
	}
	if err := os.WriteFile(k.KeysFile(), []byte(k.KeysConfig()), 0o600); err != nil {
		return nil, fmt.Errorf("nkeys: %w", err)
	}
	return k, nil
}

// SeedFile is the file holding a user's seed (SIDEKICK_NATS_NKEY_SEED);
// empty for an unknown user.
func (k *Keys) SeedFile(name string) string { return k.seeds[name] }

// KeysFile is the file holding KeysConfig.
func (k *Keys) KeysFile() string { return filepath.Join(k.dir, "keys.conf") }

// KeysConfig is the public keys as the nats-server variables ServerConfig
// refers to: the file keys.conf of the Secret the NATS servers include.
func (k *Keys) KeysConfig() string {
	var b strings.Builder
	b.WriteString("# Sidekick's NATS users' public keys (platform/natsauth); the seeds are in\n")
	b.WriteString("# the services' Secrets.\n")
	names := make([]string, 0, len(k.public))
	for name := range k.public {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(&b, "%s = %q\n", NKeyVar(name), k.public[name])
	}
	return b.String()
}

// ServerConfig is a whole authorization configuration for a server
// outside Kubernetes (the tests', the chaos harness's), arranged as in
// production: the keys file included, then ServerConfig. It belongs in a
// configuration file in the keys' directory, where the include finds
// keys.conf.
func (k *Keys) ServerConfig() string {
	return "include \"keys.conf\"\n" + ServerConfig()
}

// WriteServerConfig writes ServerConfig to server.conf in the keys'
// directory and returns its path.
func (k *Keys) WriteServerConfig() (string, error) {
	path := filepath.Join(k.dir, "server.conf")
	if err := os.WriteFile(path, []byte(k.ServerConfig()), 0o600); err != nil {
		return "", fmt.Errorf("nats server configuration: %w", err)
	}
	return path, nil
}
