// Options of every component and adapter, one way: a schema gives the type, defaults are merged under
// what the caller passed, and the result is validated once, with errors that name the field.
import type { Static, TSchema } from '@sinclair/typebox';
import { compileSchema, describeProblems, type Problem } from '../validate.ts';

// Options schemas are written with the Typebox the resolver validates with: packages define their
// options through @city/protocol without a Typebox of their own (whose version could drift).
export { Type, type Static, type TSchema } from '@sinclair/typebox';

/** Every field optional, recursively; arrays are replaced whole, never merged. */
export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Deep merge of plain objects: arrays and scalars from `over` replace those of `base`; undefined means "default". */
export function mergeDefaults(base: unknown, over: unknown): unknown {
  if (!isPlainObject(base) || !isPlainObject(over)) return over === undefined ? base : over;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value !== undefined) out[key] = mergeDefaults(base[key], value);
  }
  return out;
}

/** One line naming every problem as option errors word them (a cross-field rule's message as it is). */
export function describeOptionProblems(problems: readonly Problem[]): string {
  return problems.map((p) => (p.rule === 'options' ? p.message : describeProblems([p]))).join('; ');
}

export interface OptionsSpec<S extends TSchema> {
  schema: S;
  /** Values for what the caller leaves out. */
  defaults: DeepPartial<Static<S>>;
  /** Rules across fields the schema cannot say; returns a message naming the field(s), or undefined. */
  check?: (value: Static<S>) => string | undefined;
  /** The package's "invalid options" error, e.g. `(detail) => gatewayErrors.create('GW_OPTIONS_INVALID', detail)`. */
  error: (detail: string, problems: readonly Problem[]) => Error;
}

export interface OptionsResolver<S extends TSchema, Input> {
  readonly schema: S;
  readonly defaults: DeepPartial<Static<S>>;
  /** Defaults < `input`, validated; throws the package's error naming every field that is wrong. */
  resolve(input: Input): Static<S>;
  /** Like resolve, layering several sources (lowest first), e.g. defaults < file < environment < flags. */
  resolveLayers(...layers: unknown[]): Static<S>;
  /** What is wrong with the merged layers, without throwing (an empty list when nothing is). */
  problems(...layers: unknown[]): Problem[];
}

/** Compiles the schema once; unknown fields read "is not a known option". */
export function defineOptions<S extends TSchema, Input = DeepPartial<Static<S>>>(spec: OptionsSpec<S>): OptionsResolver<S, Input> {
  const validate = compileSchema<Static<S>>(spec.schema, { unknownField: 'is not a known option' });
  const merged = (layers: unknown[]) => layers.reduce((acc, layer) => mergeDefaults(acc, layer), spec.defaults as unknown);
  const problems = (layers: unknown[]): { value?: Static<S>; problems: Problem[] } => {
    const result = validate(merged(layers));
    if (!result.ok) return { problems: result.problems };
    const rule = spec.check?.(result.value);
    return rule === undefined ? { value: result.value, problems: [] } : { problems: [{ path: '', rule: 'options', message: rule }] };
  };
  const resolveLayers = (...layers: unknown[]): Static<S> => {
    const result = problems(layers);
    if (result.value === undefined) throw spec.error(describeOptionProblems(result.problems), result.problems);
    return result.value;
  };
  return {
    schema: spec.schema,
    defaults: spec.defaults,
    resolve: (input) => resolveLayers(input),
    resolveLayers,
    problems: (...layers) => problems(layers).problems,
  };
}
