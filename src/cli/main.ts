#!/usr/bin/env node
/**
 * The `portcullis` command. Server commands (init, start, migrate, audit verify) work on the local
 * configuration; admin commands call a running gateway's admin API with --url and --token.
 */
import { Command } from 'commander';
import { ConfigError } from '../config/errors.js';
import { registerAdminCommands } from './admin-commands.js';
import { CliError } from './admin-client.js';
import { registerServerCommands } from './server-commands.js';

const program = new Command();
program
  .name('portcullis')
  .description('Security gateway and control plane for multi-tenant AI-agent platforms')
  .option('--url <url>', 'gateway URL for admin commands (or PORTCULLIS_URL)', process.env.PORTCULLIS_URL ?? 'http://127.0.0.1:7070')
  .option('--token <token>', 'admin API key for admin commands (prefer PORTCULLIS_TOKEN: flags show up in process lists)', process.env.PORTCULLIS_TOKEN)
  .option('--json', 'machine-readable output')
  .showHelpAfterError();

registerServerCommands(program);
registerAdminCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof ConfigError || error instanceof CliError) {
    process.stderr.write(`portcullis: ${error.message}\n`);
    process.exitCode = error instanceof CliError ? error.exitCode : 2;
  } else {
    process.stderr.write(`portcullis: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
