// Error catalog shared by the packages: each package declares its own codes with defineErrors.

export interface ErrorSpec {
  message: string;
  /** Whether retrying the same operation later can succeed. */
  canRetry: boolean;
}

export class CityError extends Error {
  readonly code: string;
  readonly canRetry: boolean;

  constructor(code: string, message: string, canRetry: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CityError';
    this.code = code;
    this.canRetry = canRetry;
  }
}

/** Builds a typed factory over an `as const` catalog: `errors.create('GW_…', 'detail')`. */
export function defineErrors<const C extends Record<string, ErrorSpec>>(catalog: C) {
  return {
    catalog,
    create(code: keyof C & string, detail?: string, cause?: unknown): CityError {
      const spec = catalog[code];
      const message = detail === undefined ? spec.message : `${spec.message}: ${detail}`;
      return new CityError(code, message, spec.canRetry, cause === undefined ? undefined : { cause });
    },
  };
}

export const protocolErrors = defineErrors({
  PROTO_INVALID_EVENT: { message: 'invalid event', canRetry: false },
});
