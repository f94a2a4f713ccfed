/**
 * The admin commands talk to a running gateway over its admin API, never to the database, so they
 * obey the same permissions and audit trail as any other client.
 */
import { request } from 'undici';

export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

export interface AdminClientOptions {
  url: string;
  token: string;
  timeoutMs?: number;
}

export class AdminClient {
  private readonly base: URL;

  constructor(private readonly options: AdminClientOptions) {
    try {
      this.base = new URL(options.url);
    } catch {
      throw new CliError(`--url "${options.url}" is not a URL; use e.g. http://127.0.0.1:7070`);
    }
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new CliError('--url must be http:// or https://');
    if (options.token === '') throw new CliError('no admin token: pass --token or set PORTCULLIS_TOKEN');
  }

  async call(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const url = new URL(path, this.base);
    let response;
    try {
      response = await request(url, {
        method,
        headers: {
          authorization: `Bearer ${this.options.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: this.options.timeoutMs ?? 10_000,
        bodyTimeout: this.options.timeoutMs ?? 10_000,
      });
    } catch (error) {
      const reason = error instanceof Error ? error.message : 'unknown error';
      throw new CliError(`cannot reach ${this.base.origin}: ${reason}`);
    }
    const text = await response.body.text();
    let parsed: unknown = null;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new CliError(`${method} ${path}: answer ${response.statusCode} is not JSON`);
      }
    }
    if (response.statusCode >= 400) {
      const error = (parsed as { error?: { code?: string; message?: string } } | null)?.error;
      throw new CliError(`${method} ${path} failed (${response.statusCode} ${error?.code ?? 'error'}): ${error?.message ?? 'no message'}`);
    }
    return parsed;
  }
}
