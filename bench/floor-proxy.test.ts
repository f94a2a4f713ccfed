import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entryPoint, startChildServer, startSimulatorProcess, type ChildServer, type SimulatorProcess } from './processes.js';

let sim: SimulatorProcess;
let floor: ChildServer;

beforeAll(async () => {
  sim = await startSimulatorProcess();
  const { script, execArgv } = entryPoint('./floor-proxy.js');
  floor = await startChildServer(script, execArgv, [sim.url]);
});
afterAll(async () => {
  await floor.stop();
  await sim.stop();
});

const chat = (stream: boolean): Promise<Response> =>
  fetch(`${floor.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'any', messages: [{ role: 'user', content: 'hi' }], ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}) }) });

describe('the bare proxy the benchmark measures as the floor', () => {
  it('relays a JSON answer with the upstream model set', async () => {
    const response = await chat(false);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { model: string }).model).toBe('sim-chat');
  });

  it('relays an event stream to its end', async () => {
    const response = await chat(true);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await response.text();
    expect(text).toContain('"usage":{');
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });
});
