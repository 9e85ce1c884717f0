// The durable store-and-forward buffer: records, the SQLite outbox and the group commit feeding it.
export { DURABILITY, LANES, zeroLanes, type Durability, type Lane, type LaneCounts, type OutboxRecord, type StoredRecord } from './records.ts';
export { openBuffer, type AppendResult, type BufferCounters, type BufferLimits, type BufferRecovery, type BufferStats, type OutboxBuffer } from './outbox.ts';
export { readBufferFile } from './file.ts';
export { createGroupCommit, type Done, type GroupCommit, type GroupCommitOptions } from './group-commit.ts';
