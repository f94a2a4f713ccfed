/** The provider simulator: an OpenAI- and Anthropic-compatible upstream for tests and benchmarks. */
export { startSimulator, type Simulator, type SimulatorConfig, type SimulatorOptions } from './server.js';
export { DEFAULT_BEHAVIOUR, type Behaviour, type BehaviourPatch, type FailureMode, type FailurePlan, type UsageMode } from './behaviour.js';
export type { RecordedRequest, RecordedUsage, RequestOutcome } from './recorder.js';
export { audioSecondsFor, completionText, promptTokensFor, tokensForCharacters, type Protocol } from './usage.js';
