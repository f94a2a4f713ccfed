/** Every migration, in apply order. Append new ones; never edit or reorder an applied one. */
import type { Migration } from './migration.js';
import { initial } from './0001_initial.js';
import { budgets } from './0002_budgets.js';
import { usage } from './0003_usage.js';
import { customEndpoints } from './0004_custom_endpoints.js';
import { usageRollups } from './0005_usage_rollups.js';

export type { Migration };

export const MIGRATIONS: readonly Migration[] = [initial, budgets, usage, customEndpoints, usageRollups];
