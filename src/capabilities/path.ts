/**
 * Request-path safety for the egress route policy. The path is inspected at every depth of
 * percent-decoding until decoding no longer changes it, because an upstream (or a proxy in front
 * of it) may decode any number of times. Each round shrinks the string, so the loop is bounded by
 * the input length, not by a guess at how many layers an attacker will stack.
 *
 * The original string is never rewritten: what is checked here is exactly what is forwarded.
 */

export const MAX_PATH_CHARS = 8192;

export type PathRefusal =
  | 'path_too_long'
  | 'path_not_absolute'
  | 'path_bad_character'
  | 'path_encoded_slash'
  | 'path_backslash'
  | 'path_dot_segment'
  | 'path_empty_segment'
  | 'path_control_character';

export type PathCheck = { ok: true; path: string } | { ok: false; reason: PathRefusal };

/** RFC 3986 path characters plus '%'; anything else (space, quotes, non-ASCII, '\\') is refused raw. */
const RAW_PATH = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;
const ENCODED_SEPARATOR = /%(2f|5c)/i;
// C0 controls and DEL, NUL included: matching them is the point of this pattern.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export function checkRequestPath(path: string): PathCheck {
  if (path.length > MAX_PATH_CHARS) return { ok: false, reason: 'path_too_long' };
  if (!path.startsWith('/')) return { ok: false, reason: 'path_not_absolute' };
  if (path.includes('\\')) return { ok: false, reason: 'path_backslash' };
  if (!RAW_PATH.test(path)) return { ok: false, reason: CONTROL.test(path) ? 'path_control_character' : 'path_bad_character' };

  let current = path;
  for (;;) {
    const refusal = inspectLayer(current);
    if (refusal !== null) return { ok: false, reason: refusal };
    const decoded = percentDecodeOnce(current);
    if (decoded === current) return { ok: true, path };
    current = decoded;
  }
}

function inspectLayer(layer: string): PathRefusal | null {
  if (ENCODED_SEPARATOR.test(layer)) return 'path_encoded_slash';
  if (layer.includes('\\')) return 'path_backslash';
  if (CONTROL.test(layer)) return 'path_control_character';
  const segments = layer.split('/');
  // segments[0] is the empty string before the leading '/'; a decoded layer may not start with
  // '/', but then it was not a separator at the raw layer either, which the first check caught.
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] ?? '';
    // Some servers treat ';' as the start of path parameters: `..;x` is `..` to them.
    const bare = segment.split(';', 1)[0] ?? '';
    if (bare === '.' || bare === '..') return 'path_dot_segment';
    // An empty segment (`//`) can turn a path into a network-path reference when joined naively.
    if (segment === '' && i !== segments.length - 1) return 'path_empty_segment';
  }
  return null;
}

/** Decodes every `%XX` to the byte it names (as a Latin-1 character), leaving malformed escapes. */
function percentDecodeOnce(value: string): string {
  return value.replace(/%([0-9A-Fa-f]{2})/g, (_escape, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** The fixed point of percent-decoding; only meaningful for a path `checkRequestPath` accepted. */
export function fullyDecodedPath(path: string): string {
  let current = path;
  for (;;) {
    const decoded = percentDecodeOnce(current);
    if (decoded === current) return current;
    current = decoded;
  }
}
