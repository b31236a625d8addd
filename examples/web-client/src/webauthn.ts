// The browser's half of a passkey ceremony, with the browser's own WebAuthn API. The server's
// `PasskeyChallenge.options` (JSON) goes in; the credential's JSON (`credential.toJSON()`)
// comes out, to send back as `credential` with the challenge's `challengeId`:
//
//   const { challengeId, options } = (await api.run(StartPasskeyRegistration, {})).startPasskeyRegistration;
//   const credential = await createPasskey(options);
//   await api.run(FinishPasskeyRegistration, { input: { challengeId, name, credential } });
//
// and for signing in without an email, `getPasskey(options, { mediation: "conditional" })`
// after `startPasskeySignIn`, with an `<input autocomplete="username webauthn">` on the page
// (the browser offers the passkeys in that field's autofill), then `finishPasskeySignIn`.
//
// Browsers without the JSON helpers of WebAuthn Level 3 (`parseCreationOptionsFromJSON`,
// `parseRequestOptionsFromJSON`, `toJSON`) get the same conversion done here: base64url for
// the binary fields, nothing else changed.

type Json = Record<string, unknown>;

/** Whether this browser can create and use passkeys at all (a secure context with WebAuthn). */
export function passkeysSupported(): boolean {
  return typeof window !== "undefined" && window.isSecureContext && "PublicKeyCredential" in window;
}

/** Whether the browser offers passkeys in a field's autofill (conditional mediation). */
export async function conditionalUiAvailable(): Promise<boolean> {
  if (!passkeysSupported()) return false;
  return (await PublicKeyCredential.isConditionalMediationAvailable?.()) ?? false;
}

/**
 * `navigator.credentials.create()` with the server's creation options; the new credential as
 * JSON. Throws the browser's DOMException when the user cancels (NotAllowedError) or the
 * authenticator already holds a passkey of this account (InvalidStateError).
 */
export async function createPasskey(options: unknown, signal?: AbortSignal): Promise<Json> {
  const publicKey = parseCreationOptions(options as PublicKeyCredentialCreationOptionsJSON);
  const credential = await navigator.credentials.create({ publicKey, signal });
  return credentialJson(credential);
}

/**
 * `navigator.credentials.get()` with the server's request options; the assertion as JSON.
 * `mediation: "conditional"` waits for the user to pick a passkey in autofill (pass an
 * `AbortSignal` to stop waiting, e.g. when they type a password instead).
 */
export async function getPasskey(
  options: unknown,
  { mediation, signal }: { mediation?: CredentialMediationRequirement; signal?: AbortSignal } = {},
): Promise<Json> {
  const publicKey = parseRequestOptions(options as PublicKeyCredentialRequestOptionsJSON);
  const credential = await navigator.credentials.get({ publicKey, mediation, signal });
  return credentialJson(credential);
}

function parseCreationOptions(
  json: PublicKeyCredentialCreationOptionsJSON,
): PublicKeyCredentialCreationOptions {
  if (typeof PublicKeyCredential.parseCreationOptionsFromJSON === "function") {
    return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  }
  return {
    ...(json as unknown as PublicKeyCredentialCreationOptions),
    challenge: fromBase64url(json.challenge),
    user: { ...json.user, id: fromBase64url(json.user.id) },
    excludeCredentials: json.excludeCredentials?.map((c) => ({
      ...c,
      type: "public-key",
      transports: c.transports as AuthenticatorTransport[] | undefined,
      id: fromBase64url(c.id),
    })),
  };
}

function parseRequestOptions(
  json: PublicKeyCredentialRequestOptionsJSON,
): PublicKeyCredentialRequestOptions {
  if (typeof PublicKeyCredential.parseRequestOptionsFromJSON === "function") {
    return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  }
  return {
    ...(json as unknown as PublicKeyCredentialRequestOptions),
    challenge: fromBase64url(json.challenge),
    allowCredentials: json.allowCredentials?.map((c) => ({
      ...c,
      type: "public-key",
      transports: c.transports as AuthenticatorTransport[] | undefined,
      id: fromBase64url(c.id),
    })),
  };
}

function credentialJson(credential: Credential | null): Json {
  if (!(credential instanceof PublicKeyCredential)) {
    throw new DOMException("The browser returned no public key credential", "NotAllowedError");
  }
  if (typeof credential.toJSON === "function") return credential.toJSON() as unknown as Json;
  const response = credential.response;
  const common = {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
  if (response instanceof AuthenticatorAttestationResponse) {
    return {
      ...common,
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        attestationObject: toBase64url(response.attestationObject),
        transports: response.getTransports?.() ?? [],
      },
    };
  }
  const assertion = response as AuthenticatorAssertionResponse;
  return {
    ...common,
    response: {
      clientDataJSON: toBase64url(assertion.clientDataJSON),
      authenticatorData: toBase64url(assertion.authenticatorData),
      signature: toBase64url(assertion.signature),
      userHandle: assertion.userHandle ? toBase64url(assertion.userHandle) : null,
    },
  };
}

function fromBase64url(text: string): ArrayBuffer {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function toBase64url(buffer: ArrayBuffer): string {
  let binary = "";
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
