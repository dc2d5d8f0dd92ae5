import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultTransports } from '../src/sdk/connection.js';

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('the transports the SDK opens a gateway with', () => {
  it('falls back to long-polling for a gateway on the page’s own origin', () => {
    vi.stubGlobal('location', new URL('https://app.example.com/call?room=a'));
    expect(defaultTransports('https://app.example.com')).toEqual(['websocket', 'polling']);
    expect(defaultTransports('/')).toEqual(['websocket', 'polling']);
  });

  it('uses WebSocket only cross-origin, where polling requests carry no affinity cookie', () => {
    vi.stubGlobal('location', new URL('https://app.example.com/call'));
    expect(defaultTransports('https://switchboard.example.com')).toEqual(['websocket']);
    expect(defaultTransports('http://app.example.com')).toEqual(['websocket']);
  });

  it('keeps both outside a browser, where there is no page origin', () => {
    expect(defaultTransports('http://127.0.0.1:3000')).toEqual(['websocket', 'polling']);
  });
});
