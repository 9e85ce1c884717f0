// Buffered records as the Kafka client takes them, with as little work per record as the client
// allows. The client turns every string it is given (key, each header name and value) into a Buffer of
// its own, and calls the partitioner per record; here whatever repeats — header names, the gateway id,
// the schema version, '1'/'0', a device's key bytes and partition hash, a receive time shared by
// records of one commit — is encoded once and shared, and only the event id is encoded per record.
// The headers are those of `recordHeaders` (protocol), name for name, value for value, in its order.
import { HEADERS, SCHEMA_VERSION } from '@city/protocol';
import type { MessageToProduce } from '@platformatic/kafka';
import type { StoredRecord } from '../buffer/index.ts';
import { createKeyCache } from './partitioner.ts';

export type UplinkMessage = MessageToProduce<Buffer, Buffer, Buffer, Buffer> & { headers: Map<Buffer, Buffer> };

const NAME = {
  gatewayId: Buffer.from(HEADERS.gatewayId),
  receivedAt: Buffer.from(HEADERS.receivedAt),
  schemaVersion: Buffer.from(HEADERS.schemaVersion),
  eventId: Buffer.from(HEADERS.eventId),
  replayed: Buffer.from(HEADERS.replayed),
  clockSynced: Buffer.from(HEADERS.clockSynced),
};
const SCHEMA = Buffer.from(String(SCHEMA_VERSION));
const ONE = Buffer.from('1');
const ZERO = Buffer.from('0');

/** Turns records into the client's messages for one gateway; `replayed` marks backlog records. */
export function createMessageEncoder(gatewayId: string): (record: StoredRecord, replayed: boolean) => UplinkMessage {
  const gateway = Buffer.from(gatewayId);
  const keyOf = createKeyCache();
  // Records of one group commit share their receive time.
  let lastReceivedAt = NaN;
  let receivedAtText = Buffer.alloc(0);
  let receivedAtStamp = 0n;
  return (record, replayed) => {
    if (record.receivedAt !== lastReceivedAt) {
      lastReceivedAt = record.receivedAt;
      receivedAtText = Buffer.from(String(record.receivedAt));
      receivedAtStamp = BigInt(record.receivedAt);
    }
    const headers = new Map<Buffer, Buffer>();
    headers.set(NAME.gatewayId, gateway);
    headers.set(NAME.receivedAt, receivedAtText);
    headers.set(NAME.schemaVersion, SCHEMA);
    if (record.eventId !== null) headers.set(NAME.eventId, Buffer.from(record.eventId));
    if (replayed) headers.set(NAME.replayed, ONE);
    if (record.clockSynced !== undefined) headers.set(NAME.clockSynced, record.clockSynced ? ONE : ZERO);
    const key = keyOf(record.key);
    // The partition is the key's hash; the client takes it modulo the topic's partition count.
    return { topic: record.topic, key: key.bytes, value: record.value, headers, partition: key.hash, timestamp: receivedAtStamp };
  };
}
