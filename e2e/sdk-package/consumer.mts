// Type-checked by e2e/sdk-package.test.ts (`tsc --noEmit`, strict) in a scratch project
// that installed the packed SDK: the published declarations, nothing from this repository.
import {
  Call,
  SwitchboardError,
  createSwitchboard,
  describeError,
  devLogin,
  mintRtcToken,
  type ConnectionState,
  type MintTokenResponse,
  type PeerInfo,
  type Room,
  type RoomEvent,
  type SessionPayload,
} from '@switchboard/client';

export async function firstEvent(url: string): Promise<RoomEvent> {
  const switchboard = createSwitchboard({
    url,
    getAccessToken: async ({ forceRefresh }) => {
      const { accessToken, expiresIn } = await devLogin(url, 'typed-user', forceRefresh ? 'Again' : undefined, {
        rooms: { 'typed-*': ['publish'] },
      });
      const seconds: number = expiresIn;
      return seconds > 0 ? accessToken : '';
    },
  });
  const room: Room = switchboard.join('typed-room', { caps: ['publish'] });
  room.on('state', (state: ConnectionState) => console.log(state.status, state.error?.code));
  const session: SessionPayload = await room.ready;
  const peers: PeerInfo[] = await room.peers();
  const minted: MintTokenResponse = await mintRtcToken({ baseUrl: url, accessToken: 'jwt', room: session.room });
  console.log(peers.length, minted.iceServers.length, minted.expiresAt - Date.now());
  await room.signal(session.peerId, 'bye', null);
  const { id } = await room.publish('note', { text: 'typed', tags: ['a', 1, true, null] });
  console.log(id, describeError('rate_limited'));
  new Call({ room }).close();

  // @ts-expect-error the event type is a string
  await room.publish(42);
  // @ts-expect-error `shout` is not a signal kind
  await room.signal(session.peerId, 'shout', null);
  // @ts-expect-error data must be JSON
  await room.publish('note', { when: new Date() });
  // @ts-expect-error mintRtcToken needs a room
  await mintRtcToken({ baseUrl: url, accessToken: 'jwt' });

  return new Promise((resolve, reject) => {
    room.on('room:event', resolve);
    room.on('error', (error: SwitchboardError) => {
      reject(error);
    });
  });
}
