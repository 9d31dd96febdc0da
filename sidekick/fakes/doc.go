// Package fakes holds wire-level stand-ins for everything Sidekick talks
// to, for end-to-end tests and local demos.
//
// Receivers record what Sidekick sent them and answer as the real service
// documents it:
//
//   - Slack: the Web API methods Sidekick calls (chat.postMessage with
//     threads, metadata and Slack's limits, conversations.replies,
//     chat.update, users.info, chat.getPermalink, auth.test);
//   - GitHubAPI: issue comments (REST), discussion comments (GraphQL) and
//     GitHub App installation tokens, with GitHub's limits and errors;
//   - SMTP: a submission server that captures every message, with
//     STARTTLS required when started by NewSMTPStartTLS;
//   - PagerDuty: the Events API v2 enqueue endpoint;
//   - Webhook: a receiver of the notifier's signed webhook channel.
//
// Senders play the providers that call Sidekick, signing their requests
// the way the provider does:
//
//   - SlackEvents: Events API requests (X-Slack-Signature), one attempt a
//     call, retries marked with X-Slack-Retry-Num as Slack marks them, and
//     a customer's message in a Slack Connect channel;
//   - GitHub: repository webhooks (X-Hub-Signature-256) and the issues and
//     issue_comment payloads;
//   - Sentry: integration-platform webhooks (Sentry-Hook-Signature) and
//     the error and event_alert payloads;
//   - SendMail: a mail relay delivering a raw RFC 5322 message over SMTP.
//
// Every receiver is safe for concurrent use and is started by its New
// function on a free loopback port; Close stops it. The reply receivers
// count deliveries per outbound id (Slack.MetadataPosts,
// GitHubAPI.CommentsContaining, SMTP.WithMessageID) and can run a hook
// between storing a delivery and answering it (OnPost, OnComment,
// OnMessage), which is where a crash hurts most.
package fakes
