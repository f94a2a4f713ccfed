/**
 * The scenario table `npm run bench` runs, in order. Add a scenario by writing a `Scenario` in this
 * folder and listing it here; `PORTCULLIS_BENCH_ONLY=name,name` runs a subset.
 */
import type { Scenario } from '../scenario.js';
import { admissionDecisions } from './admission.js';
import { capabilities } from './capabilities.js';
import { keyVerify } from './key-verify.js';
import { modelGateway } from './model-gateway.js';
import { simulatorDirect } from './simulator-direct.js';

export const SCENARIOS: readonly Scenario[] = [simulatorDirect, keyVerify, admissionDecisions, capabilities, modelGateway];
