// The object store port and its adapters: a local folder, S3 (or any S3-compatible endpoint).
export { isLocalStore, type ObjectStore } from './port.ts';
export { createLocalFolderStore } from './local.ts';
export { createS3Store, S3StoreSchema, type S3StoreConfig, type S3StoreOptions } from './s3.ts';
