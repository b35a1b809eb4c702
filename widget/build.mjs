// Builds the browser bundles with esbuild: widget.js (IIFE, the one script tag), chat-sdk.mjs
// (ES module), chat-sw.js (service worker), chat-sdk.d.ts (types, from tsc), demo.html; then
// checks the bundle budgets (gzip) and writes integrity.json (SRI sha384 of each file).
//   node build.mjs [--out DIR]      (default: ../build/widget)
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
const out = resolve(outIdx >= 0 ? args[outIdx + 1] : join(here, '..', 'build', 'widget'));
mkdirSync(out, { recursive: true });

// Bundle budgets, bytes of gzip (issue: widget <= 60 KB, SDK <= 15 KB).
const BUDGET = { 'widget.js': 60 * 1024, 'chat-sdk.mjs': 15 * 1024, 'chat-sw.js': 8 * 1024 };

const common = { bundle: true, minify: true, target: ['es2020'], legalComments: 'none',
                 logLevel: 'warning', sourcemap: false };
await build({ ...common, entryPoints: [join(here, 'src/widget/index.ts')], format: 'iife',
              outfile: join(out, 'widget.js') });
await build({ ...common, entryPoints: [join(here, 'src/sdk/index.ts')], format: 'esm',
              outfile: join(out, 'chat-sdk.mjs') });
await build({ ...common, entryPoints: [join(here, 'src/sw/chat-sw.ts')], format: 'iife',
              outfile: join(out, 'chat-sw.js') });

// Types of the SDK for TypeScript users: ONE self-contained chat-sdk.d.ts to drop next to
// chat-sdk.mjs. tsc emits the declarations of the SDK's modules into a temporary directory;
// the public ones (types.ts, the outbox stores, index.ts) are joined, their imports of each
// other removed, inside `declare module '*/chat-sdk.mjs'`: TypeScript looks for a .d.mts
// beside a .mjs, never a .d.ts, so the file declares the module for any specifier ending in
// /chat-sdk.mjs ('./chat-sdk.mjs', 'https://chat.example.com/v1/chat-sdk.mjs'). A small
// program importing it is compiled against it as a check.
const SDK_PUBLIC = ['types', 'outbox', 'index'];
const tmpTypes = mkdtempSync(join(tmpdir(), 'chat-sdk-types-'));
try {
  const tsc = join(here, 'node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', here, '--emitDeclarationOnly', '--declarationDir',
    tmpTypes, '--outDir', tmpTypes], { stdio: 'inherit' });
  const local = /^(import [^;]* from '\.\/[^']*';|export (\*|\{[^}]*\}) from '\.\/[^']*';)\n/gm;
  const body = SDK_PUBLIC.map((m) => readFileSync(join(tmpTypes, 'sdk', m + '.d.ts'), 'utf8')
    .replace(local, '').replace(/^(export )?declare /gm, '$1').trim()).join('\n\n');
  const dts = '// Types of chat-sdk.mjs (generated from widget/src/sdk by widget/build.mjs).\n' +
    "declare module '*/chat-sdk.mjs' {\n" +
    body.split('\n').map((l) => (l ? '  ' + l : l)).join('\n') + '\n}\n';
  writeFileSync(join(out, 'chat-sdk.d.ts'), dts);
  writeFileSync(join(tmpTypes, 'chat-sdk.d.ts'), dts);
  writeFileSync(join(tmpTypes, 'use.ts'),
    "import { createChatClient, type ChatClient } from './chat-sdk.mjs';\n" +
    "const c: ChatClient = createChatClient({ gateways: ['wss://h/v1/ws'], tokenUrl: '/t' });\n" +
    "c.on('message', (m) => m.seq.toFixed());\n");
  execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--module', 'es2022',
    '--moduleResolution', 'bundler', '--lib', 'ES2022,DOM', join(tmpTypes, 'use.ts'),
    join(tmpTypes, 'chat-sdk.d.ts')], { stdio: 'inherit' });
} finally {
  rmSync(tmpTypes, { recursive: true, force: true });
}
copyFileSync(join(here, 'demo/index.html'), join(out, 'demo.html'));

const integrity = {};
let over = false;
for (const name of ['widget.js', 'chat-sdk.mjs', 'chat-sw.js']) {
  const data = readFileSync(join(out, name));
  const gz = gzipSync(data, { level: 9 }).length;
  integrity[name] = 'sha384-' + createHash('sha384').update(data).digest('base64');
  const budget = BUDGET[name];
  const verdict = gz <= budget ? 'ok' : 'OVER BUDGET';
  if (gz > budget) over = true;
  console.log(`widget build: ${name.padEnd(13)} ${String(data.length).padStart(7)} B, ` +
              `${String(gz).padStart(6)} B gzip (budget ${budget} B) ${verdict}`);
}
writeFileSync(join(out, 'integrity.json'), JSON.stringify(integrity, null, 2) + '\n');
if (over) {
  console.error('widget build: a bundle is over its gzip budget');
  process.exit(1);
}
