import type { BenchConfig } from '../lib/config.js';
import { SYSTEMS, type System, type SystemKind } from '../lib/systems.js';
import { measureIdleReplica, type IdleReplicaFigures } from './idle-replica.js';
import { measureRollingRestart, type RollingRestartFigures } from './rolling-restart.js';

export type IdleReplicaResult = Record<SystemKind, IdleReplicaFigures> & {
  replicas: number;
  rate: number;
  busyMembers: number;
  quietRooms: number;
  quietRoomMembers: number;
};

export type RollingRestartResult = Record<SystemKind, RollingRestartFigures> & {
  replicas: number;
  restarts: number;
  members: number;
  rate: number;
};

/**
 * The idle replica, then the rolling restart, on three replicas per system (which the
 * rolling restart leaves restarted).
 */
export async function runReplicaScenarios(
  systems: Record<SystemKind, System>,
  config: BenchConfig,
  progress: (line: string) => void,
): Promise<{ idleReplica: IdleReplicaResult; rollingRestart: RollingRestartResult }> {
  const replicas = systems.baseline.replicas.length;
  const idle: Partial<Record<SystemKind, IdleReplicaFigures>> = {};
  for (const system of SYSTEMS.map((kind) => systems[kind])) {
    const figures = await measureIdleReplica(system, config);
    idle[system.kind] = figures;
    progress(
      `  idle replica ${system.kind}: ${figures.idleCpuMicrosPerSecond} µs CPU/s, ` +
        `${figures.idleReadBytesPerSecond} bytes read/s while the busy room took ${figures.deliveriesPerSecond} deliveries/s`,
    );
  }
  const rolling: Partial<Record<SystemKind, RollingRestartFigures>> = {};
  for (const system of SYSTEMS.map((kind) => systems[kind])) {
    const figures = await measureRollingRestart(system, config, progress);
    rolling[system.kind] = figures;
    progress(
      `  rolling restart ${system.kind}: ${figures.published} events, ${figures.lost} lost, ` +
        `${figures.duplicated} duplicated deliveries`,
    );
  }
  const { rate, busyMembers, quietRooms, quietRoomMembers } = config.idleReplica;
  return {
    idleReplica: {
      replicas,
      rate,
      busyMembers,
      quietRooms,
      quietRoomMembers,
      ...(idle as Record<SystemKind, IdleReplicaFigures>),
    },
    rollingRestart: {
      replicas,
      restarts: config.rollingRestart.restarts,
      members: config.rollingRestart.members,
      rate: config.rollingRestart.rate,
      ...(rolling as Record<SystemKind, RollingRestartFigures>),
    },
  };
}
