// The server's HTTP API from the page: same origin, the HttpOnly session cookie (never seen by
// script), the CSRF header on every request that changes something, and errors as `AppError`s
// carrying the server's code.

import type { AppError, ErrorBody } from '../../ipc';
import { CSRF_HEADER } from './wire';

/** A request the server answered with an error, or one that did not reach it. */
export class ApiFailure extends Error implements AppError {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

/** Called when any request is answered 401: the session is over, the app locks. */
let unauthorized: (() => void) | null = null;

export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

/** Requests that give up after this long (a poll passes its own, longer, bound). */
const DEFAULT_TIMEOUT_MS = 30_000;

export interface CallOptions {
  body?: unknown;
  timeoutMs?: number;
  /** Aborts the request early (a poll when the connection is closed). */
  signal?: AbortSignal;
  /** A 401 is the caller's business (login, unlock): no lock. */
  noLockOn401?: boolean;
}

/** One JSON request to this server. Resolves with the decoded body (`null` for 204). */
export async function call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD') headers[CSRF_HEADER] = '1';
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal]);
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
      signal,
      ...(body === undefined ? {} : { body }),
    });
  } catch (err) {
    if (options.signal?.aborted === true) throw new ApiFailure('aborted', 'The request was cancelled.', 0);
    throw new ApiFailure('unreachable', 'The server cannot be reached.', 0);
  }
  if (response.status === 204) return null as T;
  let decoded: unknown = null;
  try {
    decoded = await response.json();
  } catch {
    decoded = null;
  }
  if (response.ok) return decoded as T;
  const error = asError(decoded, response.status);
  if (response.status === 401 && options.noLockOn401 !== true) unauthorized?.();
  throw error;
}

function asError(body: unknown, status: number): ApiFailure {
  if (typeof body === 'object' && body !== null && typeof (body as ErrorBody).code === 'string') {
    const e = body as ErrorBody;
    return new ApiFailure(e.code, e.message || e.code, status, e.retry_after_ms ?? null);
  }
  return new ApiFailure('internal', `The server answered ${status}.`, status);
}

/** Uploads `file` as the body of a POST to `path` (with its own type), reporting progress as it
 * goes out; `signal` cancels it. `fetch` cannot report an upload's progress: this is the one
 * request made with XMLHttpRequest. */
export function upload<T>(
  path: string,
  file: File,
  onProgress: (sent: number, total: number) => void,
  signal: AbortSignal,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    xhr.setRequestHeader(CSRF_HEADER, '1');
    xhr.setRequestHeader('accept', 'application/json');
    xhr.setRequestHeader('content-type', file.type === '' ? 'application/octet-stream' : file.type);
    xhr.withCredentials = true;
    xhr.responseType = 'json';
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(xhr.response as T);
        return;
      }
      if (xhr.status === 401) unauthorized?.();
      reject(asError(xhr.response, xhr.status));
    };
    xhr.onerror = () => reject(new ApiFailure('unreachable', 'The server cannot be reached.', 0));
    xhr.onabort = () => reject(new ApiFailure('cancelled', 'The upload was cancelled.', 0));
    signal.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.send(file);
  });
}
