/**
 * What a new password must satisfy. Length is what matters most (NIST SP 800-63B): 12 to 256
 * characters, no composition rules. On top, refuse the obviously bad: control characters, a single
 * repeated character, simple sequences, the email address, and a short list of well-known choices.
 */
import { MAX_PASSWORD_LENGTH, normalizePassword } from './password.js';

export const MIN_PASSWORD_LENGTH = 12;

export type PasswordPolicyResult = { ok: true } | { ok: false; reason: string };

const COMMON_PASSWORDS = new Set([
  'password1234',
  'password12345',
  'password123456',
  'passwordpassword',
  'qwertyuiopasdf',
  'qwertyuiop123',
  'qwerty123456',
  'iloveyou1234',
  'letmein12345',
  'welcome12345',
  'administrator',
  'admin1234567',
  'changeme1234',
  'portcullis123',
  'portcullis1234',
  'correcthorsebatterystaple',
]);

// Each run doubled so that a wrap-around ("7890123") is found too, and kept both ways round.
// ASCII only, so splitting into UTF-16 units is splitting into characters.
const SEQUENCE_RUNS = ['0123456789', 'abcdefghijklmnopqrstuvwxyz', 'qwertyuiopasdfghjklzxcvbnm'].flatMap((sequence) => {
  const doubled = sequence + sequence;
  return [doubled, doubled.split('').reverse().join('')];
});

function isSimpleSequence(lower: string): boolean {
  return SEQUENCE_RUNS.some((run) => run.includes(lower));
}

export function checkPasswordPolicy(password: string, context: { email?: string } = {}): PasswordPolicyResult {
  const normalized = normalizePassword(password);
  // Length in code points, as NIST SP 800-63B counts characters (not UTF-16 units, not graphemes).
  // oxlint-disable-next-line typescript/no-misused-spread -- code points are the unit meant here
  const length = [...normalized].length;
  if (length < MIN_PASSWORD_LENGTH) return { ok: false, reason: `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.` };
  if (password.length > MAX_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    return { ok: false, reason: `The password must be at most ${MAX_PASSWORD_LENGTH} characters long.` };
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(normalized)) return { ok: false, reason: 'The password must not contain control characters.' };
  const lower = normalized.toLowerCase();
  if (new Set(lower).size <= 2) return { ok: false, reason: 'The password is too repetitive.' };
  if (isSimpleSequence(lower)) return { ok: false, reason: 'The password is a simple sequence.' };
  if (COMMON_PASSWORDS.has(lower)) return { ok: false, reason: 'The password is too common.' };
  const email = context.email?.toLowerCase();
  if (email !== undefined && email.length > 0) {
    const localPart = email.split('@')[0] ?? '';
    if (lower.includes(email) || (localPart.length >= 4 && lower.includes(localPart) && length - localPart.length < 8)) {
      return { ok: false, reason: 'The password must not be based on the email address.' };
    }
  }
  return { ok: true };
}
