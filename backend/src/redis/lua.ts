import { createHash } from 'node:crypto';
import type { RedisClient } from './connection.js';

/** A Lua script, sent once per node and run by its SHA1 afterwards. */
export interface LuaScript {
  readonly source: string;
  readonly sha1: string;
}

export function lua(source: string): LuaScript {
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

/**
 * Runs `script` with EVALSHA, loading it with EVAL on the first NOSCRIPT (a new node,
 * a restart, a failover). On a Cluster the first key picks the node, so every key of
 * one call must share a hash tag.
 */
export async function runScript(
  client: RedisClient,
  script: LuaScript,
  keys: string[],
  args: Array<string | number>,
): Promise<unknown> {
  const options = { keys, arguments: args.map(String) };
  try {
    return await client.evalSha(script.sha1, options);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.eval(script.source, options);
  }
}

/** `{tag}`: the part of a key that picks its Cluster slot; `{` and `}` never occur in room or user names. */
export function hashTag(value: string): string {
  return `{${value}}`;
}
