// The gateway's cloud-init example (deploy/gateway-package/cloud-init/user-data) unpacked as first boot
// would: its write_files written under a folder instead of /, the paths inside the config moved with
// them. Reads only the shape that file uses (`- path:`, `permissions:`, `content: |` blocks).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const USER_DATA = join(import.meta.dirname, '..', '..', 'deploy', 'gateway-package', 'cloud-init', 'user-data');

export interface WrittenFile {
  path: string;
  permissions: string;
  content: string;
}

export function userDataFiles(text = readFileSync(USER_DATA, 'utf8')): WrittenFile[] {
  const lines = text.split('\n');
  const files: WrittenFile[] = [];
  let inWriteFiles = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\S/.test(line)) inWriteFiles = line.startsWith('write_files:');
    if (!inWriteFiles) continue;
    const path = /^ {2}- path: (\S+)$/.exec(line);
    if (path !== null) files.push({ path: path[1]!, permissions: '', content: '' });
    const file = files.at(-1);
    if (file === undefined) continue;
    const mode = /^ {4}permissions: '(\d+)'$/.exec(line);
    if (mode !== null) file.permissions = mode[1]!;
    if (/^ {4}content: \|$/.test(line)) {
      const body: string[] = [];
      while (i + 1 < lines.length && (lines[i + 1]!.startsWith('      ') || lines[i + 1] === '')) body.push(lines[++i]!.slice(6));
      file.content = `${body.join('\n').replace(/\n+$/, '')}\n`;
    }
  }
  return files;
}

/**
 * Writes the example's files under `root` (as /etc/city-gateway/… → root/etc/city-gateway/…), with the
 * absolute paths in their contents moved the same way and `replace` applied to contents; returns the
 * files by their original path.
 */
export function unpackUserData(root: string, replace: (path: string, content: string) => string = (_p, c) => c): Map<string, string> {
  const out = new Map<string, string>();
  for (const file of userDataFiles()) {
    const target = join(root, file.path);
    mkdirSync(dirname(target), { recursive: true });
    const content = replace(file.path, file.content.replace(/"\/(etc|var\/lib)\/city-gateway\//g, (_m, top: string) => `"${root}/${top}/city-gateway/`));
    writeFileSync(target, content, { mode: Number.parseInt(file.permissions || '0644', 8) });
    out.set(file.path, target);
  }
  return out;
}
