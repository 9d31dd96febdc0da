package console

import (
	"net/http"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	triagev1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/triage/v1"
)

// CustomerPageSize is how many of a customer's conversations the
// customer page lists, newest first.
const CustomerPageSize = 200

// customerData is the customer page.
type customerData struct {
	C *triagev1.Customer
	// Conversations are every channel's, in triage's order.
	Conversations []*supportv1.Conversation
	Open          int
	// More is true when the customer has more conversations than shown.
	More bool
	Dir  directory
}

// customer is GET /console/customers/{id}: the customer's organisation,
// tier and why, plan and revenue, identities, and their conversations
// across channels.
func (s *Service) customer(w http.ResponseWriter, r *http.Request, v *visitor) {
	id := r.PathValue("id")
	ctx, cancel := s.call(r.Context())
	defer cancel()
	c, err := s.deps.Customers.GetCustomer(ctx, &triagev1.GetCustomerRequest{Id: id})
	if err != nil {
		s.rpcError(w, r, v, "Loading customer "+id, err)
		return
	}
	list, err := s.deps.Conversations.ListConversations(ctx, &triagev1.ListConversationsRequest{CustomerId: id, PageSize: CustomerPageSize})
	if err != nil {
		s.rpcError(w, r, v, "Listing "+id+"'s conversations", err)
		return
	}
	d := customerData{C: c.GetCustomer(), Conversations: list.GetConversations(), More: list.GetNextPageToken() != "", Dir: s.directory(r.Context(), false)}
	for _, conv := range d.Conversations {
		if conv.GetStatus() != supportv1.ConversationStatus_CONVERSATION_STATUS_CLOSED {
			d.Open++
		}
	}
	s.render(w, r, http.StatusOK, "customer", v, d)
}

// RelatedSize is how many related conversations a conversation page shows.
const RelatedSize = 5

// relatedQuery is a search for conversations sharing words with c's
// subject: any of them (web search syntax "a or b"), so that the best
// matches share the most.
func relatedQuery(c *supportv1.Conversation) string {
	seen := map[string]bool{}
	var words []string
	for _, w := range strings.FieldsFunc(c.GetSubject(), func(r rune) bool {
		return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r > 127)
	}) {
		w = strings.ToLower(strings.Trim(w, "-_"))
		// Words of one or two letters match too much to tell.
		if len(w) < 3 || seen[w] || len(words) == 12 {
			continue
		}
		seen[w] = true
		words = append(words, w)
	}
	return strings.Join(words, " or ")
}

// related finds up to RelatedSize earlier conversations like c, best
// first; none when the subject gives nothing to search for or triage
// cannot be asked (the page works without them).
func (s *Service) related(r *http.Request, c *supportv1.Conversation) []*triagev1.SearchHit {
	q := relatedQuery(c)
	if q == "" {
		return nil
	}
	ctx, cancel := s.call(r.Context())
	defer cancel()
	resp, err := s.deps.Conversations.SearchConversations(ctx, &triagev1.SearchConversationsRequest{Query: q,
		Filter: &triagev1.ListConversationsRequest{PageSize: RelatedSize + 1}})
	if err != nil {
		if status.Code(err) != codes.InvalidArgument {
			s.deps.Logger.Warn("console: related conversations", "conversation", c.GetId(), "error", err)
		}
		return nil
	}
	var out []*triagev1.SearchHit
	for _, h := range resp.GetHits() {
		if h.GetConversation().GetId() != c.GetId() && len(out) < RelatedSize {
			out = append(out, h)
		}
	}
	return out
}

// detail is one fact its channel reported about a conversation.
type detail struct{ Key, Value string }

// details are the attributes the channel sent with the conversation's
// messages (a Sentry issue's occurrences, first and last seen, culprit,
// level; a GitHub issue's state and labels), the newest value of each, in
// key order; the console's own marks left out.
func details(msgs []*supportv1.InboundMessage) []detail {
	latest := map[string]string{}
	for _, m := range msgs {
		for k, v := range m.GetAttributes() {
			if k == "edited" || k == "deleted" || v == "" {
				continue
			}
			latest[k] = v
		}
	}
	out := make([]detail, 0, len(latest))
	for k, v := range latest {
		out = append(out, detail{Key: strings.ReplaceAll(k, "_", " "), Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
