// The live engine's topics as lake rows: a KPI window update becomes a kpi_windows row (partitioned by
// its window's start), an alert transition an alerts row (partitioned by when it was raised or cleared),
// so the sink writes them with the same exactly-once file rules as events. A record that fails its
// schema becomes a dead letter with stage 'sink', like any other.
import {
  alertLakeRow,
  compileSchema,
  deadLetterRow,
  describeProblems,
  encodePayload,
  kpiWindowLakeRow,
  LiveAlertRecord,
  LiveKpiRecord,
  parseEventTime,
  partitionOf,
  type DeadLetter,
  type Problem,
} from '@city/protocol';
import { createRecordDecoder, type KafkaRecord, type LakeRow, type RecordDecoder, type SinkTopics } from './records.ts';

/** The live topics the sink also writes to the lake (protocol's liveTopicSet, less the internal partials). */
export interface SinkLiveTopics {
  kpi: string;
  alerts: string;
}

const validKpi = compileSchema<LiveKpiRecord>(LiveKpiRecord);
const validAlert = compileSchema<LiveAlertRecord>(LiveAlertRecord);

const recordMs = (record: KafkaRecord): number | undefined => {
  const parsed = /^\d{1,16}$/.test(record.timestamp) ? parseEventTime(Number(record.timestamp)) : undefined;
  return parsed !== undefined && 'ms' in parsed ? parsed.ms : undefined;
};

function letter(record: KafkaRecord, problems: Problem[], kind: string): LakeRow {
  const receivedAt = recordMs(record) ?? 0;
  const reason = describeProblems(problems);
  const dead: DeadLetter = { stage: 'sink', reason, problems, ...encodePayload(record.value ?? Buffer.alloc(0)), mqttTopic: '', clientId: '', gatewayId: '', receivedAt, kind };
  return { table: 'deadletter', partition: partitionOf(receivedAt), row: deadLetterRow(dead), rejected: { reason, problems } };
}

function parse(record: KafkaRecord, kind: string): { value: unknown } | LakeRow {
  if (record.value === null) return letter(record, [{ path: '', rule: 'required', message: 'record has no value' }], kind);
  try {
    return { value: JSON.parse(record.value.toString('utf8')) };
  } catch (err) {
    return letter(record, [{ path: '', rule: 'json', message: `is not JSON: ${(err as Error).message}` }], kind);
  }
}

function time(iso: string | null, path: string): { ms: number } | { problem: Problem } {
  const t = parseEventTime(iso);
  return 'ms' in t ? t : { problem: { path, rule: 'eventTime', message: t.error } };
}

export function decodeKpiRecord(record: KafkaRecord): LakeRow {
  const parsed = parse(record, 'kpi_windows');
  if (!('value' in parsed)) return parsed;
  const checked = validKpi(parsed.value);
  if (!checked.ok) return letter(record, checked.problems, 'kpi_windows');
  const start = time(checked.value.windowStart, '/windowStart');
  const problems = [start, time(checked.value.windowEnd, '/windowEnd'), time(checked.value.emittedAt, '/emittedAt')].flatMap((t) => ('problem' in t ? [t.problem] : []));
  if (problems.length > 0 || !('ms' in start)) return letter(record, problems, 'kpi_windows');
  return { table: 'kpi_windows', partition: partitionOf(start.ms), row: kpiWindowLakeRow(checked.value) };
}

export function decodeAlertRecord(record: KafkaRecord): LakeRow {
  const parsed = parse(record, 'alerts');
  if (!('value' in parsed)) return parsed;
  const checked = validAlert(parsed.value);
  if (!checked.ok) return letter(record, checked.problems, 'alerts');
  const a = checked.value;
  const at = a.state === 'cleared' ? time(a.clearedAt, '/clearedAt') : time(a.raisedAt, '/raisedAt');
  const emitted = recordMs(record);
  const problems = [...('problem' in at ? [at.problem] : []), ...(emitted === undefined ? [{ path: 'timestamp', rule: 'timestamp', message: `Kafka record timestamp "${record.timestamp}" is not epoch milliseconds` }] : [])];
  if (problems.length > 0 || !('ms' in at) || emitted === undefined) return letter(record, problems, 'alerts');
  return { table: 'alerts', partition: partitionOf(at.ms), row: alertLakeRow(a, emitted) };
}

/** The sink's decoder: the event and dead-letter topics as before, plus the live topics when given. */
export function createSinkDecoder(topics: SinkTopics, live: SinkLiveTopics | undefined): RecordDecoder {
  const events = createRecordDecoder(topics);
  if (live === undefined) return events;
  const { kpi, alerts } = live;
  return (topic, record) => (topic === kpi ? decodeKpiRecord(record) : topic === alerts ? decodeAlertRecord(record) : events(topic, record));
}
