/**
 * Tools the provider runs itself — web search, file search, code execution, image generation,
 * remote MCP servers — are billed per use, outside the token usage Portcullis meters and reserves
 * for. A call asking for one would spend money no budget sees, so a model serves them only when the
 * operator says so (`allowServerTools`), knowing their fees are not metered.
 *
 * Tools the client runs (OpenAI `function` and `custom` tools, Anthropic tools without a type or
 * with an Anthropic-defined type the client executes, such as computer use or the text editor)
 * cost tokens only and are always allowed.
 */
import type { Operation } from './providers/index.js';
import { isRecord } from './providers/types.js';

export interface ServerTool {
  /** Where the call asked for it, as a validation error names it. */
  field: string;
  /** The tool's type as the call wrote it. */
  name: string;
}

/** OpenAI tool types the client executes; every other type runs at the provider. */
const OPENAI_CLIENT_TOOLS = new Set(['function', 'custom']);
/** Anthropic tool types the provider executes (versioned: `web_search_20250305` and so on). */
const ANTHROPIC_SERVER_TOOL_PREFIXES = ['web_search', 'web_fetch', 'code_execution'];

function toolName(tool: unknown): string {
  return isRecord(tool) && typeof tool.type === 'string' ? tool.type : '';
}

function isServerTool(operation: Operation, tool: unknown): boolean {
  const name = toolName(tool);
  if (operation === 'messages') return ANTHROPIC_SERVER_TOOL_PREFIXES.some((prefix) => name.startsWith(prefix));
  // A tool an OpenAI call cannot name is not one the client runs: refused with the rest.
  return !OPENAI_CLIENT_TOOLS.has(name);
}

/** The first provider-run tool a call asks for, or null. */
export function serverToolOf(operation: Operation, body: Record<string, unknown>): ServerTool | null {
  if (operation !== 'chat' && operation !== 'responses' && operation !== 'messages') return null;
  if (operation === 'chat' && body.web_search_options !== undefined) return { field: 'body.web_search_options', name: 'web_search' };
  if (operation === 'messages' && body.mcp_servers !== undefined) return { field: 'body.mcp_servers', name: 'mcp' };
  const tools = body.tools;
  if (!Array.isArray(tools)) return null;
  const index = tools.findIndex((tool: unknown) => isServerTool(operation, tool));
  if (index === -1) return null;
  return { field: `body.tools[${index}]`, name: toolName(tools[index]) || 'unnamed' };
}
