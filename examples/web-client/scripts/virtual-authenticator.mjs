// A passkey authenticator for a Playwright page in Chromium: the DevTools protocol's virtual
// authenticator (WebAuthn domain), which answers navigator.credentials.create() and get() as
// a platform authenticator would (Touch ID, Windows Hello), with no dialog and no device.
//
//   const authenticator = await addVirtualAuthenticator(page);
//   ... the page creates and uses passkeys ...
//   await authenticator.credentials();        // what it holds (resident, user handle, count)
//   await authenticator.setUserVerified(false); // the user fails the PIN / biometric check
//
// Its defaults are a passkey-capable authenticator: CTAP 2.1 over the internal transport
// (a platform authenticator), resident keys (discoverable credentials, for signing in without
// an email) and user verification that succeeds. WebAuthn needs a secure context: serve the
// page from http://localhost:PORT (Chromium refuses http://127.0.0.1 as an RP id).

/**
 * Enables the WebAuthn domain for `page` and adds an authenticator to it.
 * `options` override the defaults (see the DevTools protocol's
 * WebAuthn.VirtualAuthenticatorOptions).
 */
export async function addVirtualAuthenticator(page, options = {}) {
  const cdp = await page.context().newCDPSession(page);
  // enableUI false: no account chooser or other dialog to wait on in a headless run.
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      ctap2Version: "ctap2_1",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      // Touches the authenticator for the user: every ceremony gets user presence at once.
      automaticPresenceSimulation: true,
      ...options,
    },
  });
  return {
    id: authenticatorId,
    cdp,
    /** The credentials it holds: credentialId, isResidentCredential, rpId, userHandle (base64), signCount. */
    credentials: async () =>
      (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials,
    /** Whether the user passes (true) or fails (false) user verification from now on. */
    setUserVerified: (isUserVerified) =>
      cdp.send("WebAuthn.setUserVerified", { authenticatorId, isUserVerified }),
    /** Whether the user touches it for every ceremony (true) or never (false: ceremonies wait). */
    setPresence: (enabled) =>
      cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled }),
    /** Forgets every credential it holds (a new device). */
    clear: () => cdp.send("WebAuthn.clearCredentials", { authenticatorId }),
    remove: async () => {
      await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId });
      await cdp.detach();
    },
  };
}

/** Standard base64 (what the DevTools protocol sends) as base64url (what WebAuthn's JSON uses). */
export const base64url = (base64) =>
  base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
