import { describe, expect, it } from 'vitest';
import { carriesUnboundedInput } from './unbounded-input.js';

const text = { type: 'text', text: 'describe it' };

describe('content whose tokens its bytes do not bound', () => {
  it('OpenAI chat: an image by URL or any file part; an inline image is its own bytes', () => {
    const chat = (content: unknown) => carriesUnboundedInput('chat', { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content }] });
    expect(chat('plain text')).toBe(false);
    expect(chat([text, { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } }])).toBe(false);
    expect(chat([text, { type: 'image_url', image_url: { url: 'https://img.example/cat.png' } }])).toBe(true);
    expect(chat([{ type: 'image_url', image_url: 'not an object' }])).toBe(true);
    expect(chat([{ type: 'file', file: { file_id: 'file-abc' } }])).toBe(true);
    expect(chat([{ type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0=' } }])).toBe(true);
    expect(chat([{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }])).toBe(false);
  });

  it('OpenAI Responses: input images by URL or file id, input files, as items or as parts', () => {
    const responses = (input: unknown) => carriesUnboundedInput('responses', { input });
    expect(responses('a string input')).toBe(false);
    expect(responses([{ role: 'user', content: [{ type: 'input_text', text: 'hi' }, { type: 'input_image', image_url: 'data:image/jpeg;base64,/9j/' }] }])).toBe(false);
    expect(responses([{ role: 'user', content: [{ type: 'input_image', image_url: 'https://img.example/a.jpg' }] }])).toBe(true);
    expect(responses([{ role: 'user', content: [{ type: 'input_image', file_id: 'file-1' }] }])).toBe(true);
    expect(responses([{ role: 'user', content: [{ type: 'input_file', file_url: 'https://docs.example/a.pdf' }] }])).toBe(true);
    expect(responses([{ type: 'input_file', file_id: 'file-2' }])).toBe(true);
  });

  it('Anthropic messages: images by URL or file, documents, and images inside tool results', () => {
    const messages = (content: unknown) => carriesUnboundedInput('messages', { messages: [{ role: 'user', content }] });
    expect(messages([text, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } }])).toBe(false);
    expect(messages([{ type: 'image', source: { type: 'url', url: 'https://img.example/b.png' } }])).toBe(true);
    expect(messages([{ type: 'image', source: { type: 'file', file_id: 'file_01' } }])).toBe(true);
    expect(messages([{ type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: 'JVBERi0=' } }])).toBe(true);
    expect(messages([{ type: 'tool_result', tool_use_id: 't1', content: [text] }])).toBe(false);
    expect(messages([{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'image', source: { type: 'url', url: 'https://img.example/c.png' } }] }])).toBe(true);
  });

  it('other operations are bounded by their bytes, and an endless list of parts counts as unbounded', () => {
    expect(carriesUnboundedInput('embeddings', { input: [{ type: 'image_url' }] })).toBe(false);
    expect(carriesUnboundedInput('completions', { prompt: 'https://img.example/cat.png' })).toBe(false);
    expect(carriesUnboundedInput('chat', { messages: [{ role: 'user', content: Array.from({ length: 5000 }, () => text) }] })).toBe(true);
    expect(carriesUnboundedInput('chat', { messages: 'not a list' })).toBe(false);
  });
});
