/** Small crypto helpers over node:crypto. Nothing here invents a primitive. */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Constant-time comparison of two strings or buffers; unequal lengths return false without early exit on content. */
export function constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  // timingSafeEqual reads byte views as they are: only strings need encoding.
  const left = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
  const right = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  if (left.length !== right.length) {
    // Compare against itself so the time spent does not depend on where the inputs differ.
    timingSafeEqual(left, left);
    return false;
  }
  return timingSafeEqual(left, right);
}

export function randomBase64Url(bytes: number): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function hmacSha256(key: string | Uint8Array, data: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
