// Verifies one call Herald made with the npm standardwebhooks library: reads
// {"secret", "body", "headers"} from the JSON file named by the first argument; exits 0 when
// the signature verifies, 1 when it does not.
const fs = require('fs');
const { Webhook } = require('standardwebhooks');

const call = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
try {
  new Webhook(call.secret).verify(call.body, call.headers);
} catch (e) {
  console.error(`not verified: ${e.message}`);
  process.exit(1);
}
