# Verifies one call Herald made with the Python standardwebhooks library: reads
# {"secret", "body", "headers"} from the JSON file named by the first argument; exits 0 when
# the signature verifies, 1 when it does not.
import json
import sys

from standardwebhooks.webhooks import Webhook

with open(sys.argv[1]) as f:
    call = json.load(f)
try:
    Webhook(call["secret"]).verify(call["body"], call["headers"])
except Exception as e:  # the library raises its own error types
    print(f"not verified: {e}", file=sys.stderr)
    sys.exit(1)
