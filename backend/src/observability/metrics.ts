import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric the gateway exports, on a registry of its own so that several
 * gateways in one process (tests) never share counters. Labels are bounded sets:
 * no room, user or token ever becomes a label value.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  const registers = [registry];
  return {
    registry,
    connectedSockets: new Gauge({
      name: 'switchboard_connected_sockets',
      help: 'Authenticated sockets connected to this replica',
      registers,
    }),
    rooms: new Gauge({ name: 'switchboard_rooms', help: 'Rooms with members on this replica', registers }),
    handshakes: new Counter({
      name: 'switchboard_handshakes_total',
      help: 'Socket.IO handshakes by outcome: ok, or the refusal code',
      labelNames: ['outcome'] as const,
      registers,
    }),
    handshakeSeconds: new Histogram({
      name: 'switchboard_handshake_duration_seconds',
      help: 'Time to authenticate and admit a socket',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    tokensMinted: new Counter({
      name: 'switchboard_tokens_minted_total',
      help: 'RTC tokens minted, by the store that recorded them',
      labelNames: ['store'] as const,
      registers,
    }),
    tokensRedeemed: new Counter({
      name: 'switchboard_tokens_redeemed_total',
      help: 'RTC tokens redeemed, by the store that enforced single use',
      labelNames: ['store'] as const,
      registers,
    }),
    tokensExpired: new Counter({
      name: 'switchboard_tokens_expired_total',
      help: 'RTC tokens refused as expired, or evicted from the fallback map unredeemed',
      registers,
    }),
    tokensRevoked: new Counter({ name: 'switchboard_tokens_revoked_total', help: 'RTC tokens revoked', registers }),
    roomAccess: new Counter({
      name: 'switchboard_room_access_total',
      help:
        'Room access decisions at mint, by where the decision came from (grant, authorizer, cache, open, service) ' +
        'and result (allow, deny, unavailable)',
      labelNames: ['source', 'result'] as const,
      registers,
    }),
    kicks: new Counter({
      name: 'switchboard_kicks_total',
      help: 'Sockets of this replica ended because the app removed their user from the room',
      registers,
    }),
    slowConsumers: new Counter({
      name: 'switchboard_slow_consumer_disconnects_total',
      help: 'Sockets disconnected because their unsent frames passed SOCKET_MAX_BUFFERED_BYTES',
      registers,
    }),
    tokensSynced: new Counter({
      name: 'switchboard_tokens_synced_total',
      help: 'Fallback-map tokens written to Redis after it returned',
      registers,
    }),
    fallbackEntries: new Gauge({
      name: 'switchboard_token_fallback_entries',
      help: 'Entries held by the in-memory token map',
      registers,
    }),
    mintSeconds: new Histogram({
      name: 'switchboard_mint_duration_seconds',
      help: 'Time to mint an RTC token, from request to response',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    redisUp: new Gauge({
      name: 'switchboard_redis_up',
      help: '1 when the Redis command connection is ready',
      registers,
    }),
    redisCommandFailures: new Counter({
      name: 'switchboard_redis_command_failures_total',
      help: 'Redis commands that failed or timed out, by operation',
      labelNames: ['operation'] as const,
      registers,
    }),
    adapterPublishFailures: new Counter({
      name: 'switchboard_adapter_publish_failures_total',
      help: 'Socket.IO adapter publishes to Redis that failed (delivery stayed local)',
      registers,
    }),
    eventsIn: new Counter({
      name: 'switchboard_events_in_total',
      help: 'Client and HTTP events received, by event and result',
      labelNames: ['event', 'result'] as const,
      registers,
    }),
    eventsOut: new Counter({
      name: 'switchboard_events_out_total',
      help: 'Room events and signals emitted to local sockets, by kind',
      labelNames: ['event'] as const,
      registers,
    }),
    deliveries: new Counter({
      name: 'switchboard_deliveries_total',
      help: 'Messages delivered to local sockets (one event to one socket is one delivery)',
      registers,
    }),
    frames: new Counter({
      name: 'switchboard_room_frames_total',
      help: 'Room-event frames written to local sockets; deliveries / frames is the coalescing factor',
      registers,
    }),
    recoveries: new Counter({
      name: 'switchboard_recoveries_total',
      help: 'Handshakes that asked to recover, by outcome: recovered, or the reason it was refused',
      labelNames: ['outcome'] as const,
      registers,
    }),
    recoveryReplayed: new Counter({
      name: 'switchboard_recovery_replayed_events_total',
      help: 'Room events replayed to reconnecting sockets',
      registers,
    }),
    historyFilled: new Counter({
      name: 'switchboard_history_filled_events_total',
      help: 'Room events this replica missed on the channel and read from the history to fill a hole',
      registers,
    }),
    historyFillFailures: new Counter({
      name: 'switchboard_history_fill_failures_total',
      help: 'History reads for a hole that failed (they are retried; nothing is skipped)',
      registers,
    }),
    roomEpochMoves: new Counter({
      name: 'switchboard_room_epoch_moves_total',
      help: 'Room numbering moves sent to members (room:epoch), by reason (none: nothing was lost)',
      labelNames: ['reason'] as const,
      registers,
    }),
    historyRegressions: new Counter({
      name: 'switchboard_history_regressions_total',
      help: 'Room histories found behind what this replica delivered (a failover lost writes, an older snapshot): a new epoch',
      registers,
    }),
    lateReplies: new Counter({
      name: 'switchboard_redis_late_replies_total',
      help:
        'Replies to commands the gateway had given up on (a silent link that came back), by outcome: ' +
        'refused (a guarded write arrived after its deadline), answered (it ran), failed',
      labelNames: ['operation', 'outcome'] as const,
      registers,
    }),
    localPublishes: new Counter({
      name: 'switchboard_local_publishes_total',
      help: 'Room events published while Redis was unreachable (local: true, this replica only)',
      registers,
    }),
    roomChannelBytes: new Counter({
      name: 'switchboard_room_channel_bytes_total',
      help: 'Bytes this replica received on the channels of the rooms it follows',
      registers,
    }),
    presenceReaped: new Counter({
      name: 'switchboard_presence_reaped_peers_total',
      help: 'Peers announced as left because their replica stopped heartbeating',
      registers,
    }),
    upstreamMinted: new Counter({
      name: 'switchboard_upstream_secrets_minted_total',
      help: 'Upstream realtime client secrets minted, by provider and the store that recorded them',
      labelNames: ['provider', 'store'] as const,
      registers,
    }),
    upstreamRefused: new Counter({
      name: 'switchboard_upstream_refused_total',
      help: 'Upstream secret requests refused by a per-user limit: live (most live secrets held) or rate (most mints this minute)',
      labelNames: ['provider', 'limit'] as const,
      registers,
    }),
    upstreamFailures: new Counter({
      name: 'switchboard_upstream_failures_total',
      help: 'Upstream secret requests that failed at the provider, by kind (timeout, unreachable, server_error, rate_limited, auth, rejected, invalid_response)',
      labelNames: ['provider', 'kind'] as const,
      registers,
    }),
    idempotentRepeats: new Counter({
      name: 'switchboard_idempotent_repeats_total',
      help: 'Publishes answered with an earlier publish of the same idempotencyKey (nothing published)',
      registers,
    }),
    webhooksDelivered: new Counter({
      name: 'switchboard_webhooks_delivered_total',
      help: 'Lifecycle webhooks accepted (2xx) by every receiver, delivered by this replica',
      registers,
    }),
    webhooksRetried: new Counter({
      name: 'switchboard_webhooks_retried_total',
      help: 'Webhook attempts that failed (no 2xx, timeout, unreachable) and were scheduled again',
      registers,
    }),
    webhooksGivenUp: new Counter({
      name: 'switchboard_webhooks_given_up_total',
      help: 'Lifecycle webhooks given up, by reason: expired (not accepted within WEBHOOK_RETRY_SECONDS), overflow (memory mode queue was full), unwritten (the outbox write failed)',
      labelNames: ['reason'] as const,
      registers,
    }),
    webhookLagSeconds: new Histogram({
      name: 'switchboard_webhook_lag_seconds',
      help: 'From a lifecycle event to its webhook being accepted, seconds',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    }),
    webhookOutboxOldestSeconds: new Gauge({
      name: 'switchboard_webhook_outbox_oldest_seconds',
      help: 'Age of the oldest undelivered webhook in the outbox partitions this replica delivers (0 when none)',
      registers,
    }),
    webhookOutboxPartitions: new Gauge({
      name: 'switchboard_webhook_outbox_partitions',
      help: 'Outbox partitions this replica delivers now (the replicas share them evenly)',
      registers,
    }),
    webhookOutboxLength: new Gauge({
      name: 'switchboard_webhook_outbox_length',
      help: 'Undelivered webhooks in the outbox partitions this replica delivers',
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
