// kafkajs's default (Java-compatible) partitioner, remembered per key: a gateway's devices send the same
// few keys over and over, and murmur2 of each was a visible share of the forwarder's time.
import { Partitioners } from 'kafkajs';

export function createCachingPartitioner(): ReturnType<typeof Partitioners.DefaultPartitioner> {
  const partition = Partitioners.DefaultPartitioner();
  const known = new Map<string, number>();
  return (args) => {
    const { topic, partitionMetadata, message } = args;
    if (message.partition !== undefined || message.key === null || message.key === undefined) return partition(args);
    const id = `${topic}\u0000${partitionMetadata.length}\u0000${message.key.toString()}`;
    let p = known.get(id);
    if (p === undefined) {
      if (known.size >= 100_000) known.clear();
      known.set(id, (p = partition(args)));
    }
    return p;
  };
}
