// Verifies webhook deliveries with the Standard Webhooks library, as the README shows.
// stdin: a JSON list of {"headers": {...}, "body": "..."}; argv[2]: the endpoint's whsec_
// secret. Prints each verified payload's JSON on its own line; exits 1 at the first
// delivery that does not verify.
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const webhook = new Webhook(process.argv[2]);
  for (const delivery of JSON.parse(input)) {
    try {
      const payload = webhook.verify(delivery.body, delivery.headers);
      console.log(JSON.stringify(payload));
    } catch (err) {
      console.error(`refused ${delivery.headers["webhook-id"]}: ${err.message}`);
      process.exit(1);
    }
  }
});
