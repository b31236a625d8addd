// A small authgraph client on urql: keeps the tokens, sends the access token, on
// UNAUTHENTICATED refreshes once and retries, and on SERVICE_UNAVAILABLE waits retryAfter
// seconds and sends the operation again — the patterns docs/frontend.md recommends. A sign-in
// that needs a second factor throws MfaRequired, which verifyMfa finishes.
//
// In a browser on an origin the server allows, `{ session: "cookies" }` keeps no token at all:
// the server holds the session in HttpOnly cookies that script cannot read (so an XSS cannot
// take it away), and the client only asks the browser to send them.
import {
  Client,
  fetchExchange,
  type AnyVariables,
  type CombinedError,
  type OperationResult,
  type TypedDocumentNode,
} from "@urql/core";

import type { ReauthenticateInput, TokenFieldsFragment } from "./gql/graphql.js";
import {
  FinishPasskeySignIn,
  Login,
  Logout,
  LogoutFromCookie,
  RefreshFromCookie,
  Reauthenticate,
  RefreshToken,
  Register,
  VerifyMfa,
} from "./operations.js";

export type Tokens = { accessToken: string; refreshToken: string };

export class AuthgraphError extends Error {
  /** For RATE_LIMITED and SERVICE_UNAVAILABLE: seconds to wait before trying again. */
  readonly retryAfter: number | undefined;
  /** For FORBIDDEN: why, e.g. REAUTHENTICATION_REQUIRED (call reauthenticate, then retry). */
  readonly reason: string | undefined;
  /** For BAD_USER_INPUT: the input field to show the message next to. */
  readonly field: string | undefined;

  constructor(
    message: string,
    readonly code: string | undefined,
    extensions: Record<string, unknown> = {},
  ) {
    super(message);
    const { retryAfter, reason, field } = extensions;
    this.retryAfter = typeof retryAfter === "number" ? retryAfter : undefined;
    this.reason = typeof reason === "string" ? reason : undefined;
    this.field = typeof field === "string" ? field : undefined;
  }
}

/**
 * The password was right, and the account has a second factor: ask for a code from the
 * authenticator app (or a recovery code) and pass it with the ticket to `verifyMfa`. The
 * ticket is single-use, lives 5 minutes and takes a few wrong codes.
 */
export class MfaRequired extends AuthgraphError {
  constructor(
    message: string,
    readonly ticket: string,
    extensions: Record<string, unknown>,
  ) {
    super(message, extensions["code"] as string | undefined, extensions);
  }
}

export type Options = {
  /**
   * "bearer" (default): the client keeps the tokens and sends `Authorization: Bearer`.
   * "cookies": for a browser page on an origin of the server's CORS_ALLOWED_ORIGINS, with
   * SESSION_COOKIES=true on the server: requests carry the session cookies
   * (`credentials: "include"`) and the client keeps no token.
   */
  session?: "bearer" | "cookies";
  /** Times an operation is sent again after SERVICE_UNAVAILABLE (default 3). */
  unavailableRetries?: number;
  /** The longest wait before sending it again, whatever retryAfter says (default 10 s). */
  maxRetryAfterSeconds?: number;
};

export class Authgraph {
  tokens: Tokens | null = null;
  private readonly client: Client;
  private readonly cookies: boolean;
  private readonly unavailableRetries: number;
  private readonly maxRetryAfterSeconds: number;

  constructor(url: string, options: Options = {}) {
    this.unavailableRetries = options.unavailableRetries ?? 3;
    this.maxRetryAfterSeconds = options.maxRetryAfterSeconds ?? 10;
    this.cookies = options.session === "cookies";
    this.client = new Client({
      url,
      exchanges: [fetchExchange],
      requestPolicy: "network-only",
      fetchOptions: (): RequestInit =>
        this.cookies
          ? { credentials: "include" }
          : this.tokens
            ? { headers: { authorization: `Bearer ${this.tokens.accessToken}` } }
            : {},
    });
  }

  /** Runs an operation; throws an AuthgraphError carrying `extensions.code`. */
  async run<Data, Variables extends AnyVariables>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
    retry = true,
  ): Promise<Data> {
    const result = await this.send(document, variables);
    const error = result.error?.graphQLErrors[0];
    if (error) {
      const code = error.extensions["code"] as string | undefined;
      // With cookies the client cannot tell whether a refresh cookie is there: it tries.
      const canRefresh = this.cookies || this.tokens !== null;
      if (code === "UNAUTHENTICATED" && retry && canRefresh && (await this.refresh())) {
        return this.run(document, variables, false);
      }
      throw toError(result.error!);
    }
    if (result.error) throw new AuthgraphError(result.error.message, undefined);
    if (!result.data) throw new AuthgraphError("no data", undefined);
    return result.data;
  }

  // Signing in needs no access token: a failure is never cured by a refresh (no retry).
  async register(email: string, password: string, displayName?: string) {
    const data = await this.run(Register, { input: { email, password, displayName } }, false);
    return this.keep(data.register);
  }

  /** Throws MfaRequired when the account has a second factor: then call verifyMfa. */
  async login(email: string, password: string) {
    const data = await this.run(Login, { input: { email, password } }, false);
    return this.keep(data.login);
  }

  /**
   * Finishes a sign-in that threw MfaRequired, with a code from the authenticator app or a
   * recovery code. A wrong code throws BAD_USER_INPUT (field "code"): ask again with the same
   * ticket. UNAUTHENTICATED means the ticket is spent (expired, used, too many wrong codes):
   * sign in again from the password.
   */
  async verifyMfa(ticket: string, code: string) {
    const data = await this.run(VerifyMfa, { input: { ticket, code } }, false);
    return this.keep(data.verifyMfa);
  }

  /**
   * Proves again that the user is here (the password, and a code when the account has a
   * second factor), after an operation failed with reason REAUTHENTICATION_REQUIRED; then
   * send that operation again. The session stays the same: only the access token is new.
   */
  async reauthenticate(password: string, code?: string) {
    return this.reauthenticateWith({ password, code });
  }

  /**
   * Signs in with the passkey the browser chose for `startPasskeySignIn` (no email): its
   * `challengeId` and the credential's JSON (src/webauthn.ts `getPasskey`).
   */
  async signInWithPasskey(challengeId: string, credential: unknown) {
    const data = await this.run(FinishPasskeySignIn, { input: { challengeId, credential } }, false);
    return this.keep(data.finishPasskeySignIn);
  }

  /**
   * Reauthenticates with a passkey answering `startPasskeyReauthentication` in this session,
   * as `reauthenticate` does with the password.
   */
  async reauthenticateWithPasskey(challengeId: string, credential: unknown) {
    return this.reauthenticateWith({ passkey: { challengeId, credential } });
  }

  private async reauthenticateWith(input: ReauthenticateInput) {
    const data = await this.run(Reauthenticate, { input });
    const payload = data.reauthenticate;
    // The access token says when the user last proved themselves; the refresh token does
    // not change (it is null here). With cookies the new access token is in its cookie, and
    // the body has none.
    if (!this.cookies && this.tokens && payload.accessToken != null) {
      this.tokens = { ...this.tokens, accessToken: payload.accessToken };
    }
    return payload;
  }

  /**
   * Signs this session out: the server ends it (and, with cookies, clears them). True when
   * the server ended a session.
   */
  async logout(): Promise<boolean> {
    if (this.cookies) return (await this.run(LogoutFromCookie, {}, false)).logout;
    if (!this.tokens) return false;
    const { refreshToken } = this.tokens;
    // Signed out here whatever the server answers.
    this.tokens = null;
    return (await this.run(Logout, { input: { refreshToken } }, false)).logout;
  }

  /**
   * Exchanges the refresh token; false when the session has ended. A server that stays
   * unavailable throws instead: the session may well be alive, so the tokens are kept.
   */
  async refresh(): Promise<boolean> {
    if (!this.cookies && !this.tokens) return false;
    // With cookies (no tokens kept) the browser sends the refresh cookie, and the answer
    // sets new cookies.
    const result = this.tokens
      ? await this.send(RefreshToken, { input: { refreshToken: this.tokens.refreshToken } })
      : await this.send(RefreshFromCookie, {});
    if (!result.data) {
      const error = result.error && toError(result.error);
      // Unreachable or unavailable is not "signed out": keep the tokens for later.
      if (error && (error.code === undefined || error.code === "SERVICE_UNAVAILABLE")) {
        throw error;
      }
      this.tokens = null;
      return false;
    }
    this.keep(result.data.refreshToken);
    return true;
  }

  /**
   * Sends an operation, and sends it again after `retryAfter` while the server answers
   * SERVICE_UNAVAILABLE (HTTP 503: its database could not be reached). Safe for every
   * operation of this API: an operation answered so did not happen, except in the rare
   * case of a connection lost exactly as it committed, and then repeating it gets the
   * documented answer (CONFLICT for a repeated register; a repeated refreshToken falls in
   * the reuse grace and gets a pair of its own).
   */
  private async send<Data, Variables extends AnyVariables>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
  ): Promise<OperationResult<Data, Variables>> {
    const definition = document.definitions.find((d) => d.kind === "OperationDefinition");
    const isMutation =
      definition?.kind === "OperationDefinition" && definition.operation === "mutation";
    for (let attempt = 0; ; attempt++) {
      const result = await (
        isMutation ? this.client.mutation(document, variables) : this.client.query(document, variables)
      ).toPromise();
      const error = result.error && toError(result.error);
      if (error?.code !== "SERVICE_UNAVAILABLE" || attempt >= this.unavailableRetries) {
        return result;
      }
      const seconds = Math.min(error.retryAfter ?? 1, this.maxRetryAfterSeconds);
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    }
  }

  private keep(payload: TokenFieldsFragment) {
    // With cookies the session is the browser's, and the server sends no token to keep.
    if (this.cookies) return payload;
    // A server that chose cookies for this request (a browser on an allowed origin) answers
    // no token in the body: a bearer client could not go on, so it says so now.
    if (payload.accessToken == null || payload.refreshToken == null) {
      throw new AuthgraphError(
        'The server sent this session as cookies (tokens null): use { session: "cookies" }.',
        undefined,
      );
    }
    this.tokens = { accessToken: payload.accessToken, refreshToken: payload.refreshToken };
    return payload;
  }
}

function toError(error: CombinedError): AuthgraphError {
  const first = error.graphQLErrors[0];
  if (!first) return new AuthgraphError(error.message, undefined);
  const { extensions } = first;
  // login and resetPassword answer so for an account with a second factor.
  const ticket = extensions["mfaTicket"];
  if (extensions["reason"] === "MFA_REQUIRED" && typeof ticket === "string") {
    return new MfaRequired(first.message, ticket, extensions);
  }
  return new AuthgraphError(first.message, extensions["code"] as string | undefined, extensions);
}
