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
};
