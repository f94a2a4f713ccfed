/** Printing for the CLI: JSON for scripts, aligned tables for people. */

export type Row = Record<string, unknown>;

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (Array.isArray(value)) return value.map(cell).join(',');
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return value.toString();
  return JSON.stringify(value) ?? '';
}

export function formatTable(rows: Row[], columns?: string[]): string {
  if (rows.length === 0) return '(none)';
  const keys = columns ?? Object.keys(rows[0] ?? {});
  const table = [keys, ...rows.map((row) => keys.map((key) => cell(row[key])))];
  const widths = keys.map((_, i) => Math.max(...table.map((line) => (line[i] ?? '').length)));
  return table.map((line) => line.map((value, i) => value.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}

export function print(value: unknown, json: boolean, columns?: string[]): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  if (Array.isArray(value)) {
    process.stdout.write(`${formatTable(value as Row[], columns)}\n`);
  } else if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Row).map(([key, v]) => ({ key, value: cell(v) }));
    process.stdout.write(`${formatTable(entries, ['key', 'value'])}\n`);
  } else {
    process.stdout.write(`${cell(value)}\n`);
  }
}
