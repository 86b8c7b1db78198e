#!/bin/sh
# verify-webhook.sh checks one certagent webhook delivery the way a provider's receiver
# should (Standard Webhooks, https://www.standardwebhooks.com/): the signature in the
# webhook-signature header must be the HMAC-SHA256, with the shared secret, of
# "<webhook-id>.<webhook-timestamp>.<raw body>", and the timestamp must be within 5 minutes
# of now. It needs only sh, openssl, base64 and od. README.md, "Provider webhook", shows it;
# agent/notify's tests run it against real deliveries.
#
# Usage: verify-webhook.sh SECRET_FILE BODY_FILE WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE
#
#   SECRET_FILE  the secret certagent signs with (notify.secret_file): whsec_<base64>, or a
#                raw string; the first non-comment line is used
#   BODY_FILE    the request body exactly as received (do not parse and re-encode it)
#
# Exit 0: authentic. Exit 1: not (a message on standard error says why). Exit 2: usage.
# WEBHOOK_TOLERANCE (seconds, default 300) changes the allowed clock difference.
set -eu

[ "$#" -eq 5 ] || { echo "usage: $0 SECRET_FILE BODY_FILE WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE" >&2; exit 2; }
secret_file=$1 body=$2 id=$3 ts=$4 sigs=$5

secret=$(grep -v '^[[:space:]]*#' "$secret_file" | grep -v '^[[:space:]]*$' | head -n 1 | tr -d '\r' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')
case $secret in
whsec_*) key=$(printf '%s' "${secret#whsec_}" | base64 -d | od -An -v -tx1 | tr -d ' \n') ;;
*) key=$(printf '%s' "$secret" | od -An -v -tx1 | tr -d ' \n') ;;
esac
[ -n "$key" ] || { echo "verify-webhook: no secret in $secret_file" >&2; exit 2; }

case $ts in
'' | *[!0-9]*) echo "verify-webhook: webhook-timestamp '$ts' is not Unix seconds" >&2; exit 1 ;;
esac
now=$(date +%s)
skew=$((now - ts))
[ "$skew" -ge 0 ] || skew=$((-skew))
if [ "$skew" -gt "${WEBHOOK_TOLERANCE:-300}" ]; then
	echo "verify-webhook: webhook-timestamp is ${skew}s away from now: a replay, or a clock off" >&2
	exit 1
fi

want=$({ printf '%s.%s.' "$id" "$ts"; cat "$body"; } |
	openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
for sig in $sigs; do
	if [ "$sig" = "v1,$want" ]; then
		echo "verify-webhook: authentic"
		exit 0
	fi
done
echo "verify-webhook: no signature matches: the body, the id, the timestamp or the secret differs" >&2
exit 1
