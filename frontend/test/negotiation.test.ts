import type { JsonValue, SignalKind } from '@switchboard/contract';
import { describe, expect, it, vi } from 'vitest';
import {
  PerfectNegotiation,
  candidateToJson,
  isPolite,
  parseCandidate,
  parseDescription,
} from '../src/sdk/negotiation.js';
import { FakePeerConnection } from './fakes.js';

interface Side {
  pc: FakePeerConnection;
  negotiation: PerfectNegotiation;
  sent: SignalKind[];
  errors: unknown[];
}

/** Two peers whose signals reach each other after a network hop, as through the gateway. */
function pair(yieldFirstOfferMs = 0): { polite: Side; impolite: Side } {
  const make = (label: string, polite: boolean, deliver: (kind: SignalKind, data: JsonValue) => void): Side => {
    const pc = new FakePeerConnection(label);
    const sent: SignalKind[] = [];
    const errors: unknown[] = [];
    const negotiation = new PerfectNegotiation({
      pc,
      polite,
      yieldFirstOfferMs: polite ? yieldFirstOfferMs : 0,
      send: (kind, data) => {
        sent.push(kind);
        setTimeout(() => {
          deliver(kind, data);
        }, 1);
        return Promise.resolve();
      },
      onError: (error) => errors.push(error),
    });
    return { pc, negotiation, sent, errors };
  };
  const polite: Side = make('polite', true, (kind, data) => void impolite.negotiation.receive(kind, data));
  const impolite: Side = make('impolite', false, (kind, data) => void polite.negotiation.receive(kind, data));
  return { polite, impolite };
}

/** One peer whose outgoing signals are only recorded. */
function lone(label: string, polite: boolean, yieldFirstOfferMs = 0) {
  const pc = new FakePeerConnection(label);
  const signals: Array<{ kind: SignalKind; data: JsonValue }> = [];
  const errors: unknown[] = [];
  const negotiation = new PerfectNegotiation({
    pc,
    polite,
    yieldFirstOfferMs,
    send: (kind, data) => {
      signals.push({ kind, data });
      return Promise.resolve();
    },
    onError: (error) => errors.push(error),
  });
  return { pc, negotiation, signals, errors, sent: () => signals.map((signal) => signal.kind) };
}

const candidate = (n: number): JsonValue => ({
  candidate: `candidate:${n} 1 udp 2122260223 192.0.2.${n} 5000${n} typ host`,
  sdpMid: '0',
  sdpMLineIndex: 0,
  usernameFragment: null,
});

describe('perfect negotiation', () => {
  it('decides politeness from the peer ids, the same way on both sides', () => {
    expect(isPolite('aaa', 'bbb')).toBe(true);
    expect(isPolite('bbb', 'aaa')).toBe(false);
    const [first, second] = ['Xk3-peer', 'Pz9-peer'];
    expect(isPolite(first, second)).not.toBe(isPolite(second, first));
  });

  it('settles offers that collide: the polite peer rolls back and answers, the impolite one ignores', async () => {
    const { polite, impolite } = pair();
    // Both sides add a channel at once, so both start an offer before either arrives.
    await Promise.all([polite.negotiation.negotiationNeeded(), impolite.negotiation.negotiationNeeded()]);
    polite.negotiation.iceCandidate(parseCandidate(candidate(1)) ?? null);
    impolite.negotiation.iceCandidate(parseCandidate(candidate(2)) ?? null);

    await vi.waitFor(() => {
      expect(polite.pc.signalingState).toBe('stable');
      expect(impolite.pc.signalingState).toBe('stable');
      expect(impolite.pc.remoteDescription?.type).toBe('answer');
    });
    expect(polite.pc.rollbacks).toBe(1);
    expect(impolite.pc.rollbacks).toBe(0);
    expect(polite.sent).toEqual(['offer', 'candidate', 'answer']);
    expect(impolite.sent).toEqual(['offer', 'candidate']);
    // The impolite peer's offer won; the polite peer answered exactly that offer.
    expect(polite.pc.remoteDescription?.sdp).toBe('offer impolite #1');
    expect(impolite.pc.remoteDescription?.sdp).toBe('answer polite to [offer impolite #1]');
    // The candidate of the ignored offer fails quietly; the other one is applied.
    expect(impolite.pc.candidates).toHaveLength(0);
    expect(polite.pc.candidates).toHaveLength(1);
    expect(polite.errors).toEqual([]);
    expect(impolite.errors).toEqual([]);
  });

  it('lets a yielding polite peer answer the first offer instead of colliding with it', async () => {
    const { polite, impolite } = pair(5_000);
    await Promise.all([polite.negotiation.negotiationNeeded(), impolite.negotiation.negotiationNeeded()]);

    await vi.waitFor(() => {
      expect(impolite.pc.remoteDescription?.type).toBe('answer');
    });
    expect([polite.pc.signalingState, impolite.pc.signalingState]).toEqual(['stable', 'stable']);
    // Nothing was rolled back: the first connection of a page is never torn up mid-gathering.
    expect(polite.pc.rollbacks + impolite.pc.rollbacks).toBe(0);
    expect(polite.sent).toEqual(['answer']);
    expect(impolite.sent).toEqual(['offer']);
    expect(polite.negotiation.yielding).toBe(false);
    polite.negotiation.close();
  });

  it('makes the first offer after all when the other side stays silent', async () => {
    const { negotiation, sent } = lone('patient', true, 30);
    await negotiation.negotiationNeeded();
    expect(sent()).toEqual([]);
    await vi.waitFor(() => {
      expect(sent()).toEqual(['offer']);
    });
  });

  it('lets the impolite peer ignore a colliding offer and keep its own', async () => {
    const { pc, negotiation, sent, errors } = lone('impolite', false);
    await negotiation.negotiationNeeded();
    await negotiation.receive('offer', { type: 'offer', sdp: 'offer from the polite side' });
    await negotiation.receive('candidate', candidate(7));

    expect(pc.signalingState).toBe('have-local-offer');
    expect(pc.localDescription?.sdp).toBe('offer impolite #1');
    expect(sent()).toEqual(['offer']);
    expect(errors).toEqual([]);
  });

  it('lets the polite peer accept a colliding offer even while its own offer is being made', async () => {
    const { pc, negotiation, signals } = lone('polite', true);
    const making = negotiation.negotiationNeeded();
    expect(negotiation.makingOffer).toBe(true);
    const receiving = negotiation.receive('offer', { type: 'offer', sdp: 'their offer' });
    await Promise.all([making, receiving]);

    expect(pc.rollbacks).toBe(1);
    expect(pc.signalingState).toBe('stable');
    expect(signals.at(-1)).toEqual({ kind: 'answer', data: { type: 'answer', sdp: 'answer polite to [their offer]' } });
  });

  it('answers an offer when stable and applies candidates sent right behind it, in order', async () => {
    const { pc, negotiation, sent, errors } = lone('callee', false);
    // Not awaited one by one: they arrive back to back, as from the socket.
    void negotiation.receive('offer', { type: 'offer', sdp: 'offer' });
    void negotiation.receive('candidate', candidate(1));
    await negotiation.receive('candidate', candidate(2));

    expect(sent()).toEqual(['answer']);
    expect(pc.candidates.map((c) => c.candidate)).toEqual([
      'candidate:1 1 udp 2122260223 192.0.2.1 50001 typ host',
      'candidate:2 1 udp 2122260223 192.0.2.2 50002 typ host',
    ]);
    expect(errors).toEqual([]);
  });

  it('reports a candidate that fails outside of a collision', async () => {
    const { negotiation, errors } = lone('lonely', true);
    await negotiation.receive('candidate', candidate(3));
    expect(errors).toHaveLength(1);
    expect((errors[0] as DOMException).name).toBe('InvalidStateError');
  });

  it('ignores malformed signal data and anything after close', async () => {
    const { pc, negotiation, sent } = lone('careful', true);
    await negotiation.receive('offer', { type: 'answer', sdp: 'mislabelled' });
    await negotiation.receive('offer', 'not a description');
    await negotiation.receive('candidate', { candidate: 42 });
    expect(pc.signalingState).toBe('stable');
    negotiation.close();
    await negotiation.receive('offer', { type: 'offer', sdp: 'too late' });
    await negotiation.negotiationNeeded();
    expect(sent()).toEqual([]);
    expect(pc.remoteDescription).toBeNull();
  });

  it('sends descriptions and candidates as plain JSON', () => {
    expect(parseDescription({ type: 'offer', sdp: 'v=0' })).toEqual({ type: 'offer', sdp: 'v=0' });
    expect(parseDescription({ type: 'rollback', sdp: '' })).toBeUndefined();
    const json = candidateToJson({ candidate: 'candidate:1', sdpMid: '0' });
    expect(json).toEqual({ candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: null, usernameFragment: null });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    expect(parseCandidate(json)).toEqual({ candidate: 'candidate:1', sdpMid: '0', sdpMLineIndex: null });
  });
});
