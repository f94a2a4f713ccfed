/** `portcullis orgs|users|members|keys …`: thin wrappers over the admin API. */
import type { Command } from 'commander';
import { AdminClient } from './admin-client.js';
import { print } from './output.js';

interface GlobalOptions {
  url: string;
  token?: string;
  json?: boolean;
}

function clientOf(command: Command): { client: AdminClient; json: boolean } {
  const options = command.optsWithGlobals<GlobalOptions>();
  return { client: new AdminClient({ url: options.url, token: options.token ?? '' }), json: options.json === true };
}

const enc = encodeURIComponent;

function pick<T>(value: unknown, key: string): T {
  return (typeof value === 'object' && value !== null && key in value ? (value as Record<string, unknown>)[key] : value) as T;
}

export function registerAdminCommands(program: Command): void {
  const orgs = program.command('orgs').description('organizations');
  orgs.command('list').description('organizations you can see').action(async (_o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print(pick(await client.call('GET', '/api/orgs'), 'orgs'), json, ['id', 'name', 'slug', 'role']);
  });
  orgs.command('create <name>').option('--slug <slug>').description('create an organization (you become its owner)').action(async (name: string, o: { slug?: string }, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print(await client.call('POST', '/api/orgs', { name, ...(o.slug === undefined ? {} : { slug: o.slug }) }), json);
  });
  orgs.command('get <orgId>').action(async (orgId: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print(await client.call('GET', `/api/orgs/${enc(orgId)}`), json);
  });
  orgs.command('delete <orgId>').action(async (orgId: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print((await client.call('DELETE', `/api/orgs/${enc(orgId)}`)) ?? { deleted: orgId }, json);
  });

  const users = program.command('users').description('users (platform admins)');
  users
    .command('create <email>')
    .option('--name <displayName>')
    .option('--type <userType>', 'registered | paid | privileged', 'registered')
    .option('--password <password>', 'initial password for local login (prefer PORTCULLIS_NEW_PASSWORD)')
    .option('--platform-admin', 'make the user a platform admin')
    .action(async (email: string, o: { name?: string; type: string; password?: string; platformAdmin?: boolean }, cmd: Command) => {
      const { client, json } = clientOf(cmd);
      const password = o.password ?? process.env.PORTCULLIS_NEW_PASSWORD;
      print(
        await client.call('POST', '/api/users', {
          email,
          displayName: o.name ?? email,
          userType: o.type,
          ...(password === undefined ? {} : { password }),
          ...(o.platformAdmin === true ? { platformAdmin: true } : {}),
        }),
        json,
      );
    });
  users.command('get <userId>').action(async (userId: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print(await client.call('GET', `/api/users/${enc(userId)}`), json);
  });
  users
    .command('set <userId>')
    .option('--type <userType>', 'registered | paid | privileged')
    .option('--disabled <bool>', 'true | false')
    .action(async (userId: string, o: { type?: string; disabled?: string }, cmd: Command) => {
      const { client, json } = clientOf(cmd);
      const body: Record<string, unknown> = {};
      if (o.type !== undefined) body.userType = o.type;
      if (o.disabled !== undefined) body.disabled = o.disabled === 'true';
      print(await client.call('PATCH', `/api/users/${enc(userId)}`, body), json);
    });
  users.command('rotate-pepper <userId>').description("revoke all of a user's keys at once").action(async (userId: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print((await client.call('POST', `/api/users/${enc(userId)}/rotate-pepper`, {})) ?? { rotated: userId }, json);
  });

  const members = program.command('members').description('organization members and roles');
  members.command('list <orgId>').action(async (orgId: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print(pick(await client.call('GET', `/api/orgs/${enc(orgId)}/members`), 'members'), json, ['userId', 'email', 'role']);
  });
  members.command('add <orgId> <userId>').option('--role <role>', 'owner | admin | member | viewer', 'member').action(async (orgId: string, userId: string, o: { role: string }, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print(await client.call('POST', `/api/orgs/${enc(orgId)}/members`, { userId, role: o.role }), json);
  });
  members.command('set-role <orgId> <userId> <role>').action(async (orgId: string, userId: string, role: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print(await client.call('PATCH', `/api/orgs/${enc(orgId)}/members/${enc(userId)}`, { role }), json);
  });
  members.command('remove <orgId> <userId>').action(async (orgId: string, userId: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print((await client.call('DELETE', `/api/orgs/${enc(orgId)}/members/${enc(userId)}`)) ?? { removed: userId }, json);
  });

  const keys = program.command('keys').description('API keys');
  keys
    .command('create <orgId>')
    .requiredOption('--name <name>')
    .option('--scopes <scopes>', 'comma-separated scopes')
    .option('--ttl-days <days>')
    .option('--user <userId>', 'create for another member (needs the permission)')
    .action(async (orgId: string, o: { name: string; scopes?: string; ttlDays?: string; user?: string }, cmd: Command) => {
      const { client, json } = clientOf(cmd);
      const body: Record<string, unknown> = { name: o.name };
      if (o.scopes !== undefined) body.scopes = o.scopes.split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (o.ttlDays !== undefined) body.ttlDays = Number(o.ttlDays);
      if (o.user !== undefined) body.userId = o.user;
      const created = await client.call('POST', `/api/orgs/${enc(orgId)}/keys`, body);
      print(created, json);
      if (!json) process.stderr.write('This key is shown once. Store it now.\n');
    });
  keys.command('list <orgId>').action(async (orgId: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print(pick(await client.call('GET', `/api/orgs/${enc(orgId)}/keys`), 'keys'), json, ['id', 'name', 'userId', 'scopes', 'expiresAt', 'revokedAt']);
  });
  keys.command('revoke <orgId> <keyId>').action(async (orgId: string, keyId: string, _o, cmd: Command) => {
    const { client, json } = clientOf(cmd);
    print((await client.call('DELETE', `/api/orgs/${enc(orgId)}/keys/${enc(keyId)}`)) ?? { revoked: keyId }, json);
  });
}
