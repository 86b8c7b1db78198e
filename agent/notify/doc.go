// Package notify tells the backup provider, through its webhook, what happened to its
// certificates: one was applied to the app registration (and then the rotation is
// confirmed), a rotation failed, a certificate is about to expire. docs/contract.md
// ("Provider webhook") is the outside view; this page is how it is kept.
//
// # Standard Webhooks
//
// Every delivery is a POST of a JSON body {type, timestamp, data} with the headers of
// https://www.standardwebhooks.com/ (spec 1.0.0): webhook-id (the event's id, the same on
// every attempt), webhook-timestamp (this attempt, Unix seconds) and, with a secret
// (notify.secret_file), webhook-signature: "v1,<base64 HMAC-SHA256 of id.timestamp.body>",
// one per secret, so that the secret can change without a gap. Secrets are "whsec_" +
// base64 (the spec's form) or a raw string (ParseSecrets). Any 2xx is a delivery; a 3xx is
// a failure (not followed: the URL should be changed instead); 410 Gone stops deliveries
// until the agent restarts; anything else is retried, after Retry-After when the webhook
// says so.
//
// # The outbox
//
// Each event is recorded in the store's meta area under "notify-outbox/" + a 20-digit
// sequence number before its first attempt, body included, so that a kill -9 at any point
// loses nothing and every attempt posts the same bytes. Ids derive from what the event is
// about (the rotation; the rotation and when it failed; the app, certificate and
// threshold), so recording an event again after a crash keeps one, and a receiver that
// remembers ids drops the rare second delivery (at least once, never "exactly once").
//
// Run's pass: record an event for every applied and failed rotation that has none (the
// rotation's state is the durable fact, so a crash between the engine's write and the
// recording loses nothing); post what is due, oldest first, an event waiting while an
// earlier one of the same rotation (or certificate) is undelivered; after a delivery, mark
// the event delivered, then do what follows:
//
//   - certificate.applied: confirm the rotation, then remove the event. A crash between
//     delivery and confirmation leaves the event marked delivered: the next pass confirms
//     without posting again.
//   - rotation.failed: keep the delivered event while the rotation stays in that failure,
//     so that it is told once; remove it when the rotation is retried or rejected.
//   - certificate.expiring: remove it. The expiry checker's own state keeps it from firing
//     again.
//
// Backoff is per event and in memory (a restart tries at once), on the spec's schedule
// spanning days; an event is never given up. Status shows webhook_failing when one keeps
// failing, and webhook_unsigned while there is no secret.
//
// # Wiring
//
// New(Config) then Run(ctx) in the agent's group. The engine's OnOutcome calls
// RotationChanged when a rotation is applied, failed or rejected, so its event goes out at
// once; the next pass (Config.Rescan, default 1 minute) finds anything missed. The expiry
// checker calls Expiring. Problems joins the status problems.
package notify
