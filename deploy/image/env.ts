// Configuration by environment for the sink image: every SINK_<NAME> variable becomes the flag
// --<name> of `sink run` (SINK_S3_BUCKET=city-lake → --s3-bucket city-lake; "true" → a bare flag such
// as --no-raw, "false" or empty → left out). Generic on purpose, so a flag `sink run` gains is
// configurable here without an edit; the sink's strict parser names any variable that is not a flag.
// Names that end like a secret (…_PASSWORD, …_TOKEN, …_KEY) are never turned into flags: a command line
// is visible to every process, and secrets reach the sink as files or variables of their own, which
// flags may name (SINK_SASL_PASSWORD_ENV=KAFKA_SASL_PASSWORD, SINK_TLS_KEY_FILE=/run/secrets/key.pem).

const PREFIX = 'SINK_';
const SECRET = /(PASSWORD|SECRET|TOKEN|CREDENTIALS?|_KEY)$/;

/** The flags of `sink run` that the environment sets, in a stable (sorted) order. */
export function flagsFromEnv(env: Readonly<Record<string, string | undefined>>): string[] {
  const flags: string[] = [];
  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (!name.startsWith(PREFIX) || SECRET.test(name) || value === undefined) continue;
    const flag = `--${name.slice(PREFIX.length).toLowerCase().replaceAll('_', '-')}`;
    if (value === '' || value === 'false') continue;
    if (value === 'true') flags.push(flag);
    else flags.push(flag, value);
  }
  return flags;
}

/**
 * The sink's command line in the image: no arguments (or only flags) runs `sink run` with the flags the
 * environment gives, then the arguments; a command (`query`, `compact`, `--help`) runs as given.
 */
export function sinkArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): string[] {
  if (argv.length > 0 && !argv[0]!.startsWith('-')) return [...argv];
  if (argv.some((a) => a === '--help' || a === '-h')) return ['run', '--help'];
  return ['run', ...flagsFromEnv(env), ...argv];
}
