// Keys land where kafkajs's default (Java-compatible) partitioner put them, so a gateway upgrade does not
// move a device to another partition and reorder it: murmur2(key) & 0x7fffffff, taken modulo the
// partition count by the producer itself (@platformatic/kafka 2.12 applies `%= partitionsCount` to
// whatever the partitioner returns, or to a message's own `partition`, before it picks the leader).
// Key bytes and hash are remembered per key: a gateway's devices send the same few keys over and over,
// and the client's murmur2 works in BigInt.
import { compatibilityPartitioner, type Partitioner } from '@platformatic/kafka';

export type KeyPartitioner = Partitioner<string, Buffer, string, string>;

/** A record key as the forwarder sends it: its UTF-8 bytes and its kafkajs-compatible hash (before the modulo). */
export interface KeyBytes {
  bytes: Buffer;
  hash: number;
}

const MAX_KEYS = 100_000;

/** The bytes and hash of a key, remembered (at most 100,000 keys, then forgotten all at once). */
export function createKeyCache(): (key: string) => KeyBytes {
  const known = new Map<string, KeyBytes>();
  return (key) => {
    let entry = known.get(key);
    if (entry === undefined) {
      if (known.size >= MAX_KEYS) known.clear();
      const bytes = Buffer.from(key, 'utf8');
      // The partitioner reads only the serialized key.
      entry = { bytes, hash: compatibilityPartitioner(undefined as never, bytes) };
      known.set(key, entry);
    }
    return entry;
  };
}

/** The same mapping as a partitioner of the client, for string keys (non-string keys are hashed as given). */
export function createCachingPartitioner(): KeyPartitioner {
  const keyOf = createKeyCache();
  return (message, key) => (typeof message.key === 'string' ? keyOf(message.key).hash : compatibilityPartitioner(message, key));
}
