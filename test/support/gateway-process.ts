/**
 * Runs the built `portcullis` CLI as a real child process, the way an operator would, and finds the
 * ephemeral port it printed. Used by end-to-end tests of the embedded and distributed deployments.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The bundled command, as `npm start` and the `portcullis` bin run it (scripts/bundle.mjs).
export const CLI_PATH = fileURLToPath(new URL('../../dist/portcullis/main.js', import.meta.url));

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<number | null>;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function childEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // Keep the parent's PATH etc., but never let a developer's own config leak into a test.
  const base = { ...process.env };
  for (const key of ['PORTCULLIS_CONFIG', 'PORTCULLIS_PORT', 'PORTCULLIS_DATA_DIR', 'DATABASE_URL', 'REDIS_URL', 'PORTCULLIS_TOKEN', 'PORTCULLIS_URL']) delete base[key];
  return { ...base, PORTCULLIS_LOG_LEVEL: 'warn', ...env };
}

export async function runCli(args: string[], env: NodeJS.ProcessEnv, cwd?: string): Promise<RunResult> {
  const child = spawn(process.execPath, [CLI_PATH, ...args], { env: childEnv(env), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, stdout, stderr };
}

export async function startGatewayProcess(env: NodeJS.ProcessEnv, cwd?: string, timeoutMs = 30_000): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [CLI_PATH, 'start'], { env: childEnv({ PORTCULLIS_PORT: '0', ...env }), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${String(code)} before listening:\n${output}`));
    });
  });
  return {
    url,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
