import type { HistoryResponse, JsonValue, PeerInfo, PublishEventResponse } from '@switchboard/contract';
import type { HistoryQuery } from '../history/types.js';

/** What the HTTP API (and the dashboard) may do with rooms; the realtime core provides it. */
export interface RoomsApi {
  publish(room: string, event: { type: string; data: JsonValue }, from: string): Promise<PublishEventResponse>;
  peers(room: string): Promise<PeerInfo[]>;
  /** Rejects with HistoryUnavailableError while Redis is unreachable and this replica does not follow the room. */
  history(room: string, query: HistoryQuery): Promise<HistoryResponse>;
  /** Ends `userId`'s sessions in `room` on every replica and refuses the tokens minted for them so far. */
  kick(room: string, userId: string): Promise<void>;
}

/** A room with members on this replica, and the `seq` of the last event delivered in it (the dashboard's sampler reads them). */
export interface LocalRoom {
  room: string;
  members: number;
  seq: number;
}
