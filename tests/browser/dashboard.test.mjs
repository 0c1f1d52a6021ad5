// The dashboard in a real browser: Debian's Chromium driven by playwright-core.
// Starts `igbroker demo` (broker + sandbox on loopback), then, as a person would:
// signs in, connects an account through the sandbox's consent page, finds it active,
// opens its timeline and revokes it; separately denies consent and reads why.
// Every page passes axe-core (WCAG 2 A/AA and best practices) and is screenshotted
// into screenshots/ (gitignored). No page may break its Content-Security-Policy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const bin = process.env.IGBROKER_BIN || resolve(here, '../../target/debug/igbroker');
const shots = join(here, 'screenshots');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

let demo, demoDir, profileDir, context;
const info = {};
const cspErrors = [];

// Reads the demo's printed URLs; resolves once the whole banner is out.
function startDemo() {
  demoDir = mkdtempSync(join(tmpdir(), 'igb-ui-demo-'));
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
        if (line.includes('/ui/sign-in/link/')) info.link = line;
        if (line.startsWith('broker:')) info.broker = line.slice(7).trim();
        if (line.startsWith('admin key:')) info.key = line.slice(10).trim();
      }
      ok();
    });
  });
}

// A killed run (e.g. by scripts/test's timeout) takes the demo with it.
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { demo?.kill('SIGKILL'); process.exit(1); });
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  await startDemo();
  assert.ok(info.link && info.broker && info.key, `demo banner incomplete: ${JSON.stringify(info)}`);
  profileDir = mkdtempSync(join(tmpdir(), 'igb-ui-chromium-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(20_000);
  context.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) cspErrors.push(msg.text());
  });
});

after(async () => {
  await context?.close();
  if (demo && demo.exitCode === null) {
    const exited = new Promise((r) => demo.once('exit', r));
    demo.kill('SIGINT');
    await exited;
  }
  for (const d of [demoDir, profileDir]) if (d) rmSync(d, { recursive: true, force: true });
});

// axe-core on the page as it is; evaluate() runs outside the page's CSP (no inline script).
async function check(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }));
  const problems = result.violations.map((v) =>
    `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 3).map((n) => n.html).join('\n    ')}`);
  assert.deepEqual(problems, [], `axe found problems on ${name} (${page.url()}):\n${problems.join('\n')}`);
  assert.ok(result.passes.some((p) => p.id === 'color-contrast') || result.incomplete.some((p) => p.id === 'color-contrast'),
    `axe ran no contrast check on ${name}`);
  assert.deepEqual(cspErrors, [], `CSP violations on ${name}`);
}

test('sign in, connect through the sandbox, see it active, open its timeline, revoke it', { timeout: 180_000 }, async () => {
  const page = await context.newPage();
  await page.goto(`${info.broker}/ui`);
  assert.match(page.url(), /\/ui\/sign-in$/, 'an anonymous visit lands on the sign-in form');
  await check(page, '01-sign-in');

  await page.getByLabel('Admin API key').fill('igb_not_a_real_key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await assert.doesNotReject(page.locator('#signin-error').waitFor());
  await check(page, '02-sign-in-refused');

  await page.getByLabel('Admin API key').fill(info.key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  await check(page, '03-overview');

  await page.getByRole('link', { name: 'Apps', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Apps' }).waitFor();
  await check(page, '04-apps');
  await page.locator('#apps a').first().click();
  await page.getByRole('heading', { name: 'Registration' }).waitFor();
  assert.match(await page.locator('main').innerText(), /never shown again/);
  await check(page, '05-app');

  await page.getByRole('link', { name: 'Connect Instagram account' }).click();
  await check(page, '06-connect');
  await page.getByLabel('End user (optional)').fill('customer-7');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#open-consent').waitFor();
  assert.equal(await page.locator('#session-status').innerText(), 'pending');
  await check(page, '07-connect-session');

  await page.locator('#open-consent').click();
  await page.locator('#allow').waitFor();
  assert.notEqual(new URL(page.url()).origin, new URL(info.broker).origin, 'the consent page is the sandbox\'s');
  assert.match(await page.locator('h1').innerText(), /Demo app/);
  await check(page, '08-sandbox-consent');

  await page.getByLabel(/@demo_shop/).check();
  await page.locator('#allow').click();
  await page.locator('#result-title').waitFor();
  assert.equal(await page.locator('#result-title').innerText(), 'Your Instagram account is connected');
  assert.equal(await page.locator('#result-account').innerText(), '@demo_shop');
  assert.match(await page.locator('main').innerText(), /Demo app/);
  assert.equal(await page.locator('#status').innerText(), 'connected');
  await check(page, '09-connected-result');

  await page.locator('#back').click();
  assert.match(await page.locator('#connect-result').innerText(), /Connected/);
  await page.getByRole('link', { name: 'Accounts', exact: true }).click();
  const row = page.locator('#accounts tbody tr', { hasText: 'demo_shop' });
  await row.waitFor();
  assert.match(await row.innerText(), /active/);
  assert.match(await row.innerText(), /customer-7/);
  await check(page, '10-accounts');

  await page.getByLabel('Status').selectOption('revoked');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.locator('#no-accounts').waitFor();
  await page.goto(`${info.broker}/ui/accounts?q=demo_`);
  await row.waitFor();

  await row.getByRole('link', { name: 'demo_shop' }).click();
  await page.locator('#timeline').waitFor();
  assert.equal(await page.locator('#account-status').innerText(), 'active');
  assert.ok(await page.locator('#timeline .mark.issued').count() >= 1, 'the timeline marks the issue');
  assert.equal(await page.locator('#timeline .mark.expiry').count(), 1, 'the timeline marks the expiry');
  assert.match(await page.locator('#timeline-events').innerText(), /Connected/);
  assert.match(await page.locator('#audit').innerText(), /account\.connected/);
  await check(page, '11-account-timeline');

  await page.locator('#revoke').click();
  await page.getByRole('heading', { level: 1, name: /Revoke @demo_shop/ }).waitFor();
  await check(page, '12-revoke-confirm');
  await page.getByLabel(/Yes, revoke/).check();
  await page.locator('#confirm-revoke').click();
  await page.locator('.notice').waitFor();
  assert.equal(await page.locator('#account-status').innerText(), 'revoked');
  assert.equal(await page.locator('#timeline .mark.revoked').count(), 1, 'the timeline marks the revocation');
  assert.match(await page.locator('#audit').innerText(), /account\.revoked/);
  assert.match(await page.locator('#audit').innerText(), /ui:api_key:key_/, 'audited with the signed-in actor');
  await check(page, '13-account-revoked');
  await page.close();
});

test('deny consent and see the denial explained', { timeout: 120_000 }, async () => {
  await context.clearCookies();
  const page = await context.newPage();
  // The demo's one-time link signs in and opens the connect page.
  await page.goto(info.link);
  await page.getByRole('heading', { level: 1, name: 'Connect an Instagram account' }).waitFor();
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.locator('#open-consent').click();
  await page.locator('#deny').click();
  await page.locator('#result-title').waitFor();
  assert.equal(await page.locator('#result-title').innerText(), 'You did not allow access');
  assert.match(await page.locator('#result-explanation').innerText(), /chose not to allow Demo app/);
  assert.equal(await page.locator('#status').innerText(), 'denied');
  await check(page, '14-denied-result');
  await page.locator('#back').click();
  assert.match(await page.locator('#connect-result').innerText(), /declined/);
  await check(page, '15-connect-denied');

  // The link was one-time.
  await context.clearCookies();
  const again = await page.goto(info.link);
  assert.equal(again.status(), 401);
  await check(page, '16-link-used');
  await page.close();
});
