// What an authenticator app computes, for the checks to sign in with a second factor:
// TOTP (RFC 6238) as authgraph uses it — HMAC-SHA1, 6 digits, 30-second steps.
import { createHmac } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";

export const STEP_SECONDS = 30;

/** The time step of an instant (Unix seconds): the counter of RFC 6238. */
export function stepAt(seconds: number): number {
  return Math.floor(seconds / STEP_SECONDS);
}

/** The code for a time step, from the base32 secret of `enrollTotp` (RFC 4226 §5.3). */
export function totp(secret: string, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, "0");
}

/**
 * Codes as an app shows them, one per call, each of a later step than the one before:
 * authgraph accepts each step once, and only after the last one it accepted (RFC 6238 §5.2),
 * within a step either side of now. So the previous step serves while a request surely
 * arrives inside the window, the next one early; past that, this waits for the next step.
 */
export function freshCodes(
  secret: string,
  onWait: (seconds: number) => void = () => {},
): () => Promise<string> {
  let lastStep = 0;
  return async () => {
    for (;;) {
      const now = Date.now() / 1000;
      const current = stepAt(now);
      const into = now - current * STEP_SECONDS;
      const step = Math.max(lastStep + 1, into < STEP_SECONDS - 5 ? current - 1 : current);
      if (step <= current + 1) {
        lastStep = step;
        return totp(secret, step);
      }
      onWait(Math.ceil(STEP_SECONDS - into));
      await sleep((STEP_SECONDS - into) * 1000 + 200);
    }
  };
}

// RFC 4648 base32, without padding, as in the otpauth:// URI.
function base32(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const bytes: number[] = [];
  for (const char of text.replace(/=+$/, "").toUpperCase()) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${char}`);
    // Only the bits not yet taken matter (fewer than 13): keep the number small.
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}
