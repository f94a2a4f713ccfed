/** `portcullis init | start | migrate | audit verify`: commands that run against the local config. */
import cluster from 'node:cluster';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type * as MainModule from '../main.js';
import { MAX_ANCHOR_BYTES, parseAuditAnchor } from '../audit/anchor.js';
import type { AuditCheckpoint } from '../audit/record.js';
import { initConfig } from '../config/init.js';
import { defaultDataDir, loadConfig, locateConfig, type LoadedConfig } from '../config/load.js';
import { tuneRuntimeForServing } from './runtime-tuning.js';
import { reportListening, superviseWorkers } from './workers.js';

/** The server modules (database, crypto, HTTP) load only for server commands, so admin commands start fast. */
const server = (): Promise<typeof MainModule> => import('../main.js');

interface ConfigFlag {
  config?: string;
}

function load(flags: ConfigFlag): LoadedConfig {
  const path = locateConfig({ env: process.env, cwd: process.cwd(), ...(flags.config === undefined ? {} : { explicitPath: flags.config }) });
  if (path === null) {
    throw new Error('no configuration found: run `portcullis init` first, or set PORTCULLIS_CONFIG');
  }
  return loadConfig(path, process.env);
}

export const ADMIN_CREDENTIAL_FILE = 'admin-credential.txt';

/** `server.workers`: a count, or 'auto' for one per CPU this process may use. */
function workerCount(setting: number | 'auto'): number {
  return setting === 'auto' ? Math.max(1, Math.min(64, availableParallelism())) : setting;
}

/** Creates the first platform admin when there is none; the credential is written once, to a 0600 file. */
async function initialise(dataDir: string, options: { force?: boolean; print: boolean }): Promise<{ loaded: LoadedConfig; credentialPath: string | null }> {
  const init = initConfig({ dataDir, ...(options.force === undefined ? {} : { force: options.force }) });
  const loaded = loadConfig(init.configPath, process.env);
  const { openStores, bootstrapAdmin } = await server();
  const stores = await openStores(loaded);
  try {
    const admin = await bootstrapAdmin(loaded, stores);
    if (admin === null) return { loaded, credentialPath: null };
    const credentialPath = join(loaded.dataDir, ADMIN_CREDENTIAL_FILE);
    const text = `# Portcullis platform-admin credential. Shown once; move it to a secret store and delete this file.\nPORTCULLIS_TOKEN=${admin.token}\n# user ${admin.userId}, org ${admin.orgId}\n`;
    writeFileSync(credentialPath, text, { mode: 0o600 });
    chmodSync(credentialPath, 0o600);
    if (options.print) {
      process.stdout.write(`Configuration written to ${init.configPath}\n`);
      process.stdout.write(`Platform-admin credential (shown once; also in ${credentialPath}):\n${admin.token}\n`);
    }
    return { loaded, credentialPath };
  } finally {
    await stores.close();
  }
}

export function registerServerCommands(program: Command): void {
  program
    .command('init')
    .description('write a starter configuration with fresh secrets and create the first platform admin')
    .option('--data-dir <dir>', 'data folder (or PORTCULLIS_DATA_DIR)')
    .option('--force', 'rewrite an existing configuration (existing secrets are kept)')
    .action(async (o: { dataDir?: string; force?: boolean }) => {
      const dataDir = o.dataDir ?? defaultDataDir({ env: process.env, cwd: process.cwd() });
      const { credentialPath } = await initialise(dataDir, { ...(o.force === undefined ? {} : { force: o.force }), print: true });
      if (credentialPath === null) process.stdout.write('A platform admin already exists; no new credential was created.\n');
    });

  program
    .command('start')
    .description('run the gateway (initialises the embedded default on first run)')
    .option('--config <path>', 'configuration file (or PORTCULLIS_CONFIG)')
    .action(async (o: ConfigFlag) => {
      tuneRuntimeForServing();
      let path = locateConfig({ env: process.env, cwd: process.cwd(), ...(o.config === undefined ? {} : { explicitPath: o.config }) });
      if (path === null) {
        const dataDir = defaultDataDir({ env: process.env, cwd: process.cwd() });
        const { loaded, credentialPath } = await initialise(dataDir, { print: false });
        path = loaded.path;
        process.stdout.write(`First run: configuration written to ${loaded.path}\n`);
        if (credentialPath !== null) process.stdout.write(`First run: the platform-admin credential was written to ${credentialPath} (mode 0600)\n`);
      }
      const loaded = loadConfig(path, process.env);
      const workers = workerCount(loaded.config.server.workers);
      if (workers > 1 && cluster.isPrimary) {
        const url = await superviseWorkers({ workers, graceMs: loaded.config.server.shutdownGraceMs, write: (line) => process.stdout.write(line) });
        process.stdout.write(`Portcullis listening on ${url} (${workers} worker processes)\n`);
        return;
      }
      const { startGateway } = await server();
      const gateway = await startGateway(loaded);
      if (cluster.isWorker) reportListening(gateway.url);
      else process.stdout.write(`Portcullis listening on ${gateway.url}\n`);
      const stop = (signal: string): void => {
        if (cluster.isPrimary) process.stdout.write(`${signal}: draining and shutting down\n`);
        void gateway.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });

  program
    .command('migrate')
    .description('apply pending record-store migrations (also done at start)')
    .option('--config <path>')
    .action(async (o: ConfigFlag) => {
      const loaded = load(o);
      const { openStores, migrateToLatest } = await server();
      const stores = await openStores(loaded, { migrate: false });
      try {
        const result = await migrateToLatest(stores.records.db);
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } finally {
        await stores.close();
      }
    });

  const audit = program.command('audit').description('audit log');
  audit
    .command('verify')
    .description('check the hash chain and signed checkpoints; names the first bad record')
    .option('--config <path>')
    .option('--anchor <file>', 'a checkpoint kept outside the database (a gateway log line "audit checkpoint signed", or its auditCheckpoint object); the log must still reach it')
    .action(async (o: ConfigFlag & { anchor?: string }) => {
      const loaded = load(o);
      const anchor = o.anchor === undefined ? undefined : readAnchor(o.anchor);
      if (anchor === null) return;
      const { runAuditVerifyCommand } = await server();
      const result = await runAuditVerifyCommand(loaded, anchor === undefined ? {} : { anchor });
      (result.exitCode === 0 ? process.stdout : process.stderr).write(`${result.message}\n`);
      process.exitCode = result.exitCode;
    });
}

/** The anchor file's checkpoint; null (after saying why, exit code 2) when it cannot be used. */
function readAnchor(path: string): AuditCheckpoint | null {
  const refuse = (message: string): null => {
    process.stderr.write(`Cannot use the anchor ${path}: ${message}.\n`);
    process.exitCode = 2;
    return null;
  };
  let text: string;
  try {
    if (statSync(path).size > MAX_ANCHOR_BYTES) return refuse(`it is larger than ${MAX_ANCHOR_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return refuse(`it cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const parsed = parseAuditAnchor(text);
  return parsed.ok ? parsed.anchor : refuse(parsed.message);
}
