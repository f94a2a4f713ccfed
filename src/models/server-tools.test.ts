import { describe, expect, it } from 'vitest';
import { serverToolOf } from './server-tools.js';

const fn = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } };

describe('tools the provider runs and bills outside token usage', () => {
  it('OpenAI chat: web_search_options, or any tool that is not a function or custom tool', () => {
    expect(serverToolOf('chat', { tools: [fn, { type: 'custom', custom: { name: 'x' } }] })).toBeNull();
    expect(serverToolOf('chat', { web_search_options: {} })).toEqual({ field: 'body.web_search_options', name: 'web_search' });
    expect(serverToolOf('chat', { tools: [fn, { type: 'web_search' }] })).toEqual({ field: 'body.tools[1]', name: 'web_search' });
    expect(serverToolOf('chat', { tools: [{ function: { name: 'typeless' } }] })).toEqual({ field: 'body.tools[0]', name: 'unnamed' });
  });

  it('OpenAI Responses: web and file search, code interpreter, image generation, remote MCP', () => {
    for (const type of ['web_search_preview', 'file_search', 'code_interpreter', 'image_generation', 'mcp', 'computer_use_preview']) {
      expect(serverToolOf('responses', { tools: [{ type }] })).toEqual({ field: 'body.tools[0]', name: type });
    }
    expect(serverToolOf('responses', { tools: [{ type: 'function', name: 'f', parameters: {} }] })).toBeNull();
  });

  it('Anthropic messages: versioned server tools and MCP servers; client tools, typed or not, pass', () => {
    expect(serverToolOf('messages', { tools: [{ name: 'get_weather', input_schema: { type: 'object' } }, { type: 'text_editor_20250124', name: 'str_replace_editor' }, { type: 'computer_20250124', name: 'computer' }] })).toBeNull();
    expect(serverToolOf('messages', { tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 5 }] })).toEqual({ field: 'body.tools[0]', name: 'web_search_20250305' });
    expect(serverToolOf('messages', { tools: [{ name: 'a', input_schema: {} }, { type: 'code_execution_20250522', name: 'code_execution' }] })?.field).toBe('body.tools[1]');
    expect(serverToolOf('messages', { mcp_servers: [{ type: 'url', url: 'https://mcp.example/sse', name: 'x' }] })).toEqual({ field: 'body.mcp_servers', name: 'mcp' });
  });

  it('other operations have no tools', () => {
    expect(serverToolOf('embeddings', { tools: [{ type: 'web_search' }] })).toBeNull();
    expect(serverToolOf('completions', { tools: [{ type: 'web_search' }] })).toBeNull();
  });
});
