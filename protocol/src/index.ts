export * from './schemas.ts';
export * from './validate.ts';
export * from './topics.ts';
export * from './table.ts';
export * from './errors.ts';
export * from './examples.ts';
