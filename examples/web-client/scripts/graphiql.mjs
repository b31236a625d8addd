// GraphiQL end to end, in headless Chromium: load the page from the running server, run the
// starter document's Register (or Login) and then Me — the access token from the first is sent
// by the page itself — read the answer from the page, and save a screenshot. Then check every
// operation of the starter document against ../../schema.graphql, and run its EnrollTotp.
//
//   AUTHGRAPH_URL   the server's /graphql (default http://127.0.0.1:8000/graphql)
//   CHROMIUM        the browser (default /usr/bin/chromium)
//   OUT_DIR         where the screenshot goes (default test-output)
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { buildSchema, parse, validate } from "graphql";
import { chromium } from "playwright-core";

const url = process.env.AUTHGRAPH_URL ?? "http://127.0.0.1:8000/graphql";
const outDir = process.env.OUT_DIR ?? "test-output";
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
  ],
});
const failures = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
  // Anything not from this server would mean a CDN: GraphiQL must work offline.
  const origin = new URL(url).origin;
  page.on("request", (request) => {
    if (!request.url().startsWith(origin) && !request.url().startsWith("data:")) {
      failures.push(`request outside the server: ${request.url()}`);
    }
  });
  await page.goto(url, { waitUntil: "networkidle" });
  await page.locator(".graphiql-query-editor .CodeMirror").waitFor();

  const run = async (operation) => {
    const before = await page.locator(".graphiql-response").textContent();
    // The editor draws only the lines in view: bring the operation's line into view first
    // (the starter is longer than the window), then put the cursor on it as a click does.
    await page.evaluate((operation) => {
      const editor = document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror;
      const line = editor.getValue().split("\n").findIndex((text) => text.includes(operation));
      editor.scrollIntoView({ line, ch: 0 }, 200);
    }, operation);
    await page.locator(".CodeMirror-line", { hasText: operation }).first().click();
    await page.keyboard.press("Control+Enter");
    // The response editor fills once the answer arrives (each answer here differs from the
    // one before it).
    await page.waitForFunction((before) => {
      const text = document.querySelector(".graphiql-response")?.textContent ?? "";
      return text.includes("}") && text !== before;
    }, before);
    await page.waitForTimeout(300);
    return page.locator(".graphiql-response").innerText();
  };

  let answer = await run("mutation Register");
  if (answer.includes("CONFLICT")) answer = await run("mutation Login");
  if (!answer.includes("accessToken")) failures.push(`no tokens from Register/Login: ${answer}`);
  answer = await run("query Me");
  if (!answer.includes("ada@example.com")) failures.push(`Me did not show the user: ${answer}`);

  const headers = page.getByText("Headers", { exact: true });
  if ((await headers.count()) === 0) failures.push("no Headers tab to set Authorization");

  // Nothing of the session may stay in the browser: no token, no password, no headers.
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
  for (const secret of ["correct horse battery staple", "Bearer", "eyJ"]) {
    if (stored.includes(secret)) failures.push(`the browser's storage holds ${secret}: ${stored}`);
  }

  await page.screenshot({ path: join(outDir, "graphiql.png") });
  console.log(`screenshot: ${join(outDir, "graphiql.png")}`);

  // The operations the check does not run must still be valid: a starter that fails
  // validation greets a new user with an error.
  const starter = await page.evaluate(
    () => document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.getValue(),
  );
  const sdl = readFileSync(new URL("../../../schema.graphql", import.meta.url), "utf8");
  const schema = buildSchema(sdl);
  const invalid = validate(schema, parse(starter)).map((error) => error.message);
  if (invalid.length > 0) failures.push(`the starter document is invalid: ${invalid.join("; ")}`);
  for (const name of ["EnrollTotp", "ConfirmTotp", "VerifyMfa", "Reauthenticate"]) {
    if (!starter.includes(`mutation ${name}`)) failures.push(`the starter has no ${name}`);
  }
  answer = await run("mutation EnrollTotp");
  if (!answer.includes("otpauth://totp/")) failures.push(`EnrollTotp gave no secret: ${answer}`);
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.log(failures.join("\n"));
  process.exit(1);
}
console.log(
  "GraphiQL works: Register/Login then Me, with the token sent by the page; the starter " +
    "document is valid, and its EnrollTotp runs",
);
