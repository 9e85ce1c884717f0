// Usage of `sink` and its commands. Kept apart from the commands so --help and usage errors print it
// without loading DuckDB, the AWS SDK or kafkajs.
import { COMPACT_DEFAULTS } from '../lake/compaction-options.ts';
import { SINK_DEFAULTS } from '../sink/options.ts';

export const RUN_USAGE = `usage:
  sink run --brokers HOST:PORT[,HOST:PORT…] --lake DIR [--group G] [--client-id ID]
           [--topic-suffix S] [--max-rows N] [--max-age-ms MS] [--session-timeout-ms MS] [--close-timeout-ms MS]
           [--log-level debug|info|warn|error] [--max-bytes N] [--max-span-ms MS] [--no-raw]
           [--compact-every-ms MS] [--compact-target-bytes N]
           [--s3-bucket B [--s3-prefix P] [--s3-region R] [--s3-endpoint URL]]
           [--catalog local|glue [--glue-database DB] [--glue-region R] [--glue-projection-from YYYY-MM-DD]]
      brokers default to $KAFKA_BROKERS; --topic-suffix reads the topics named <standard>.<S>
      the sink compacts its own committed files every --compact-every-ms (default ${SINK_DEFAULTS.compactEveryMs}; 0 turns it off)
      into files of up to --compact-target-bytes (default ${SINK_DEFAULTS.compactTargetBytes})
      with --s3-bucket the lake is written to S3 (--lake not needed); credentials come from the AWS
      SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, instance role);
      --s3-endpoint names an S3-compatible store; --no-raw writes only the curated and dead-letter zones
      --catalog registers tables and partitions before offsets are committed: local writes
      DIR/_catalog/catalog.json, glue (lake on S3) the Glue database DB (projection: Athena partition projection)`;

export const QUERY_USAGE = `usage:
  sink query --lake DIR ["SQL"]
      without SQL: row counts per table
      [--s3-bucket B [--s3-prefix P] [--s3-region R] [--s3-endpoint URL]]: query the S3 lake through
      DIR as a local cache (objects mirrored first; DuckDB here cannot read s3:// itself)
      tables: vehicle, gps, weather, air_quality, traffic_camera, emergency, phone, gateway_health, deadletter
  sink query --list
  sink query --named NAME [--param K=V]… [--engine duckdb|athena] [--lake DIR] [--print-sql]
      athena: --workgroup WG --database DB [--region R] [--output-location s3://…]
      (or $ATHENA_WORKGROUP, $ATHENA_DATABASE); credentials from the AWS SDK's default chain`;

export const COMPACT_USAGE = `usage:
  sink compact --lake DIR [--target-bytes N] [--table T]… [--sealed]
      merges small files per partition into files of up to N bytes (default ${COMPACT_DEFAULTS.targetBytes});
      --sealed also merges the newest file of each Kafka partition (only once the sink has moved on)`;

export const DASHBOARD_USAGE = `usage:
  sink dashboard --brokers HOST:PORT[,HOST:PORT…] [--host H] [--port P] [--topic-suffix S] [--group G]
                 [--sink-group G (default city-sink)] [--lake DIR] [--page-dir DIR] [--build] [--delta-interval-ms MS] [--max-vehicles N]
                 [--log-level debug|info|warn|error]
      serves the operations page at http://H:P/ (default 127.0.0.1:8080; --port 0 picks a free one) and
      prints its address; reads the event topics and the live engine's KPI and alert topics as a consumer
      group of its own (commits nothing); the health panel shows --sink-group's lag per topic; --lake shows the local lake's freshness; the page is built with
      Vite when missing or older than its sources (or with --build) into --page-dir`;

const body = (usage: string) => usage.replace(/^usage:\n/, '');

export const USAGE = `usage:
${body(RUN_USAGE)}
${body(QUERY_USAGE)}
${body(COMPACT_USAGE)}
${body(DASHBOARD_USAGE)}`;
