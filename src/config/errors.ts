/**
 * Misuse at startup: a configuration error names the key and how to fix it. Never includes a
 * secret value (only the reference that failed to resolve).
 */
export interface ConfigProblem {
  /** Dotted key path, e.g. `server.port` or `secrets.keySigning`. */
  key: string;
  problem: string;
  fix: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    super(
      'Invalid configuration:\n' +
        problems.map((p) => `  - ${p.key}: ${p.problem}\n    fix: ${p.fix}`).join('\n'),
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }

  static single(key: string, problem: string, fix: string): ConfigError {
    return new ConfigError([{ key, problem, fix }]);
  }
}
