"""Webhooks: signed deliveries of the change feed to HTTP receivers (`[webhooks.NAME]`).

Each configured webhook is one feed reader with its own cursor (`feed_cursors`, consumer
"webhook:NAME"). Its worker (one per webhook, in the daemon; one replica at a time holds
the webhook's lock) reads the feed in order and POSTs each change it subscribes to as a
Standard Webhooks message (`webhook-id`, `webhook-timestamp`, `webhook-signature`, signed
with the `standardwebhooks` package). Invariants:

- At-least-once and in feed order (so in order per resource): the cursor moves past a change
  only after a 2xx answer or after the change was dead-lettered; a crash re-sends it with
  the same `webhook-id`, so receivers de-duplicate by it.
- A failure is retried after `backoff` seconds, doubled each time up to `max_backoff` (a
  `Retry-After` answer is honoured up to that cap); the failure count survives restarts.
- After `max_attempts` failures the event goes to `webhook_dead_letters` (shown by `syncd
  webhooks`, counted in metrics) and delivery goes on with the next change.
- A new webhook starts at the feed's head: it receives changes committed after it was added.

Modules: `events` (payloads, pure), `sender` (signing and HTTP; the only network code),
`worker` (the delivery loop), `supervisor` (the daemon's workers), `status` (what the CLI
and metrics show).
"""
