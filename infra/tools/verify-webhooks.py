"""Verifies webhook deliveries with the Standard Webhooks library, as the README shows.

stdin: a JSON list of {"headers": {...}, "body": "..."}; argv[1]: the endpoint's whsec_
secret. Prints each verified payload's JSON on its own line; exits 1 at the first delivery
that does not verify.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook

webhook = Webhook(sys.argv[1])
for delivery in json.load(sys.stdin):
    try:
        payload = webhook.verify(delivery["body"], delivery["headers"])
    except Exception as err:  # the library's WebhookVerificationError, among others
        print(f"refused {delivery['headers'].get('webhook-id')}: {err}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(payload))
