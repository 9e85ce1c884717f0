// The README's "Run the parts on their own", run as written on a fresh broker: the commands are read out
// of its code block and run as child processes (npm script → node command from package.json), with only
// the ports swapped for free ones and a temp folder as the working directory (for ./kafka-data, ./lake…).
// Heavy: a broker of its own and four Node processes at once would starve neighbouring test files.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '@city/protocol';
import { standardTopics } from '@city/deploy/kafka';
import { describe, expect, it } from 'vitest';
import { runCli, spawnCli, type CliResult, type RunningCli } from './support/cli.ts';
import { accepts, freePort } from './support/net.ts';
import { tempDir } from './support/teardown.ts';

const ROOT = join(import.meta.dirname, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** The first ```sh block after the heading. */
function codeBlock(heading: string): string[] {
  const at = README.indexOf(`\n## ${heading}\n`);
  expect(at, `README section "${heading}"`).toBeGreaterThan(0);
  const block = /```sh\n([\s\S]*?)```/.exec(README.slice(at))?.[1];
  if (block === undefined) throw new Error(`no sh code block under "${heading}"`);
  return block.split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
}

/** Shell words of one command line: quotes group, `#` outside quotes starts a comment. */
function words(line: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote: string | undefined;
  for (const ch of line) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (ch === ' ') {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else if (ch === '#' && word === undefined) {
      break;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (quote !== undefined) throw new Error(`unclosed quote in: ${line}`);
  if (word !== undefined) out.push(word);
  return out;
}

interface Command {
  line: string;
  /** npm script and its subcommand, e.g. "kafka start". */
  name: string;
  nodeArgs: string[];
  file: string;
  args: string[];
}

/** `npm run S -- args…` as the node command package.json gives for S. */
function toCommand(line: string): Command {
  const [npm, run, script, dashes, ...args] = words(line);
  if (npm !== 'npm' || run !== 'run' || script === undefined || dashes !== '--') throw new Error(`not "npm run SCRIPT -- …": ${line}`);
  const scriptWords = SCRIPTS[script]?.split(/\s+/) ?? [];
  if (scriptWords[0] !== 'node') throw new Error(`npm script ${script} is not a node command`);
  const at = scriptWords.findIndex((w, i) => i > 0 && !w.startsWith('-'));
  const fixed = scriptWords.slice(at + 1);
  const sub = args[0] !== undefined && !args[0].startsWith('-') ? ` ${args[0]}` : '';
  return { line, name: `${script}${sub}`, nodeArgs: scriptWords.slice(1, at), file: join(ROOT, scriptWords[at]!), args: [...fixed, ...args] };
}

/** Every port the commands name (`--port N`, `host:N`, `scheme://host:N`), each mapped to a free one. */
async function portMap(commands: Command[]): Promise<Map<string, string>> {
  const ports = new Set<string>();
  for (const { args } of commands) {
    for (const [i, arg] of args.entries()) {
      if (args[i - 1] === '--port' && /^\d+$/.test(arg)) ports.add(arg);
      for (const m of arg.matchAll(/[\w.\]]:(\d{2,5})(?=$|[/,])/g)) ports.add(m[1]!);
    }
  }
  const map = new Map<string, string>();
  for (const port of ports) map.set(port, String(await freePort()));
  return map;
}

function substitute(args: string[], ports: Map<string, string>): string[] {
  return args.map((arg, i) => {
    if (args[i - 1] === '--port' && ports.has(arg)) return ports.get(arg)!;
    return arg.replace(/([\w.\]]:)(\d{2,5})(?=$|[/,])/g, (whole, host: string, port: string) => (ports.has(port) ? `${host}${ports.get(port)}` : whole));
  });
}

function output(name: string, result: Pick<CliResult, 'stdout' | 'stderr'>): string {
  return `${name}\n--- stdout\n${result.stdout.slice(-3_000)}\n--- stderr\n${result.stderr.slice(-3_000)}`;
}

describe('README: run the parts on their own', () => {
  it('works as written on a fresh broker: kafka start → topics → gateway → sink → a device publishes → a query finds it', { timeout: 300_000 }, async () => {
    const commands = codeBlock('Run the parts on their own').map(toCommand);
    expect(commands.map((c) => c.name)).toEqual(['kafka start', 'kafka topics', 'gateway start', 'sink run', 'sim', 'query']);
    const ports = await portMap(commands);
    const cwd = tempDir('front-door-');
    const running: { name: string; cli: RunningCli }[] = [];
    // A part that stops on its own fails the test with its output, whatever the test was waiting for.
    const checkRunning = () => {
      for (const { name, cli } of running) {
        if (cli.child.exitCode !== null || cli.child.signalCode !== null) throw new Error(`${name} exited with ${cli.child.exitCode ?? cli.child.signalCode}\n${output(name, { stdout: cli.stdout(), stderr: cli.stderr() })}`);
      }
    };
    // No KAFKA_BROKERS from the suite: the commands name their broker.
    const spawn = (command: Command) => spawnCli(command.file, substitute(command.args, ports), { nodeArgs: command.nodeArgs, cwd });
    const run = (command: Command) => runCli(command.file, substitute(command.args, ports), { nodeArgs: command.nodeArgs, cwd, timeoutMs: 60_000 });
    /** A flag's value as the command runs (ports substituted). */
    const flag = (command: Command, name: string): string => {
      const args = substitute(command.args, ports);
      const at = args.indexOf(name);
      if (at < 0 || args[at + 1] === undefined) throw new Error(`${command.line} has no ${name}`);
      return args[at + 1]!;
    };
    const [kafkaStart, topics, gatewayStart, sinkRun, sim, query] = commands as [Command, Command, Command, Command, Command, Command];

    const kafka = spawn(kafkaStart);
    running.push({ name: kafkaStart.line, cli: kafka });
    const [address] = await kafka.waitForOutput(/^127\.0\.0\.1:\d+$/m, 180_000);
    expect(address).toBe(`127.0.0.1:${flag(kafkaStart, '--port')}`);

    const created = await run(topics);
    expect(created.code, output(topics.line, created)).toBe(0);
    // kafka start made them already: the topics command finds each one there.
    expect(created.stdout.trim().split('\n')).toHaveLength(standardTopics().length);
    expect(created.stdout).not.toMatch(/created$/m);

    const gateway = spawn(gatewayStart);
    running.push({ name: gatewayStart.line, cli: gateway });
    const mqttPort = Number(flag(gatewayStart, '--port'));
    await waitFor(async () => (checkRunning(), accepts(mqttPort)), { timeoutMs: 60_000, intervalMs: 100, what: 'the gateway listening' });
    const sink = spawn(sinkRun);
    running.push({ name: sinkRun.line, cli: sink });

    const published = await run(sim);
    expect(published.code, output(sim.line, published)).toBe(0);
    checkRunning();

    let last: CliResult | undefined;
    await waitFor(
      async () => {
        checkRunning();
        last = await run(query);
        return last.code === 0 && /sim-vehicle-0000 \| +10$/m.test(last.stdout);
      },
      { timeoutMs: 90_000, intervalMs: 500, what: () => `the query to find the vehicle's 10 events\n${last === undefined ? '' : output(query.line, last)}` },
    );

    // Ctrl-C stops each part cleanly.
    for (const { name, cli } of [...running].reverse()) {
      cli.signal('SIGINT');
      const result = await cli.exited;
      expect(result.code, output(name, result)).toBe(0);
    }
  });
});
