// The object store port. The lake writer, compaction and the query cache only ever call these methods,
// so an S3 store can replace the local folder without the sink changing. Keys are relative and
// '/'-separated.

export interface ObjectStore {
  /** Where readers find the objects: a folder path here, an s3:// URL for S3. */
  readonly root: string;
  /** A local path the caller writes an object's bytes to before put(). */
  scratchPath(key: string): Promise<string>;
  /**
   * Makes the scratch file the object at `key`, replacing any object there. Atomic: readers see the
   * old object or the new one, never a part. Durable once the promise resolves. Consumes the file.
   */
  put(key: string, scratchPath: string): Promise<void>;
  /** Removes a scratch file that will not be put. */
  discard(scratchPath: string): Promise<void>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Reader-facing location of a key or key pattern (may contain globs). */
  locate(keyOrPattern: string): string;
  /** Copies an object's bytes to a local file (query caches, compaction of a remote lake). */
  download?(key: string, toPath: string): Promise<void>;
  /** Removes an object; a missing one is not an error (compaction). */
  delete?(key: string): Promise<void>;
  close(): Promise<void>;
}

/** True when locate() gives a path on this machine (a folder store), not a URL. */
export function isLocalStore(store: ObjectStore): boolean {
  return !/^[a-z][a-z0-9+.-]*:\/\//i.test(store.root);
}
