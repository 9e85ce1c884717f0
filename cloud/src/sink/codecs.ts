// Record-batch codecs kafkajs lacks, registered once for the whole process: the gateway's uplink can
// send zstd and lz4, and a kafkajs consumer otherwise throws KafkaJSNotImplemented on such a batch and
// stops the sink. zstd comes from Node's own zlib (Node ≥ 22.15); lz4 (the frame format Kafka uses)
// from @platformatic/wasm-utils, WebAssembly with no install script — the same code the gateway's
// client compresses with. Snappy is not registered: the gateway does not send it.
import { zstdCompress, zstdDecompress } from 'node:zlib';
import { promisify } from 'node:util';
import { lz4Compress, lz4Decompress } from '@platformatic/wasm-utils';
// kafkajs is CommonJS and these two are not among the names Node can import from it.
// Before any consumer fetches: kafkajs then decodes records with the sink's decoder (see the module).
import './kafkajs-records.ts';
import kafkajs from 'kafkajs';

const zstd = { compress: promisify(zstdCompress), decompress: promisify(zstdDecompress) };

interface Encoder {
  buffer: Buffer;
}

let registered = false;

/** Codecs the sink reads, beyond kafkajs's own none and gzip. */
export const SINK_CODECS = ['none', 'gzip', 'lz4', 'zstd'] as const;

export function registerKafkaCodecs(): void {
  if (registered) return;
  registered = true;
  const { CompressionCodecs, CompressionTypes } = kafkajs;
  CompressionCodecs[CompressionTypes.ZSTD] = () => ({
    compress: (encoder: Encoder) => zstd.compress(encoder.buffer),
    decompress: (buffer: Buffer) => zstd.decompress(buffer),
  });
  CompressionCodecs[CompressionTypes.LZ4] = () => ({
    compress: async (encoder: Encoder) => lz4Compress(encoder.buffer),
    decompress: async (buffer: Buffer) => lz4Decompress(buffer),
  });
}
