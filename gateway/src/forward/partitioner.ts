// Keys land where kafkajs's default (Java-compatible) partitioner put them, so a gateway upgrade does not
// move a device to another partition and reorder it: murmur2(key) & 0x7fffffff, taken modulo the
// partition count by the producer itself (@platformatic/kafka 2.12 applies `%= partitionsCount` to
// whatever the partitioner returns before it picks the leader). The hash is remembered per key: a
// gateway's devices send the same few keys over and over, and the client's murmur2 works in BigInt.
import { compatibilityPartitioner, type Partitioner } from '@platformatic/kafka';

export type KeyPartitioner = Partitioner<string, Buffer, string, string>;

export function createCachingPartitioner(): KeyPartitioner {
  const known = new Map<string, number>();
  return (message, key) => {
    if (typeof message.key !== 'string') return compatibilityPartitioner(message, key);
    let hash = known.get(message.key);
    if (hash === undefined) {
      if (known.size >= 100_000) known.clear();
      known.set(message.key, (hash = compatibilityPartitioner(message, key)));
    }
    return hash;
  };
}
