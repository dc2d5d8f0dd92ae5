import type { RedisClient } from './connection.js';

/** A Lua script. */
export interface LuaScript {
  readonly source: string;
}

export function lua(source: string): LuaScript {
  return { source: source.trim() };
}

/**
 * Runs `script` with EVAL. Not EVALSHA with a NOSCRIPT fallback: after a restart or a
 * failover the retried calls would run after newer ones already sent, so one publisher's
 * events could be numbered out of the order it sent them. Redis caches the compiled
 * script by its SHA1 either way; EVAL costs only the script's bytes on the wire. On a
 * Cluster the first key picks the node, so every key of one call must share a hash tag.
 */
export function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: string[],
  args: Array<string | number>,
): Promise<unknown> {
  return client.eval(script.source, { keys, arguments: args.map(String) });
}
