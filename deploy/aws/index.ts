// Public entry of the AWS app: the stack, its constructs (to compose into other apps), the app factory.
export { createApp, STACK_NAME, stackPropsFromContext } from './app.ts';
export { LakeCatalog, type LakeCatalogProps } from './catalog.ts';
export { cdkErrors, type CdkErrorCode } from './errors.ts';
export { keyPrefix, LAKE_DEFAULTS, LakeBuckets, type LakeBucketProps } from './lake.ts';
export { MSK_DEFAULTS, MSK_SASL_SCRAM_PORT, SinkKafka, type SinkKafkaProps } from './msk.ts';
export { KAFKA_CREDENTIAL_ENV, SINK_GLUE_ACTIONS, SINK_S3_BUCKET_ACTIONS, SINK_S3_OBJECT_ACTIONS, SinkService, type SinkServiceProps } from './sink-service.ts';
export { LOADER_DATA_API_ACTIONS, LOADER_STATEMENT_ACTIONS, Warehouse, WAREHOUSE_DEFAULTS, type WarehouseProps } from './warehouse.ts';
export { CitySinkStack, STACK_DEFAULTS, type CitySinkStackProps } from './stack.ts';
export { DEFAULT_POWERBI_CODE, POWERBI_DEFAULTS, PowerBiLambda, type PowerBiLambdaProps } from './powerbi.ts';
