// Usage of `sink` and its commands. Kept apart from the commands so --help and usage errors print it
// without loading DuckDB, the AWS SDK or kafkajs.
import { COMPACT_DEFAULTS } from '../lake/compaction-options.ts';
import { SINK_DEFAULTS } from '../sink/options.ts';

export const RUN_USAGE = `usage:
  sink run --brokers HOST:PORT[,HOST:PORT…] --lake DIR [--group G] [--client-id ID]
           [--topic-suffix S] [--max-rows N] [--max-age-ms MS] [--session-timeout-ms MS] [--close-timeout-ms MS]
           [--log-level debug|info|warn|error] [--max-bytes N] [--max-span-ms MS] [--no-raw]
           [--compact-every-ms MS] [--compact-target-bytes N] [--process-every-ms MS]
           [--s3-bucket B [--s3-prefix P] [--s3-region R] [--s3-endpoint URL]]
           [--catalog local|glue [--glue-database DB] [--glue-region R] [--glue-projection-from YYYY-MM-DD]]
           [--http [HOST:]PORT] [--live-tables]
      brokers default to $KAFKA_BROKERS; --topic-suffix reads the topics named <standard>.<S>
      TLS and SASL to Kafka from KAFKA_TLS_CA_FILE, KAFKA_TLS_CERT_FILE/KAFKA_TLS_KEY_FILE (mutual TLS), KAFKA_TLS=1,
      KAFKA_SASL_MECHANISM (plain, scram-sha-256, scram-sha-512), KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD_FILE or KAFKA_SASL_PASSWORD
      the sink compacts its own committed files every --compact-every-ms (default ${SINK_DEFAULTS.compactEveryMs}; 0 turns it off)
      into files of up to --compact-target-bytes (default ${SINK_DEFAULTS.compactTargetBytes})
      --process-every-ms builds the processed zone (as sink process does) on that schedule, in this process
      with --s3-bucket the lake is written to S3 (--lake not needed); credentials come from the AWS
      SDK's default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, instance role);
      --s3-endpoint names an S3-compatible store; --no-raw writes only the curated and dead-letter zones
      --catalog registers tables and partitions before offsets are committed: local writes
      DIR/_catalog/catalog.json, glue (lake on S3) the Glue database DB (projection: Athena partition projection)
      --http serves GET /healthz (200 while running, 503 otherwise, JSON state and counters)
      --live-tables also writes the live engine's KPI and alert topics (city.kpi.v1, city.alerts.v1, with
      --topic-suffix too) to the lake tables kpi_windows and alerts`;

export const QUERY_USAGE = `usage:
  sink query --lake DIR ["SQL"]
      without SQL: row counts per table
      [--s3-bucket B [--s3-prefix P] [--s3-region R] [--s3-endpoint URL]]: query the S3 lake through
      DIR as a local cache (objects mirrored first; DuckDB here cannot read s3:// itself)
      tables: vehicle, gps, weather, air_quality, traffic_camera, emergency, phone, gateway_health, deadletter
  sink query --list
  sink query --named NAME [--param K=V]… [--engine duckdb|athena|warehouse] [--lake DIR] [--print-sql]
      athena: --workgroup WG --database DB [--region R] [--output-location s3://…]
      warehouse: the flags of sink warehouse (--warehouse pglite|postgres|redshift, …)
      (or $ATHENA_WORKGROUP, $ATHENA_DATABASE); credentials from the AWS SDK's default chain`;

export const COMPACT_USAGE = `usage:
  sink compact --lake DIR [--target-bytes N] [--table T]… [--sealed] [--catalog local [--grace-ms MS]]
      merges small files per partition into files of up to N bytes (default ${COMPACT_DEFAULTS.targetBytes});
      --sealed also merges the newest file of each Kafka partition (only once the sink has moved on);
      --catalog local compacts the partitions the local catalog holds by version: new files under a fresh
      location, the partition switched to it, the old location deleted after --grace-ms (default 600000)`;

export const PROCESS_USAGE = `usage:
  sink process --lake DIR [--table T]… [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--rebuild] [--grace-ms MS] [--every-ms MS]
  sink process --engine athena --s3-bucket B [--s3-prefix P] --workgroup WG --database DB [--region R] [--output-location s3://…] […]
      builds the processed zone (processed/<table>/) from the lake: partitions that are new, still open
      and changed, just closed, or reached by late rows; --rebuild builds every partition considered again.
      Each build is written under a fresh version and switched in the catalog (local, or Glue with athena);
      replaced versions are deleted after --grace-ms (default 600000)
      --every-ms: a round now, then one every MS until SIGINT/SIGTERM, the DuckDB engine kept open
      tables: traffic_district_5m, camera_flow_15m, air_quality_station_hour, weather_station_hour,
      weather_district_day, incidents, phone_reports_district_hour, gateway_health_hour`;

export const LIVE_USAGE = `usage:
  sink live --brokers HOST:PORT[,HOST:PORT…] [--group G] [--client-id ID] [--topic-suffix S]
            [--allowed-lateness-ms MS] [--idle-timeout-ms MS] [--tick-ms MS] [--alerts FILE.json]
            [--session-timeout-ms MS] [--close-timeout-ms MS] [--log-level debug|info|warn|error]
            [--output none|powerbi|powerbi-streaming|eventstream]
      event-time KPIs and alerts as their own consumer group (default city-live): KPI window updates
      on city.kpi.v1, alerts on city.alerts.v1, late events on the dead-letter topic
      --alerts: JSON thresholds merged over the defaults (see README, Live KPIs and alerts)
      --output powerbi --powerbi-dataset NAME [--powerbi-workspace ID] [--powerbi-api URL]: a push
        dataset, created if missing; Entra app credentials from $POWERBI_TENANT_ID, $POWERBI_CLIENT_ID,
        $POWERBI_CLIENT_SECRET (or a ready token in $POWERBI_ACCESS_TOKEN)
      --output powerbi-streaming --powerbi-push-url TABLE=URL…: streaming datasets' push URLs
      --output eventstream: a Fabric Eventstream, $EVENTSTREAM_CONNECTION_STRING (its Kafka endpoint)`;

export const WAREHOUSE_USAGE = `usage:
  sink warehouse init|load|status --lake DIR [--warehouse pglite|postgres|redshift] [--schema S]
                 [--table KIND|PROCESSED]… [--batch N] [--every-ms MS] [--log-level L] [--no-processed] [--live-tables]
                 [--s3-bucket B [--s3-prefix P] [--s3-region R] [--s3-endpoint URL] [--glue-database DB]]
  sink warehouse query --lake DIR (--named NAME [--param K=V]… | "SQL") [warehouse flags]
      init creates the schema, the fact table per event kind, the dimensions and the load ledger, and
      adds the columns the protocol added; load loads lake objects not in the ledger (--every-ms: again
      and again until a signal); status: objects and rows loaded per table and the lag behind the lake
      processed tables (sink process) load too: each partition's rows replaced by the build the catalog
      names (local catalog beside --lake; Glue with --glue-database or $GLUE_DATABASE for an S3 lake)
      init --spectrum [--spectrum-schema NAME (default lake)] (Redshift, with --glue-database): an external
      schema over the lake's Glue database, for Redshift Spectrum
      pglite (default): --pglite-dir DIR (default <lake>/_warehouse/pglite)
      postgres: --postgres-url URL (or $WAREHOUSE_POSTGRES_URL)
      redshift: --database DB (--workgroup WG | --cluster ID [--db-user U]) [--secret-arn ARN] [--region R]
                [--iam-role ARN|default] (or $REDSHIFT_DATABASE, $REDSHIFT_WORKGROUP, $REDSHIFT_CLUSTER,
                $REDSHIFT_SECRET_ARN, $REDSHIFT_IAM_ROLE); the lake must be on S3 (--s3-bucket)
      --live-tables: also the live engine's tables kpi_windows (final windows) and alerts, and the Power BI
      Lambda's powerbi_watermark`;

export const DASHBOARD_USAGE = `usage:
  sink dashboard --brokers HOST:PORT[,HOST:PORT…] [--host H] [--port P] [--topic-suffix S] [--group G]
                 [--sink-group G (default city-sink)] [--lake DIR] [--page-dir DIR] [--build] [--delta-interval-ms MS] [--max-vehicles N]
                 [--log-level debug|info|warn|error]
      serves the operations page at http://H:P/ (default 127.0.0.1:8080; --port 0 picks a free one) and
      prints its address; reads the event topics and the live engine's KPI and alert topics as a consumer
      group of its own (commits nothing); the health panel shows --sink-group's lag per topic; --lake shows the local lake's freshness; the page is built with
      Vite when missing or older than its sources (or with --build) into --page-dir
      --warehouse pglite|postgres|redshift (with the flags of sink warehouse) shows the warehouse's
      freshness: its load ledger's latest load, and how far it trails the lake's newest file`;

const body = (usage: string) => usage.replace(/^usage:\n/, '');

export const USAGE = `usage:
${body(RUN_USAGE)}
${body(QUERY_USAGE)}
${body(COMPACT_USAGE)}
${body(PROCESS_USAGE)}
${body(LIVE_USAGE)}
${body(WAREHOUSE_USAGE)}
${body(DASHBOARD_USAGE)}`;
