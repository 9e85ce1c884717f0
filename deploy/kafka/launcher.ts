// The package's `./kafka` export still points here; the public surface is index.ts.
export * from './index.ts';
