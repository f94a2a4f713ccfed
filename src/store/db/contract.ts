/**
 * One contract every record-store adapter must pass (PGlite in the default suite, real PostgreSQL
 * in the distributed one). It checks the database behaviours feature code relies on, not features:
 * migrations, constraint errors, cascades, transactions, row locks and value round-trips.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import type { RecordStore } from './record-store.js';
import { migrateToLatest, migrationStatus } from './migrate.js';
import { MIGRATIONS } from './migrations/index.js';
import { isCheckViolation, isForeignKeyViolation, isUniqueViolation, isUnstorableTextError } from './errors.js';

function uid(prefix: string): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 20)}`;
}

export function describeRecordStoreContract(name: string, make: () => Promise<RecordStore>): void {
  describe(`record store contract: ${name}`, () => {
    let store: RecordStore;

    beforeAll(async () => {
      store = await make();
    }, 180_000);
    afterAll(async () => {
      await store?.close();
    });

    async function newOrg(): Promise<string> {
      const id = uid('org');
      await store.db.insertInto('orgs').values({ id, name: 'Org', slug: id }).execute();
      return id;
    }

    async function newUser(email = `${uid('u')}@example.test`): Promise<string> {
      const id = uid('usr');
      await store.db.insertInto('users').values({ id, email, display_name: 'U', user_type: 'registered', platform_admin: false, password_hash: null, pepper: 'p', disabled: false }).execute();
      return id;
    }

    it('answers ping and applies migrations idempotently', async () => {
      await store.ping();
      const again = await migrateToLatest(store.db);
      expect(again.ranNow).toEqual([]);
      expect(again.applied).toEqual(MIGRATIONS.map((m) => m.name));
      const status = await migrationStatus(store.db);
      expect(status).toEqual({ applied: MIGRATIONS.map((m) => m.name), pending: [] });
    });

    it('refuses a second user with the same email as a recognisable unique violation', async () => {
      const email = `${uid('dup')}@example.test`;
      await newUser(email);
      const err: unknown = await newUser(email).then(() => undefined, (e: unknown) => e);
      expect(isUniqueViolation(err)).toBe(true);
      expect(isUniqueViolation(err, 'users_email_unique')).toBe(true);
      expect(isUniqueViolation(err, 'orgs_slug_unique')).toBe(false);
      expect(isUniqueViolation(new Error('other'))).toBe(false);
    });

    it('keeps emails lowercase so uniqueness is case-insensitive', async () => {
      const err: unknown = await newUser(`${uid('Mixed')}@Example.test`).then(() => undefined, (e: unknown) => e);
      expect(isCheckViolation(err)).toBe(true);
    });

    it('does not leak statement parameters through driver errors', async () => {
      const email = `${uid('leak')}@example.test`;
      await newUser(email);
      const err: unknown = await newUser(email).then(() => undefined, (e: unknown) => e);
      const dumped = JSON.stringify(err, Object.getOwnPropertyNames(err));
      expect(dumped).not.toContain(email);
    });

    it('refuses text it would not keep as given, a NUL or a lone surrogate, and keeps surrogate pairs', async () => {
      for (const name of ['a\u0000b', 'a\ud800b', 'a\udc00']) {
        const id = uid('org');
        const err: unknown = await store.db.insertInto('orgs').values({ id, name, slug: id }).execute().then(() => undefined, (e: unknown) => e);
        expect({ name, refused: isUnstorableTextError(err) }).toEqual({ name, refused: true });
        expect(await store.db.selectFrom('orgs').select('id').where('id', '=', id).executeTakeFirst()).toBeUndefined();
      }
      const id = uid('org');
      await store.db.insertInto('orgs').values({ id, name: 'a\u{1F600}', slug: id }).execute();
      expect((await store.db.selectFrom('orgs').select('name').where('id', '=', id).executeTakeFirstOrThrow()).name).toBe('a\u{1F600}');
    });

    it('refuses enum values outside the CHECK lists', async () => {
      const org = await newOrg();
      const user = await newUser();
      const badRole: unknown = await sql`INSERT INTO memberships (org_id, user_id, role) VALUES (${org}, ${user}, 'superuser')`.execute(store.db).then(() => undefined, (e: unknown) => e);
      expect(isCheckViolation(badRole)).toBe(true);
      const badType: unknown = await sql`UPDATE users SET user_type = 'anonymous' WHERE id = ${user}`.execute(store.db).then(() => undefined, (e: unknown) => e);
      expect(isCheckViolation(badType)).toBe(true);
    });

    it('enforces foreign keys and cascades deletes to dependent rows', async () => {
      const org = await newOrg();
      const user = await newUser();
      const orphan: unknown = await store.db.insertInto('memberships').values({ org_id: uid('missing'), user_id: user, role: 'member' }).execute().then(() => undefined, (e: unknown) => e);
      expect(isForeignKeyViolation(orphan)).toBe(true);

      await store.db.insertInto('memberships').values({ org_id: org, user_id: user, role: 'owner' }).execute();
      const keyId = uid('key');
      await store.db.insertInto('api_keys').values({ id: keyId, org_id: org, user_id: user, name: 'k', scopes: JSON.stringify(['models:call']), expires_at: new Date(Date.now() + 86_400_000), revoked_at: null, created_by: user }).execute();
      await store.db.insertInto('runtime_instances').values({ id: uid('rt'), org_id: org, user_id: user, key_id: keyId, key_expires_at: null, updated_at: new Date() }).execute();
      await store.db.insertInto('sessions').values({ id_hash: uid('s'), user_id: user, csrf_hash: 'c', mfa_verified: false, expires_at: new Date(Date.now() + 3_600_000), revoked_at: null }).execute();

      await store.db.deleteFrom('orgs').where('id', '=', org).execute();
      expect(await store.db.selectFrom('memberships').where('org_id', '=', org).selectAll().execute()).toEqual([]);
      expect(await store.db.selectFrom('api_keys').where('org_id', '=', org).selectAll().execute()).toEqual([]);
      expect(await store.db.selectFrom('runtime_instances').where('org_id', '=', org).selectAll().execute()).toEqual([]);

      await store.db.deleteFrom('users').where('id', '=', user).execute();
      expect(await store.db.selectFrom('sessions').where('user_id', '=', user).selectAll().execute()).toEqual([]);
    });

    it('rolls a transaction back when its callback throws', async () => {
      const org = uid('org');
      const failure = new Error('boom');
      await expect(
        store.db.transaction().execute(async (trx) => {
          await trx.insertInto('orgs').values({ id: org, name: 'Rolled back', slug: org }).execute();
          throw failure;
        }),
      ).rejects.toBe(failure);
      expect(await store.db.selectFrom('orgs').where('id', '=', org).selectAll().execute()).toEqual([]);
      // The store is still usable after the rollback.
      await store.ping();
    });

    it('loses no update when concurrent transactions increment one row under SELECT … FOR UPDATE', async () => {
      const scope = uid('scope');
      await store.db.insertInto('settings').values({ scope, key: 'counter', value: JSON.stringify({}), version: 1, updated_by: 'test', updated_at: new Date() }).execute();
      const workers = 4;
      const rounds = 5;
      const increment = async (): Promise<void> => {
        await store.db.transaction().execute(async (trx) => {
          const row = await trx.selectFrom('settings').select('version').where('scope', '=', scope).where('key', '=', 'counter').forUpdate().executeTakeFirstOrThrow();
          // Yield between read and write so an unlocked implementation would interleave here.
          await new Promise((resolve) => setTimeout(resolve, 2));
          await trx.updateTable('settings').set({ version: (BigInt(row.version) + 1n).toString() }).where('scope', '=', scope).where('key', '=', 'counter').execute();
        });
      };
      await Promise.all(Array.from({ length: workers }, async () => {
        for (let i = 0; i < rounds; i++) await increment();
      }));
      const final = await store.db.selectFrom('settings').select('version').where('scope', '=', scope).executeTakeFirstOrThrow();
      expect(final.version).toBe(String(1 + workers * rounds));
    });

    it('round-trips jsonb values', async () => {
      const scope = uid('scope');
      const value = { nested: { list: [1, 'two', null, true], unicode: 'zażółć ✓', quote: `"'\\` }, empty: {} };
      await store.db.insertInto('settings').values({ scope, key: 'json', value: JSON.stringify(value), version: 1, updated_by: 'test', updated_at: new Date() }).execute();
      const row = await store.db.selectFrom('settings').select('value').where('scope', '=', scope).executeTakeFirstOrThrow();
      expect(row.value).toEqual(value);
      const notArray: unknown = await sql`INSERT INTO api_keys (id, org_id, user_id, name, scopes, expires_at, created_by) VALUES ('x', 'y', 'z', 'n', '{}', now(), 'c')`.execute(store.db).then(() => undefined, (e: unknown) => e);
      expect(isCheckViolation(notArray) || isForeignKeyViolation(notArray)).toBe(true);
    });

    it('round-trips timestamptz as Date with millisecond precision', async () => {
      const id = uid('org');
      const at = new Date('2031-02-03T04:05:06.789Z');
      await store.db.insertInto('orgs').values({ id, name: 'T', slug: id, created_at: at }).execute();
      const row = await store.db.selectFrom('orgs').select('created_at').where('id', '=', id).executeTakeFirstOrThrow();
      expect(row.created_at).toBeInstanceOf(Date);
      expect(row.created_at.toISOString()).toBe(at.toISOString());
      const defaulted = await newOrg();
      const fresh = await store.db.selectFrom('orgs').select('created_at').where('id', '=', defaulted).executeTakeFirstOrThrow();
      expect(Math.abs(fresh.created_at.getTime() - Date.now())).toBeLessThan(60_000);
    });

    it('returns bigint columns as exact decimal strings, beyond 2^53', async () => {
      const seq = '9007199254740993'; // 2^53 + 1: a JS number would round it
      const id = uid('audit');
      await store.db.insertInto('audit_log').values({ seq, id, at: new Date(), actor: 'user:x', org_id: null, action: 'test.bigint', target: null, outcome: 'success', details: JSON.stringify({}), prev_hash: 'a', hash: id }).execute();
      const row = await store.db.selectFrom('audit_log').select(['seq', 'details']).where('id', '=', id).executeTakeFirstOrThrow();
      expect(row.seq).toBe(seq);
      expect(row.details).toEqual({});
      const count = await store.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<string>().as('n')).where('id', '=', id).executeTakeFirstOrThrow();
      expect(String(count.n)).toBe('1');
    });

    it('refuses an audit outcome outside the allowed list', async () => {
      const err: unknown = await sql`INSERT INTO audit_log (seq, id, at, actor, action, outcome, prev_hash, hash) VALUES (${'1' + Date.now().toString().slice(-9)}, ${uid('a')}, now(), 'x', 'y', 'maybe', 'p', 'h')`.execute(store.db).then(() => undefined, (e: unknown) => e);
      expect(isCheckViolation(err)).toBe(true);
    });
  });
}
