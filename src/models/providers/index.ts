/** Provider adapters by kind. */
import type { ProviderConfig } from '../config.js';
import { anthropicAdapter } from './anthropic.js';
import { openAiAdapter } from './openai.js';
import type { ProviderAdapter } from './types.js';

export type { BuildInput, Operation, ProviderAdapter, StreamObserver, UpstreamRequest } from './types.js';

const OPENAI = openAiAdapter('openai');
const COMPATIBLE = openAiAdapter('openai_compatible');

export function adapterFor(kind: ProviderConfig['kind']): ProviderAdapter {
  switch (kind) {
    case 'openai':
      return OPENAI;
    case 'openai_compatible':
      return COMPATIBLE;
    case 'anthropic':
      return anthropicAdapter;
  }
}
