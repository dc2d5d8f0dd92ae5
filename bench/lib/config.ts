/** Sizes of every scenario; `--quick` shrinks them to a smoke run of well under a minute. */
export interface BenchConfig {
  quick: boolean;
  mint: {
    /** Requests in flight at once, one per keep-alive connection. */
    concurrency: number;
    /** Distinct users (and access JWTs) the requests rotate through. */
    users: number;
    warmupMs: number;
    durationMs: number;
  };
  connections: {
    sockets: number;
    /** Handshakes in flight at once. */
    concurrency: number;
    roomSize: number;
    /** Sockets opened and closed first so that the measured ones run on warm code. */
    warmupSockets: number;
    /**
     * Wait between the last handshake and the heap reading. Past both servers' first
     * heartbeat (pingInterval 20 s and 25 s) the sockets are in their steady state:
     * e.g. ws keeps the last frame a client sent (the CONNECT, with its token) until the next.
     */
    settleMs: number;
  };
  fanout: {
    members: number;
    publishersPerReplica: number;
    /** Members per replica that parse every event to time it; the rest only count. */
    sampledPerReplica: number;
    rates: number[];
    /** The rate the goals are judged at. */
    headlineRate: number;
    warmupMs: number;
    durationMs: number;
  };
  latency: {
    members: number;
    rate: number;
    warmupMs: number;
    durationMs: number;
  };
  publishLatency: {
    members: number;
    publishersPerReplica: number;
    sampledPerReplica: number;
    rate: number;
    /** ROOM_HISTORY_SIZE with history on (off is 0). */
    historySize: number;
    warmupMs: number;
    durationMs: number;
  };
  /** Three replicas per system; the busy room's members on the first two, quiet rooms on the third. */
  idleReplica: {
    busyMembers: number;
    publishersPerReplica: number;
    rate: number;
    quietRooms: number;
    quietRoomMembers: number;
    warmupMs: number;
    durationMs: number;
  };
  /** Three replicas per system, restarted one after the other under a steady publisher. */
  rollingRestart: {
    members: number;
    rate: number;
    /** Replicas restarted, one after the other, from the first (the publisher is on the last). */
    restarts: number;
    /** Publishing before the first restart. */
    warmupMs: number;
    /** After a restarted replica is ready, before the next one is stopped. */
    settleMs: number;
    /** Publishing after the last restart. */
    tailMs: number;
  };
  historyMemory: {
    rooms: number;
    /** Events published into each room: the history is full at ROOM_HISTORY_SIZE (100). */
    eventsPerRoom: number;
  };
  /**
   * Switchboard alone: server CPU per join in rooms of `smallRoom` against one room of
   * `largeRoom` (one replica) and one of `hugeRoom` (two replicas).
   */
  joinCost: {
    smallRoom: number;
    /** Sockets that fill the rooms of `smallRoom`, on one replica and again on two. */
    smallSockets: number;
    largeRoom: number;
    hugeRoom: number;
    /** Handshakes in flight at once. */
    concurrency: number;
    warmupSockets: number;
    /** A fill still going then starts no more handshakes; its figures cover the joins made. */
    fillTimeoutMs: number;
    /** A fill is over once no member received anything for this long. */
    quietMs: number;
  };
  /** Switchboard alone, one replica: `users` users in three rooms of `roomSize` each, over three sockets or one. */
  threeRooms: {
    users: number;
    roomSize: number;
    concurrency: number;
    warmupUsers: number;
    /** Wait before the heap reading, as for `connections.settleMs`. */
    settleMs: number;
  };
  /**
   * Switchboard alone: publish latency (as `publishLatency`) with an idempotency key on every
   * publish and without, `rounds` times each in the order without, with, with, without…, and
   * fan-out (as `fanout`, at its headline rate) with keys against the baseline.
   */
  idempotentPublish: {
    rounds: number;
  };
  /** Switchboard replicas, webhooks off then on, handshakes paced at `joinsPerSecond`. */
  webhooks: {
    replicas: number;
    joinsPerSecond: number;
    durationMs: number;
    roomSize: number;
    /** The receiver answers each webhook after this long. */
    receiverDelayMs: number;
    warmupJoins: number;
    /** Runs with webhooks off, and as many on, alternating; their figures are summed. */
    rounds: number;
  };
  /** One replica whose Redis link goes silent (a freezable proxy): publishes with the circuit open. */
  circuit: {
    /** Sequential publishes measured before the link goes silent, and again while the circuit is open. */
    publishes: number;
    unresponsiveAfterMs: number;
  };
}

export const FULL: BenchConfig = {
  quick: false,
  mint: { concurrency: 32, users: 1000, warmupMs: 3_000, durationMs: 10_000 },
  connections: { sockets: 5_000, concurrency: 64, roomSize: 10, warmupSockets: 500, settleMs: 30_000 },
  fanout: {
    members: 500,
    publishersPerReplica: 2,
    sampledPerReplica: 10,
    rates: [100, 250, 500, 1000],
    headlineRate: 1000,
    warmupMs: 2_000,
    durationMs: 10_000,
  },
  latency: { members: 100, rate: 100, warmupMs: 2_000, durationMs: 10_000 },
  publishLatency: {
    members: 100,
    publishersPerReplica: 2,
    sampledPerReplica: 10,
    rate: 500,
    historySize: 100,
    warmupMs: 2_000,
    durationMs: 10_000,
  },
  idleReplica: {
    busyMembers: 100,
    publishersPerReplica: 2,
    rate: 1000,
    quietRooms: 20,
    quietRoomMembers: 5,
    warmupMs: 2_000,
    durationMs: 10_000,
  },
  rollingRestart: { members: 30, rate: 100, restarts: 3, warmupMs: 2_000, settleMs: 2_000, tailMs: 3_000 },
  historyMemory: { rooms: 200, eventsPerRoom: 100 },
  circuit: { publishes: 2_000, unresponsiveAfterMs: 500 },
  joinCost: {
    smallRoom: 10,
    smallSockets: 2_000,
    largeRoom: 1_000,
    hugeRoom: 10_000,
    concurrency: 32,
    warmupSockets: 300,
    fillTimeoutMs: 180_000,
    quietMs: 1_200,
  },
  threeRooms: { users: 3_000, roomSize: 10, concurrency: 32, warmupUsers: 300, settleMs: 30_000 },
  idempotentPublish: { rounds: 2 },
  webhooks: {
    replicas: 3,
    joinsPerSecond: 200,
    durationMs: 10_000,
    roomSize: 10,
    receiverDelayMs: 20,
    warmupJoins: 300,
    rounds: 3,
  },
};

export const QUICK: BenchConfig = {
  quick: true,
  mint: { concurrency: 8, users: 50, warmupMs: 500, durationMs: 2_000 },
  connections: { sockets: 200, concurrency: 32, roomSize: 10, warmupSockets: 20, settleMs: 1_000 },
  fanout: {
    members: 50,
    publishersPerReplica: 1,
    sampledPerReplica: 5,
    rates: [100, 1000],
    headlineRate: 1000,
    warmupMs: 500,
    durationMs: 2_000,
  },
  latency: { members: 20, rate: 100, warmupMs: 500, durationMs: 2_000 },
  publishLatency: {
    members: 10,
    publishersPerReplica: 1,
    sampledPerReplica: 5,
    rate: 200,
    historySize: 100,
    warmupMs: 300,
    durationMs: 1_000,
  },
  idleReplica: {
    busyMembers: 10,
    publishersPerReplica: 1,
    rate: 500,
    quietRooms: 2,
    quietRoomMembers: 3,
    warmupMs: 300,
    durationMs: 1_000,
  },
  rollingRestart: { members: 6, rate: 100, restarts: 1, warmupMs: 500, settleMs: 0, tailMs: 500 },
  historyMemory: { rooms: 5, eventsPerRoom: 100 },
  circuit: { publishes: 200, unresponsiveAfterMs: 500 },
  joinCost: {
    smallRoom: 10,
    smallSockets: 100,
    largeRoom: 60,
    hugeRoom: 120,
    concurrency: 16,
    warmupSockets: 20,
    fillTimeoutMs: 30_000,
    quietMs: 300,
  },
  threeRooms: { users: 60, roomSize: 10, concurrency: 16, warmupUsers: 10, settleMs: 500 },
  idempotentPublish: { rounds: 1 },
  webhooks: {
    replicas: 2,
    joinsPerSecond: 200,
    durationMs: 1_000,
    roomSize: 10,
    receiverDelayMs: 20,
    warmupJoins: 20,
    rounds: 1,
  },
};
