// Reads a V8 .cpuprofile (node --cpu-prof) and prints where the time went: self time by package or
// source folder, and the functions with the most self time. For the field-load benchmark's profiles.
//   node test/bench/cpu-profile.ts FILE.cpuprofile [--top 30]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' }, help: { type: 'boolean', default: false } } });
if (values.help || positionals.length !== 1) {
  process.stdout.write('usage: node test/bench/cpu-profile.ts FILE.cpuprofile [--top 30]\n');
  process.exit(values.help ? 0 : 2);
}
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));

// A bundle (esbuild, not minified) marks each module with a `// path` line: frames in it are
// attributed to the module whose marker precedes their line.
const bundles = new Map<string, { line: number; path: string }[]>();
function sourceOf(url: string, lineNumber: number): string {
  if (!url.startsWith('file://') || !url.endsWith('.mjs')) return url;
  let marks = bundles.get(url);
  if (marks === undefined) {
    marks = [];
    try {
      readFileSync(new URL(url), 'utf8')
        .split('\n')
        .forEach((text, line) => {
          const m = /^\/\/ ((?:node_modules|gateway|protocol)\/\S+)$/.exec(text);
          if (m) marks!.push({ line, path: `/${m[1]!}` });
        });
    } catch {
      // The bundle is gone: keep its own name.
    }
    bundles.set(url, marks);
  }
  let found = url;
  for (const m of marks) {
    if (m.line > lineNumber) break;
    found = m.path;
  }
  return found;
}

/** Where a frame's code lives: a package, one of our source folders, node's own modules, or V8's pseudo-frames. */
function area(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/').slice(0, 2).join('/');
  const ours = /\/(gateway|protocol|cloud|device-sim)\/src\/([^/]+)/.exec(url);
  if (ours) return `${ours[1]}/${ours[2]!.replace(/\.ts$/, '')}`;
  return url.split('/').slice(-1)[0]!;
}

const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const idle = [...selfUs].filter(([id]) => byId.get(id)!.callFrame.functionName === '(idle)').reduce((a, [, us]) => a + us, 0);
const busy = total - idle;
const areas = new Map<string, number>();
const fns = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  if (functionName === '(idle)') continue;
  const source = sourceOf(url, lineNumber);
  const a = area(source, functionName);
  areas.set(a, (areas.get(a) ?? 0) + us);
  const key = `${functionName || '(anonymous)'}  ${source.split('/').slice(-2).join('/')}:${lineNumber + 1}`;
  fns.set(key, (fns.get(key) ?? 0) + us);
}
const pct = (us: number) => `${((us / busy) * 100).toFixed(1).padStart(5)} %`;
process.stdout.write(`${positionals[0]}: ${(total / 1e6).toFixed(1)} s profiled, busy ${(busy / 1e6).toFixed(1)} s (${((busy / total) * 100).toFixed(0)} %); shares of busy time\n`);
process.stdout.write('self time by area:\n');
for (const [a, us] of [...areas].sort((x, y) => y[1] - x[1]).slice(0, 25)) process.stdout.write(`  ${pct(us)}  ${a}\n`);
process.stdout.write('functions with the most self time:\n');
for (const [f, us] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, Number(values.top))) process.stdout.write(`  ${pct(us)}  ${f}\n`);
