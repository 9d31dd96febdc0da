package engine

import (
	"context"
	"time"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
	"github.com/sidekickhq/sidekick/services/triage/internal/conv"
	"github.com/sidekickhq/sidekick/services/triage/internal/store"
)

// reference records the alerts text refers to by their Sentry issue links
// as references of customer conversation c (alerts refer to nothing). An
// alert and a conversation referring to it are linked both ways, whichever
// came first.
func (e *Engine) reference(ctx context.Context, p *pipe, c *supportv1.Conversation, text string, now time.Time) error {
	if conv.IsAlertConversation(c) {
		return nil
	}
	keys := conv.AlertReferences(text)
	if len(keys) == 0 {
		return nil
	}
	return store.AddAlertReferences(ctx, p, c.GetId(), keys, now)
}
