/**
 * One process at a time on an embedded database folder. PGlite has no locking of its own, and two
 * processes writing the same files corrupt them; so the folder gets a lock file holding the owner's
 * pid, created exclusively. A lock left by a process that no longer exists is taken over.
 */
import { openSync, closeSync, writeSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../../core/errors.js';

export interface DataDirLock {
  release(): void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else — still alive.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryCreate(path: string): boolean {
  try {
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

export function lockDataDir(dir: string): DataDirLock {
  const path = join(dir, 'portcullis.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    if (tryCreate(path)) {
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          try {
            unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    }
    const owner = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    if (Number.isSafeInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
      throw new AppError('dependency_unavailable', {
        message: `The embedded database in ${dir} is in use by process ${owner}. Stop it first; several replicas need PostgreSQL and Redis.`,
      });
    }
    if (owner === process.pid) {
      throw new AppError('dependency_unavailable', { message: `The embedded database in ${dir} is already open in this process.` });
    }
    // Stale lock from a process that is gone.
    unlinkSync(path);
  }
  throw new AppError('dependency_unavailable', { message: `Could not lock the embedded database in ${dir}.` });
}
