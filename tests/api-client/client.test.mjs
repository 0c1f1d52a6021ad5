// The OpenAPI document as a client developer meets it: fetched from a running
// `igbroker demo`, validated by an independent OpenAPI 3.1 validator, turned into a
// TypeScript client by openapi-typescript, compiled with `tsc --strict`, and used to
// connect an account through the sandbox's consent (the step a person does in a browser
// is done through the sandbox's control API, as the demo script does).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';

const here = dirname(fileURLToPath(import.meta.url));
const bin = process.env.IGBROKER_BIN || resolve(here, '../../target/debug/igbroker');
const info = {};
let demo, demoDir, doc;

function startDemo() {
  demoDir = mkdtempSync(join(tmpdir(), 'igb-api-demo-'));
  demo = spawn(bin, ['demo', '--port', '0', '--data', demoDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error(`demo printed no banner in 60s:\n${out}`)), 60_000);
    demo.on('exit', (code) => fail(new Error(`demo exited early (${code}):\n${out}`)));
    demo.stdout.on('data', (chunk) => {
      out += chunk;
      if (!out.includes('then open the connect_url')) return;
      clearTimeout(timer);
      for (const line of out.split('\n').map((l) => l.trim())) {
        if (line.startsWith('broker:')) info.broker = line.slice(7).trim();
        if (line.startsWith('sandbox:')) info.sandbox = line.slice(8).trim().split(' ')[0];
        if (line.startsWith('admin key:')) info.key = line.slice(10).trim();
      }
      ok();
    });
  });
}

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { demo?.kill('SIGKILL'); process.exit(1); });
}

before(async () => {
  await startDemo();
  assert.ok(info.broker && info.sandbox && info.key, `demo banner incomplete: ${JSON.stringify(info)}`);
  const resp = await fetch(`${info.broker}/openapi.json`);
  assert.equal(resp.status, 200);
  doc = await resp.json();
});

after(async () => {
  if (demo && demo.exitCode === null) {
    const exited = new Promise((r) => demo.once('exit', r));
    demo.kill('SIGINT');
    await exited;
  }
  if (demoDir) rmSync(demoDir, { recursive: true, force: true });
});

test('the document is valid OpenAPI 3.1 by an independent validator', async () => {
  assert.equal(doc.openapi, '3.1.0');
  const validator = new Validator();
  const result = await validator.validate(doc);
  assert.ok(result.valid, `invalid OpenAPI: ${JSON.stringify(result.errors, null, 2)}`);
  assert.equal(validator.version, '3.1');
});

test('a generated TypeScript client compiles and connects an account', async () => {
  // Generate from the document the running broker serves, then compile strictly.
  mkdirSync(join(here, 'generated'), { recursive: true });
  writeFileSync(join(here, 'generated', 'openapi.json'), JSON.stringify(doc));
  execFileSync(process.execPath, [resolve(here, 'node_modules/openapi-typescript/bin/cli.js'),
    join(here, 'generated', 'openapi.json'), '-o', join(here, 'generated', 'api.ts')], { stdio: 'inherit' });
  rmSync(join(here, 'build'), { recursive: true, force: true });
  execFileSync(process.execPath, [resolve(here, 'node_modules/typescript/bin/tsc'), '-p', here], { stdio: 'inherit' });
  const client = await import(pathToFileURL(join(here, 'build', 'src', 'broker.js')).href);

  const api = client.broker(info.broker, info.key);
  const appId = await client.firstApp(api);
  const endUser = `ts-client-${Date.now()}`;
  const session = await client.startConnect(api, appId, endUser);
  assert.equal(session.status, 'pending');
  assert.ok(session.connect_url.startsWith(info.broker));

  // The browser's part: the connect link (keeping its cookie), the consent, the callback.
  const link = await fetch(session.connect_url, { redirect: 'manual' });
  assert.equal(link.status, 302);
  const cookie = (link.headers.get('set-cookie') || '').split(';')[0];
  const authorize = new URL(link.headers.get('location'));
  const consent = await fetch(`${info.sandbox}/_sandbox/authorize`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_id: authorize.searchParams.get('client_id'),
      redirect_uri: authorize.searchParams.get('redirect_uri'),
      scope: authorize.searchParams.get('scope') || '',
      state: authorize.searchParams.get('state'),
      username: 'demo_shop',
      decision: 'allow',
    }),
  });
  assert.equal(consent.status, 200, await consent.clone().text());
  const callback = new URL((await consent.json()).location);
  callback.hash = '';
  const back = await fetch(callback, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  assert.ok([200, 302].includes(back.status), `callback answered ${back.status}`);

  const done = await client.session(api, session.id);
  assert.equal(done.status, 'connected', JSON.stringify(done));
  assert.ok(done.account_id);
  const acc = await client.account(api, done.account_id);
  assert.equal(acc.status, 'active');
  assert.equal(acc.username, 'demo_shop');
  assert.ok(acc.scopes.length > 0);
  const listed = await client.accountsOf(api, appId, endUser);
  assert.deepEqual(listed.map((a) => a.id), [acc.id]);
  const missing = await client.missingAccount(api);
  assert.equal(missing.error.code, 'not_found');
  assert.ok(missing.error.request_id);
});
