// The query port and its engines: DuckDB over the lake (local), Athena (AWS), and the named city queries.
export type { LakeValue, QueryEngineName, QueryResult } from './port.ts';
export { LAKE_TABLES, openLake, queryLake, toLakeValue, type Lake, type LakeTableInfo, type OpenLakeOptions } from './duckdb.ts';
export {
  athenaValue,
  ATHENA_DEFAULTS,
  AthenaEngineSchema,
  createAthenaEngine,
  newRequestToken,
  type AthenaEngine,
  type AthenaEngineConfig,
  type AthenaEngineOptions,
  type AthenaQueryResult,
} from './athena.ts';
export { DIALECTS, DISTRICT_BOXES, districtSql, LIVE_NAMED_QUERIES, NAMED_QUERIES, namedQuery, namedQuerySql, type NamedQuery, type NamedQueryParam, type SqlDialectName } from './named.ts';
