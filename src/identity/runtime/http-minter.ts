/**
 * A minter that calls the gateway's own endpoint
 * `POST /api/orgs/:orgId/runtimes/:instanceId/credential` with the deployer's key. The response is
 * validated before use; nothing of it (it carries a token) is ever put into an error message.
 */
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import type { MintedCredential, RuntimeCredentialMinter } from './provider.js';

export interface HttpMinterOptions {
  /** Gateway base URL, e.g. http://127.0.0.1:7070 */
  baseUrl: string;
  orgId: string;
  /** The deployer's API key. */
  token: string;
  scopes?: string[];
  ttlSeconds?: number;
  fetch?: typeof fetch;
}

const responseSchema = z.object({
  token: z.string().min(1).max(4096),
  key: z.object({ id: z.string().min(1).max(128), expiresAt: z.iso.datetime({ offset: true }) }),
});

export function httpRuntimeMinter(options: HttpMinterOptions): RuntimeCredentialMinter {
  const doFetch = options.fetch ?? fetch;
  const base = new URL(options.baseUrl);
  return async (instanceId: string, signal: AbortSignal): Promise<MintedCredential> => {
    const url = new URL(`api/orgs/${encodeURIComponent(options.orgId)}/runtimes/${encodeURIComponent(instanceId)}/credential`, base.href.endsWith('/') ? base : `${base.href}/`);
    const response = await doFetch(url, {
      method: 'POST',
      redirect: 'error',
      signal,
      headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        ...(options.scopes === undefined ? {} : { scopes: options.scopes }),
        ...(options.ttlSeconds === undefined ? {} : { ttlSeconds: options.ttlSeconds }),
      }),
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new AppError('upstream_error', { message: `The gateway refused to mint a runtime key (HTTP ${response.status}).` });
    }
    const parsed = responseSchema.safeParse(await response.json());
    if (!parsed.success) throw new AppError('upstream_error', { message: 'The gateway answered the mint request with an unexpected body.' });
    return { token: parsed.data.token, keyId: parsed.data.key.id, expiresAt: new Date(parsed.data.key.expiresAt) };
  };
}
