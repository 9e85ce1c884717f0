// A Redshift Data API stand-in (aws-sdk-client-mock) that follows the documented shapes (statement ids,
// batch sub-statements `<id>:<n>`, DescribeStatement statuses, GetStatementResult with ColumnMetadata and
// typed Field values) and runs the SQL for real on PostgreSQL (a batch in one transaction, on one session).
import {
  BatchExecuteStatementCommand,
  DescribeStatementCommand,
  ExecuteStatementCommand,
  GetStatementResultCommand,
  RedshiftDataClient,
  type ColumnMetadata,
  type Field,
  type SubStatementData,
} from '@aws-sdk/client-redshift-data';
import { mockClient } from 'aws-sdk-client-mock';
import pg from 'pg';
import { onTeardown } from './teardown.ts';
import { TEST_POSTGRES_URL } from './warehouse.ts';

interface Result {
  columns: ColumnMetadata[];
  records: Field[][];
}

const TYPE_NAMES: Record<number, string> = { 20: 'int8', 23: 'int4', 701: 'float8', 16: 'bool', 1184: 'timestamptz', 1043: 'varchar', 25: 'text' };

function field(value: unknown, oid: number): Field {
  if (value === null || value === undefined) return { isNull: true };
  const text = String(value);
  if (oid === 20 || oid === 23) return { longValue: Number(text) };
  if (oid === 701) return { doubleValue: Number(text) };
  if (oid === 16) return { booleanValue: text === 't' };
  return { stringValue: text };
}

/** A Data API stand-in on PostgreSQL; statements finish on their second DescribeStatement. */
export function startDataApi() {
  const mock = mockClient(RedshiftDataClient);
  const client = new RedshiftDataClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const raw = { getTypeParser: () => (v: string) => v } as unknown as pg.CustomTypesConfig;
  const statements = new Map<string, { describes: number; status: 'FINISHED' | 'FAILED'; error?: string; subs: SubStatementData[]; results: Map<string, Result> }>();
  const submitted: string[][] = [];
  let n = 0;
  const run = async (sqls: string[], batch: boolean) => {
    submitted.push(sqls);
    const id = `stmt-${++n}`;
    const db = new pg.Client({ connectionString: TEST_POSTGRES_URL, types: raw });
    await db.connect();
    const results = new Map<string, Result>();
    const subs: SubStatementData[] = [];
    let error: string | undefined;
    try {
      await db.query('BEGIN');
      for (const [i, sql] of sqls.entries()) {
        const subId = batch ? `${id}:${i + 1}` : id;
        // Redshift's table attributes: PostgreSQL does not parse them.
        const r = await db.query({ text: sql.replace(/\)\s*DISTSTYLE\s+AUTO(\s+SORTKEY\s*\([^)]*\))?\s*$/i, ')'), rowMode: 'array' });
        const hasRows = r.command === 'SELECT';
        if (hasRows) results.set(subId, { columns: r.fields.map((f) => ({ name: f.name, typeName: TYPE_NAMES[f.dataTypeID] ?? 'varchar' })), records: (r.rows as unknown[][]).map((row) => row.map((v, j) => field(v, r.fields[j]!.dataTypeID))) });
        subs.push({ Id: subId, Status: 'FINISHED', QueryString: sql, HasResultSet: hasRows });
      }
      await db.query('COMMIT');
    } catch (err) {
      error = (err as Error).message;
      await db.query('ROLLBACK');
    } finally {
      await db.end();
    }
    statements.set(id, { describes: 0, status: error === undefined ? 'FINISHED' : 'FAILED', ...(error === undefined ? {} : { error }), subs: batch ? subs : [], results });
    return { Id: id };
  };
  mock.on(ExecuteStatementCommand).callsFake((input: { Sql: string }) => run([input.Sql], false));
  mock.on(BatchExecuteStatementCommand).callsFake((input: { Sqls: string[] }) => run(input.Sqls, true));
  mock.on(DescribeStatementCommand).callsFake((input: { Id: string }) => {
    const s = statements.get(input.Id);
    if (s === undefined) throw new Error(`no statement ${input.Id}`);
    s.describes++;
    const status = s.describes < 2 ? 'STARTED' : s.status;
    return { Id: input.Id, Status: status, HasResultSet: s.results.has(input.Id), SubStatements: s.subs, ...(status === 'FAILED' ? { Error: s.error } : {}) };
  });
  mock.on(GetStatementResultCommand).callsFake((input: { Id: string }) => {
    const parent = statements.get(input.Id.split(':')[0]!);
    const r = parent?.results.get(input.Id);
    if (r === undefined) throw new Error(`no result set for ${input.Id}`);
    return { ColumnMetadata: r.columns, Records: r.records, TotalNumRows: r.records.length };
  });
  onTeardown(() => {
    mock.restore();
    client.destroy();
  });
  return { client, submitted };
}

