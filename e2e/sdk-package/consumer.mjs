// Run by e2e/sdk-package.test.ts with plain `node`, from a scratch project that installed
// the packed SDK: two users sign in with devLogin and join one room through a real
// gateway; one publishes. Prints what they saw as one JSON line.
import { createSwitchboard, devLogin } from '@switchboard/client';

const url = process.argv[2];
if (!url) throw new Error('usage: node consumer.mjs <gateway url>');

function member(userId) {
  const switchboard = createSwitchboard({
    url,
    // The dev login grants the room, as an app's login would with ROOM_ACCESS=grants.
    getAccessToken: async () =>
      (await devLogin(url, userId, `User ${userId}`, { rooms: { 'pack-test': ['publish'] } })).accessToken,
  });
  return { switchboard, room: switchboard.join('pack-test') };
}

const alice = member('alice');
const bob = member('bob');
try {
  const [aliceSession, bobSession] = await Promise.all([alice.room.ready, bob.room.ready]);
  const heard = new Promise((resolve) => bob.room.on('room:event', resolve));
  const published = await alice.room.publish('greeting', { text: 'hello from node' });
  const event = await heard;
  console.log(JSON.stringify({ aliceSession, bobSession, published, event }));
} finally {
  alice.switchboard.close();
  bob.switchboard.close();
}
