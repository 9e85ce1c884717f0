// Bearer tokens for the Power BI REST API: Microsoft Entra client credentials (an app registration
// with a secret), cached and refreshed before they expire. Tests inject their own source.
import { cloudErrors, errorMessage } from '../../errors.ts';

export const POWERBI_SCOPE = 'https://analysis.windows.net/powerbi/api/.default';

export interface AccessToken {
  token: string;
  /** Epoch ms. */
  expiresOnTimestamp: number;
}

/** Where tokens come from (ClientSecretCredential's shape, so any @azure/identity credential fits). */
export interface TokenCredentialLike {
  getToken(scopes: string | string[]): Promise<AccessToken | null>;
}

export interface TokenSource {
  /** A token valid for at least the refresh margin. */
  token(): Promise<string>;
  /** Drops the cached token (after a 401/403 the next call fetches a new one). */
  invalidate(): void;
}

export interface EntraCredentials {
  tenantId: string;
  clientId: string;
  clientSecret: string;
}

/** A ClientSecretCredential for the app registration (loaded only when used). */
export async function entraCredential(c: EntraCredentials): Promise<TokenCredentialLike> {
  const { ClientSecretCredential } = await import('@azure/identity');
  return new ClientSecretCredential(c.tenantId, c.clientId, c.clientSecret);
}

/** Caches the credential's token and refreshes it `refreshMarginMs` before it expires. */
export function cachedTokenSource(credential: TokenCredentialLike, options: { refreshMarginMs?: number; now?: () => number } = {}): TokenSource {
  const margin = options.refreshMarginMs ?? 300_000;
  const now = options.now ?? Date.now;
  let cached: AccessToken | undefined;
  let pending: Promise<string> | undefined;
  return {
    token() {
      if (cached !== undefined && now() < cached.expiresOnTimestamp - margin) return Promise.resolve(cached.token);
      // One request for every caller waiting on a refresh.
      pending ??= credential
        .getToken(POWERBI_SCOPE)
        .then(
          (t) => {
            if (t === null) throw cloudErrors.create('CLD_POWERBI_TOKEN', 'the credential returned no token');
            cached = t;
            return t.token;
          },
          (err: unknown) => {
            throw cloudErrors.create('CLD_POWERBI_TOKEN', errorMessage(err), err);
          },
        )
        .finally(() => (pending = undefined));
      return pending;
    },
    invalidate() {
      cached = undefined;
    },
  };
}

/** A fixed token, for the streaming push URL (its key is in the URL) and for tests. */
export function staticTokenSource(token: string): TokenSource {
  return { token: () => Promise.resolve(token), invalidate: () => undefined };
}
