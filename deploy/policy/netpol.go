package policy

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Ports the network rules care about.
const (
	portDNS      = 53
	portHTTPS    = 443
	portSMTP     = 587
	portSMTPS    = 465
	portNATS     = 4222
	portPostgres = 5432
	portHTTP     = 8080
	portGRPC     = 9090
)

// consoleCalls are the gRPC servers the console calls (SIDEKICK_TRIAGE_ADDR,
// SIDEKICK_ROTATION_ADDR); it may reach no other.
var consoleCalls = []string{"triage", "rotation"}

// callsProviders are the services that call a provider's HTTPS API, and
// what for.
var callsProviders = map[string]string{
	"notifier":      "Slack, PagerDuty, webhooks",
	"ingest-slack":  "Slack's Web API: authors, permalinks, replies",
	"ingest-github": "GitHub's API: replies as comments, redeliveries",
}

// sendsEmail are the services that submit email to an SMTP relay: notifier
// its notifications, ingest-email the replies to customers.
var sendsEmail = map[string]bool{"notifier": true, "ingest-email": true}

// optionalErrorReporting is the policy opening 443 for Sentry error
// reports, which an installation without a DSN deletes.
const optionalErrorReporting = "allow-error-reporting"

// checkNetworkPolicies requires a default deny and, for every Sidekick
// workload, exactly the traffic its service needs on the ports that matter:
// DNS for everyone; NATS for every service, and for the console exactly
// when its live updates are on (SIDEKICK_CONSOLE_LIVE=true: it watches
// conversation events), whose gRPC goes to triage and rotation and no
// other server; Postgres for services
// with a database and for no other; 443 out for whoever calls a
// provider's API (notifier, ingest-slack, ingest-github) and 587 and 465
// for whoever sends email (notifier, ingest-email's replies), for nobody
// else; HTTP in from the ingress controller for ingest and the console
// only; gRPC in for gRPC services.
//
// A provider's 443 must come from a policy of its own, not from
// allow-error-reporting, which the docs say to delete when no Sentry DSN is
// set.
func (c *checker) checkNetworkPolicies() {
	var pols []*networkingv1.NetworkPolicy
	for _, o := range c.objs {
		if p, ok := o.Obj.(*networkingv1.NetworkPolicy); ok {
			pols = append(pols, p)
		}
	}
	if !slices.ContainsFunc(pols, isDefaultDeny) {
		c.fail("NetworkPolicy/*", RuleNetworkPolicy, "no default deny (empty podSelector, Ingress and Egress, no rules)")
	}
	for _, w := range c.workloads {
		if !w.sidekick {
			continue
		}
		var mine []*networkingv1.NetworkPolicy
		for _, p := range pols {
			if selects(&p.Spec.PodSelector, w.labels) {
				mine = append(mine, p)
			}
		}
		need := func(ok bool, what string) {
			if !ok {
				c.fail(w.id, RuleNetworkPolicy, "%s", what)
			}
		}
		need(egressAllows(mine, corev1.ProtocolUDP, portDNS), "no egress to DNS (UDP 53)")
		console := w.name == "console"
		if console {
			live := false
			for _, ctr := range w.spec.Containers {
				v, _ := c.envValue(ctr, "SIDEKICK_CONSOLE_LIVE")
				live = live || v == "true"
			}
			switch nats := egressAllows(mine, corev1.ProtocolTCP, portNATS); {
			case live && !nats:
				c.fail(w.id, RuleNetworkPolicy, "no egress to NATS (TCP 4222) though SIDEKICK_CONSOLE_LIVE=true: live updates need conversation events")
			case !live && nats:
				c.fail(w.id, RuleNetworkPolicy, "egress to NATS (TCP 4222) without SIDEKICK_CONSOLE_LIVE=true: the console has nothing to do there")
			}
			c.checkConsoleGRPC(w, mine, pols)
		} else {
			need(egressAllows(mine, corev1.ProtocolTCP, portNATS), "no egress to NATS (TCP 4222)")
		}
		usesDB, servesGRPC := false, false
		for _, ctr := range w.spec.Containers {
			usesDB = usesDB || hasEnv(ctr, "SIDEKICK_DATABASE_URL")
			servesGRPC = servesGRPC || hasPort(ctr, "grpc")
		}
		if usesDB {
			need(egressAllows(mine, corev1.ProtocolTCP, portPostgres), "uses a database but has no egress to TCP 5432")
		} else if egressAllows(mine, corev1.ProtocolTCP, portPostgres) {
			c.fail(w.id, RuleNetworkPolicy, "egress to TCP 5432 (Postgres) without a database of its own")
		}
		if servesGRPC {
			need(ingressAllows(mine, portGRPC, nil), "serves gRPC but no ingress to TCP 9090 is allowed")
		}
		if w.labels[grpcClientLabel] == "true" {
			need(egressAllows(mine, corev1.ProtocolTCP, portGRPC), "labelled a gRPC client but has no egress to TCP 9090")
		}
		// What each service reaches outside the cluster without the
		// optional error-reporting policy.
		own := slices.DeleteFunc(slices.Clone(mine), func(p *networkingv1.NetworkPolicy) bool { return p.Name == optionalErrorReporting })
		if why, ok := callsProviders[w.name]; ok {
			need(egressAllows(own, corev1.ProtocolTCP, portHTTPS), w.name+" has no egress to TCP 443 ("+why+") but allow-error-reporting's, which is optional")
		}
		if sendsEmail[w.name] {
			need(egressAllows(own, corev1.ProtocolTCP, portSMTP), w.name+" has no egress to TCP 587 (SMTP submission)")
			need(egressAllows(own, corev1.ProtocolTCP, portSMTPS), w.name+" has no egress to TCP 465 (SMTP with implicit TLS)")
		} else if egressAllows(mine, corev1.ProtocolTCP, portSMTP) || egressAllows(mine, corev1.ProtocolTCP, portSMTPS) {
			c.fail(w.id, RuleNetworkPolicy, "egress to TCP 587 or 465 (SMTP) is for the services that send email only (notifier, ingest-email)")
		}
		fromIngress := map[string]string{nsNameLabel: c.opt.IngressNamespace}
		switch {
		case w.labels[componentLabel] == "ingest":
			need(ingressAllows(mine, portHTTP, fromIngress), "ingest service not reachable on TCP 8080 from namespace "+c.opt.IngressNamespace)
		case console:
			need(ingressAllows(mine, portHTTP, fromIngress), "console not reachable on TCP 8080 from namespace "+c.opt.IngressNamespace)
		case ingressAllows(mine, portHTTP, fromIngress):
			c.fail(w.id, RuleNetworkPolicy, "reachable on TCP 8080 from the ingress controller, which only ingest and the console need")
		}
	}
}

// checkConsoleGRPC: the console's egress reaches the gRPC port of triage and
// rotation, their ingress admits it, and its egress reaches no other gRPC
// server (notifier, say).
func (c *checker) checkConsoleGRPC(console workload, mine, pols []*networkingv1.NetworkPolicy) {
	for _, w := range c.workloads {
		if !w.sidekick || !slices.ContainsFunc(w.spec.Containers, func(ctr corev1.Container) bool { return hasPort(ctr, "grpc") }) {
			continue
		}
		out := egressReaches(mine, portGRPC, w)
		if !slices.Contains(consoleCalls, w.name) {
			if out {
				c.fail(console.id, RuleNetworkPolicy, "egress to %s's gRPC (TCP 9090): the console calls %v only", w.name, consoleCalls)
			}
			continue
		}
		var theirs []*networkingv1.NetworkPolicy
		for _, p := range pols {
			if selects(&p.Spec.PodSelector, w.labels) {
				theirs = append(theirs, p)
			}
		}
		if !out {
			c.fail(console.id, RuleNetworkPolicy, "no egress to %s's gRPC (TCP 9090)", w.name)
		}
		if !ingressAdmits(theirs, portGRPC, console) {
			c.fail(console.id, RuleNetworkPolicy, "%s's ingress does not admit the console on TCP 9090", w.name)
		}
	}
}

func isDefaultDeny(p *networkingv1.NetworkPolicy) bool {
	s := p.Spec
	return len(s.PodSelector.MatchLabels) == 0 && len(s.PodSelector.MatchExpressions) == 0 &&
		slices.Contains(s.PolicyTypes, networkingv1.PolicyTypeIngress) &&
		slices.Contains(s.PolicyTypes, networkingv1.PolicyTypeEgress) &&
		len(s.Ingress) == 0 && len(s.Egress) == 0
}

func hasType(p *networkingv1.NetworkPolicy, t networkingv1.PolicyType) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		// Unset: Ingress always, Egress when egress rules exist.
		return t == networkingv1.PolicyTypeIngress || len(p.Spec.Egress) > 0
	}
	return slices.Contains(p.Spec.PolicyTypes, t)
}

// portsAllow: no ports means every port; a port without a number means
// every port of that protocol; a protocol defaults to TCP.
func portsAllow(ports []networkingv1.NetworkPolicyPort, proto corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		pp := corev1.ProtocolTCP
		if p.Protocol != nil {
			pp = *p.Protocol
		}
		if pp != proto {
			continue
		}
		if p.Port == nil {
			return true
		}
		lo := p.Port.IntVal
		hi := lo
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if lo != 0 && port >= lo && port <= hi {
			return true
		}
	}
	return false
}

// peerSelects: a rule's peer, in a policy of namespace polNS, covers the
// pods of namespace ns with these labels. A namespace is known by its
// kubernetes.io/metadata.name only; an ipBlock counts only as 0.0.0.0/0.
func peerSelects(peer networkingv1.NetworkPolicyPeer, polNS, ns string, labels map[string]string) bool {
	if peer.IPBlock != nil {
		return peer.IPBlock.CIDR == "0.0.0.0/0"
	}
	if peer.NamespaceSelector != nil {
		if !selects(peer.NamespaceSelector, map[string]string{nsNameLabel: ns}) {
			return false
		}
	} else if polNS != ns {
		return false
	}
	return peer.PodSelector == nil || selects(peer.PodSelector, labels)
}

// egressReaches: some egress rule of the source's policies allows TCP port
// to the pods of dst.
func egressReaches(pols []*networkingv1.NetworkPolicy, port int32, dst workload) bool {
	for _, p := range pols {
		if !hasType(p, networkingv1.PolicyTypeEgress) {
			continue
		}
		for _, r := range p.Spec.Egress {
			if ruleMatches(r.Ports, r.To, p.Namespace, port, dst) {
				return true
			}
		}
	}
	return false
}

// ingressAdmits: some ingress rule of the destination's policies admits TCP
// port from the pods of src.
func ingressAdmits(pols []*networkingv1.NetworkPolicy, port int32, src workload) bool {
	for _, p := range pols {
		if !hasType(p, networkingv1.PolicyTypeIngress) {
			continue
		}
		for _, r := range p.Spec.Ingress {
			if ruleMatches(r.Ports, r.From, p.Namespace, port, src) {
				return true
			}
		}
	}
	return false
}

// ruleMatches: one rule (of a policy in namespace polNS) allows TCP port
// and, by its peers (none: everybody), the pods of w.
func ruleMatches(ports []networkingv1.NetworkPolicyPort, peers []networkingv1.NetworkPolicyPeer, polNS string, port int32, w workload) bool {
	if !portsAllow(ports, corev1.ProtocolTCP, port) {
		return false
	}
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if peerSelects(peer, polNS, w.ns, w.labels) {
			return true
		}
	}
	return false
}

func egressAllows(pols []*networkingv1.NetworkPolicy, proto corev1.Protocol, port int32) bool {
	for _, p := range pols {
		if !hasType(p, networkingv1.PolicyTypeEgress) {
			continue
		}
		for _, r := range p.Spec.Egress {
			if portsAllow(r.Ports, proto, port) {
				return true
			}
		}
	}
	return false
}

// ingressAllows: some rule admits TCP port from a source; with fromNS set,
// from pods of the namespace carrying those labels (a rule with no sources
// admits everyone, that namespace included).
func ingressAllows(pols []*networkingv1.NetworkPolicy, port int32, fromNS map[string]string) bool {
	for _, p := range pols {
		if !hasType(p, networkingv1.PolicyTypeIngress) {
			continue
		}
		for _, r := range p.Spec.Ingress {
			if !portsAllow(r.Ports, corev1.ProtocolTCP, port) {
				continue
			}
			if fromNS == nil || len(r.From) == 0 {
				return true
			}
			for _, peer := range r.From {
				if peer.NamespaceSelector != nil && peer.PodSelector == nil && selects(peer.NamespaceSelector, fromNS) {
					return true
				}
				if peer.IPBlock != nil && peer.IPBlock.CIDR == "0.0.0.0/0" {
					return true
				}
			}
		}
	}
	return false
}
