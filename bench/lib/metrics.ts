import { HttpConnection } from '../loadgen/http-client.js';
import type { ServerProcess } from './processes.js';

/** The value of an unlabelled counter or gauge on a Switchboard replica's `/metrics`. */
export async function readMetric(server: ServerProcess, name: string): Promise<number> {
  const connection = new HttpConnection(server.host, server.port);
  try {
    const response = await connection.request('GET', '/metrics', '');
    if (response.status !== 200) throw new Error(`${server.name} /metrics answered ${response.status}`);
    const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(response.body.toString());
    if (!match) throw new Error(`${server.name} /metrics has no ${name}`);
    return Number(match[1]);
  } finally {
    connection.close();
  }
}
