import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost, runLoad } from './load.js';
import { startSimulator, type Simulator } from './simulator/index.js';

let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({ recordLimit: 0 });
});

afterAll(async () => {
  await sim.close();
});

const chat = (stream: boolean) => JSON.stringify({ model: 'sim-chat', stream, messages: [{ role: 'user', content: 'hi' }] });

describe('load generator', () => {
  it('sends exactly the requested count over keep-alive connections', async () => {
    const result = await runLoad({
      url: sim.url,
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: chat(false),
      connections: 4,
      requests: 200,
    });
    expect(result.requests).toBe(200);
    expect(result.errors).toBe(0);
    expect(result.statuses).toEqual({ '200': 200 });
    expect(result.latency.p50Ms).toBeGreaterThan(0);
    expect(result.latency.p99Ms).toBeGreaterThanOrEqual(result.latency.p50Ms);
  });

  it('measures streams to the last byte and stops at the duration', async () => {
    const result = await runLoad({
      url: sim.url,
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim-chunk-delay-ms': '5', 'x-sim-chunks': '4' },
      body: chat(true),
      connections: 2,
      durationMs: 300,
      warmupMs: 50,
    });
    expect(result.requests).toBeGreaterThan(0);
    // Four chunks 5 ms apart: the whole stream takes at least 15 ms, the headers come first.
    expect(result.latency.p50Ms).toBeGreaterThanOrEqual(15);
    expect(result.firstByte.p50Ms).toBeLessThan(result.latency.p50Ms);
    expect(result.durationMs).toBeLessThan(1_000);
  });

  it('counts failures as errors', async () => {
    const result = await runLoad({
      url: sim.url,
      path: '/v1/chat/completions',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sim-fail': '500' },
      body: chat(false),
      connections: 1,
      requests: 5,
    });
    expect(result.errors).toBe(5);
    expect(result.statuses).toEqual({ '500': 5 });
  });

  it('refuses non-loopback targets and unbounded runs', async () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('[::1]')).toBe(true);
    expect(isLoopbackHost('10.0.0.1')).toBe(false);
    expect(isLoopbackHost('example.com')).toBe(false);
    await expect(runLoad({ url: 'http://10.0.0.1:80', path: '/', connections: 1, requests: 1 })).rejects.toThrow(/loopback/);
    await expect(runLoad({ url: sim.url, path: '/', connections: 1 })).rejects.toThrow(/durationMs or requests/);
    await expect(runLoad({ url: sim.url, path: '/', connections: 0, requests: 1 })).rejects.toThrow(/connections/);
  });
});
