// The live KPIs and alerts: definitions, the engine (cloud live), and the live output adapters.
export { ALERT_DEFAULTS, AlertEngine, type Alert, type AlertConfig } from './alerts.ts';
export { aqiCategory, aqiOfPm25, KPI_DEFINITIONS, kpiDefinition, PM25_AQI_BREAKPOINTS, type KpiDefinition } from './definitions.ts';
export { createLive, Live, type LiveStats } from './live.ts';
export { LIVE_DEFAULTS, type LiveOptions } from './options.ts';
export { outputTables, type KpiUpdate, type LiveOutput, type OutputRow, type OutputStats } from './output.ts';
export { createEventstreamOutput, eventstreamEndpoint } from './eventstream.ts';
export { createPowerBiOutput, POWERBI_LIMITS, type PowerBiLimits } from './powerbi/pusher.ts';
export { cachedTokenSource, entraCredential, POWERBI_SCOPE, staticTokenSource, type TokenSource } from './powerbi/token.ts';
// The pure engine stages, for tools and benchmarks that drive them without Kafka.
export { WindowEngine, type Contribution } from './windows.ts';
export { Merger, type MergedWindow } from './merge.ts';
