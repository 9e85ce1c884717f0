// Errors as data: each package declares its catalog once (code, message, whether a retry can help, what
// to do about it), and raises only codes from it. The README's table of codes is checked against these.

export interface ErrorSpec {
  message: string;
  /** Whether retrying the same operation later can succeed. */
  canRetry: boolean;
  /** What the user or operator can do about it, for the README's table of codes. */
  action: string;
  /** Bad input on the command line or in a config file: commands exit 2 for these, 1 for the rest. */
  usage?: boolean;
}

export class CityError extends Error {
  readonly code: string;
  readonly canRetry: boolean;
  readonly usage: boolean;

  constructor(code: string, message: string, canRetry: boolean, options?: { cause?: unknown; usage?: boolean }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CityError';
    this.code = code;
    this.canRetry = canRetry;
    this.usage = options?.usage ?? false;
  }
}

export interface ErrorCatalog<C extends Record<string, ErrorSpec>> {
  /** Every code starts with `${prefix}_`. */
  readonly prefix: string;
  readonly catalog: C;
  readonly codes: readonly (keyof C & string)[];
  create(code: keyof C & string, detail?: string, cause?: unknown): CityError;
  /** True when `err` is an error of this catalog with that code. */
  is(err: unknown, code: keyof C & string): err is CityError;
}

/** Builds a typed factory over an `as const` catalog: `errors.create('GW_…', 'detail')`. */
export function defineErrors<const C extends Record<string, ErrorSpec>>(prefix: string, catalog: C): ErrorCatalog<C> {
  const codes = Object.keys(catalog) as (keyof C & string)[];
  for (const code of codes) {
    if (!code.startsWith(`${prefix}_`)) throw new TypeError(`error code ${code} lacks the catalog prefix ${prefix}_`);
  }
  return {
    prefix,
    catalog,
    codes,
    create(code, detail, cause) {
      const spec = catalog[code];
      const message = detail === undefined ? spec.message : `${spec.message}: ${detail}`;
      return new CityError(code, message, spec.canRetry, { ...(cause === undefined ? {} : { cause }), ...(spec.usage ? { usage: true } : {}) });
    },
    is: (err, code): err is CityError => err instanceof CityError && err.code === code,
  };
}

/** Exit code of a command that failed with `err`: 2 for usage errors, 1 for everything else. */
export function exitCodeOf(err: unknown): 1 | 2 {
  return err instanceof CityError && err.usage ? 2 : 1;
}

/** What docs and tests read of any catalog, whatever its codes. */
export interface ErrorCatalogView {
  readonly prefix: string;
  readonly codes: readonly string[];
  readonly catalog: { readonly [code: string]: ErrorSpec };
}

/** Markdown rows (code, retry, meaning, what to do) of a catalog, for the README's table. */
export function errorTableRows(errors: ErrorCatalogView): string[] {
  return errors.codes.map((code) => {
    const spec = errors.catalog[code]!;
    return `| \`${code}\` | ${spec.canRetry ? 'yes' : 'no'} | ${spec.message} | ${spec.action} |`;
  });
}

export const protocolErrors = defineErrors('PROTO', {
  PROTO_INVALID_EVENT: {
    message: 'invalid event',
    canRetry: false,
    action: 'fix the device payload; the dead letter names each field, the rule it broke and why',
  },
});
