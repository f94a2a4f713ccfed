/**
 * CLI: `node dist/bench/simulator/main.js [--port N] [--host H] [--latency-ms N] [--tokens N]
 * [--chunks N] [--chunk-delay-ms N] [--record N] [--api-key-env NAME]`. Prints one JSON line
 * `{"url": …, "port": …, "pid": …}` on stdout once listening (the benchmark reads it), and shuts
 * down cleanly on SIGINT/SIGTERM.
 */
import { Command, InvalidArgumentError } from 'commander';
import { startSimulator } from './server.js';

function integer(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new InvalidArgumentError('expected a non-negative integer');
  return Number(value);
}

interface CliOptions {
  host: string;
  port: number;
  latencyMs?: number;
  tokens?: number;
  chunks?: number;
  chunkDelayMs?: number;
  record: number;
  apiKeyEnv?: string;
}

const program = new Command()
  .name('portcullis-simulator')
  .description('OpenAI- and Anthropic-compatible provider simulator for tests and benchmarks')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option('--port <port>', 'port (0 = ephemeral)', integer, 0)
  .option('--latency-ms <ms>', 'delay before the response headers', integer)
  .option('--tokens <n>', 'completion length in tokens', integer)
  .option('--chunks <n>', 'content chunks per stream', integer)
  .option('--chunk-delay-ms <ms>', 'delay between stream chunks', integer)
  .option('--record <n>', 'recent requests kept for /_sim/requests', integer, 200)
  // By environment variable name, so the key never appears in the process list.
  .option('--api-key-env <name>', 'require the key held in this environment variable');

const cli = program.parse().opts<CliOptions>();
const apiKey = cli.apiKeyEnv === undefined ? undefined : process.env[cli.apiKeyEnv];
if (cli.apiKeyEnv !== undefined && (apiKey === undefined || apiKey === '')) {
  console.error(`--api-key-env: environment variable ${cli.apiKeyEnv} is empty or unset`);
  process.exit(2);
}

const simulator = await startSimulator({
  host: cli.host,
  port: cli.port,
  recordLimit: cli.record,
  ...(apiKey === undefined ? {} : { apiKey }),
  behaviour: {
    ...(cli.latencyMs === undefined ? {} : { latencyMs: cli.latencyMs }),
    ...(cli.tokens === undefined ? {} : { responseTokens: cli.tokens }),
    ...(cli.chunks === undefined ? {} : { streamChunks: cli.chunks }),
    ...(cli.chunkDelayMs === undefined ? {} : { chunkDelayMs: cli.chunkDelayMs }),
  },
});
console.log(JSON.stringify({ url: simulator.url, port: simulator.port, pid: process.pid }));

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  simulator.close().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
