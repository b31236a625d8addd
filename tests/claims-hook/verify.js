// Reads {secret, headers, body} as JSON on stdin and verifies the request with the Standard
// Webhooks reference library, as a claims hook written in JavaScript would. Prints the
// verified payload and exits 0, or prints the library's error and exits 1.
import { Webhook } from "standardwebhooks";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { secret, headers, body } = JSON.parse(input);
try {
  const payload = new Webhook(secret).verify(body, headers);
  console.log(JSON.stringify(payload));
} catch (error) {
  console.error(String(error));
  process.exit(1);
}
