import { LIMITS, type ErrorCode } from '@switchboard/contract';
import type { z } from 'zod';
import { referencedSchemas, schemaComponents, type JsonSchema } from './json-schema.js';
import { CLIENT_EVENTS, HANDSHAKE, SERVER_EVENTS, UNKNOWN_EVENT } from './socket-events.js';

const CHANNEL = 'room';

interface EventDoc {
  summary: string;
  description: string;
  payload: z.ZodType;
}

const DESCRIPTION = `The Socket.IO side of a Switchboard gateway, as the gateway sees it: it **receives** what clients emit (each with an ack) and **sends** the rest. A message's \`name\` is the Socket.IO event name; an ack is the single argument of the event's acknowledgement callback, \`{ok: true, ...}\` or \`{ok: false, error: {code, message}}\`, never silence.

Connect with \`io(url, { auth: { token } })\` and an RTC token from \`POST /api/rtc/tokens\` (see the OpenAPI document at \`/api/openapi.json\`). The token names the one room this connection belongs to, so there is no join event: the first thing the socket receives is \`session\`.

A client event's payload is at most ${LIMITS.eventBytes / 1024} KiB of JSON: a bigger one is acked \`payload_too_large\`, and a Socket.IO packet over ${LIMITS.socketPacketBytes / 1024} KiB closes the connection. An event this document does not list is acked \`unknown_event\`.`;

/** A component key for an event: `client.session.refresh`, `server.room.event`. */
const keyOf = (direction: 'client' | 'server', event: string) => `${direction}.${event.replaceAll(':', '.')}`;
const ref = ($ref: string) => ({ $ref });
const channelMessage = (key: string) => ref(`#/channels/${CHANNEL}/messages/${key}`);

function refusals(errors: Partial<Record<ErrorCode, string>>): string {
  return Object.entries(errors)
    .map(([code, when]) => `- \`${code}\`: ${when}`)
    .join('\n');
}

/** The AsyncAPI 3.0 document of the Socket.IO events, every payload generated from the contract's zod schemas. */
export function createAsyncApiDocument(version: string): JsonSchema {
  const components = schemaComponents('draft-07');
  const messages: Record<string, JsonSchema> = {};
  const operations: Record<string, JsonSchema> = {};
  const channel = ref(`#/channels/${CHANNEL}`);

  messages['client.handshake'] = {
    title: 'Handshake',
    summary: "The `auth` payload of Socket.IO's CONNECT packet.",
    payload: components.schemaFor(HANDSHAKE.auth),
  };
  messages['server.connect_error'] = {
    name: 'connect_error',
    title: 'Handshake refused',
    summary: 'Socket.IO reports it as `connect_error`, whose `message` is the code.',
    description: `Refused with:\n\n${refusals(HANDSHAKE.errors)}`,
    payload: components.schemaFor(HANDSHAKE.refusal),
  };
  operations['client.handshake'] = {
    action: 'receive',
    channel,
    summary: 'Connect with an RTC token',
    description:
      'The gateway redeems the token (once, cluster-wide) and admits the socket to its room; `session` follows. A refusal is final for that token: mint a new one to retry.',
    messages: [channelMessage('client.handshake')],
    reply: { channel, messages: [channelMessage('server.session'), channelMessage('server.connect_error')] },
  };

  /** A Socket.IO event: its message, and the operation of the gateway that receives or sends it. */
  const addEvent = (key: string, event: string, doc: EventDoc, action: 'receive' | 'send'): JsonSchema => {
    messages[key] = { name: event, title: event, summary: doc.summary, payload: components.schemaFor(doc.payload) };
    return (operations[key] = {
      action,
      channel,
      summary: doc.summary,
      description: doc.description,
      messages: [channelMessage(key)],
    });
  };

  for (const [event, doc] of Object.entries(CLIENT_EVENTS)) {
    const key = keyOf('client', event);
    const operation = addEvent(key, event, doc, 'receive');
    messages[`${key}.ack`] = {
      title: `${event} ack`,
      summary: `The ack of \`${event}\`.`,
      description: `Refused with:\n\n${refusals(doc.errors)}`,
      payload: components.schemaFor(doc.ack),
    };
    operation.reply = { channel, messages: [channelMessage(`${key}.ack`)] };
  }
  for (const [event, doc] of Object.entries(SERVER_EVENTS)) addEvent(keyOf('server', event), event, doc, 'send');
  messages['client.unknown.ack'] = {
    title: 'Unknown event ack',
    summary: UNKNOWN_EVENT.summary,
    description: UNKNOWN_EVENT.description,
    payload: components.schemaFor(UNKNOWN_EVENT.ack),
  };

  return {
    asyncapi: '3.0.0',
    info: { title: 'Switchboard realtime API', version, description: DESCRIPTION },
    defaultContentType: 'application/json',
    servers: {
      gateway: {
        host: '{host}',
        protocol: 'ws',
        pathname: '/socket.io/',
        title: 'A Switchboard gateway',
        description:
          'Socket.IO 4 (Engine.IO protocol 4): WebSocket first, HTTP long-polling as the fallback. Any replica of a deployment serves every room.',
        variables: { host: { default: 'localhost:3000', description: 'The host and port of the gateway.' } },
      },
    },
    channels: {
      [CHANNEL]: {
        address: '/',
        title: 'A room',
        description:
          "Socket.IO's default namespace `/`. Each connection is a member of exactly one room, the one its RTC token names.",
        messages: Object.fromEntries(Object.keys(messages).map((key) => [key, ref(`#/components/messages/${key}`)])),
      },
    },
    operations,
    components: { schemas: referencedSchemas(components.schemas, messages), messages },
  };
}
