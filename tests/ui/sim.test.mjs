// sim.test.mjs - the chat simulator page (ui/sim.html) in a real browser
// against the real binary: node sim.test.mjs MYNA_BIN (or env MYNA_BIN).
//
// Starts `myna serve` with one sim instance in a temp dir, opens
// http://ADMIN/sim/demo in headless Chromium (the system's, driven by
// playwright-core from tests/ui/node_modules, see scripts/deps.sh) and plays
// the customer: a FAQ question is answered and its ticks turn blue, hostile
// text stays text, a reply button sent by the bot (posted to the fake Graph
// API as a bot would) answers when clicked; then SIGTERM stops Myna cleanly
// with no sanitizer report (in the master's output or the bots' log files).
// Exit code 0 or 1; on failure prints what the page showed and the end of
// Myna's log.
// MYNA_UI_SCREENSHOT=file.png saves the page at the end.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CHROMIUM = '/usr/bin/chromium';
const TOTAL_MS = 60000;
const STEP_MS = 20000;
const bin = process.argv[2] || process.env.MYNA_BIN;

let myna = null, ctx = null, page = null, tmp = null, log = '', done = false;

function say(s) { console.log('ui_sim: ' + s); }

async function cleanup() {
  if (ctx) await ctx.close().catch(() => {});
  ctx = null;
  if (myna && myna.exitCode === null && myna.signalCode === null) {
    const exited = new Promise((r) => myna.once('exit', r));
    myna.kill('SIGTERM');
    const t = setTimeout(() => myna.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  tmp = null;
}

// the bots write to files of their own, var/logs/<id>.log (and .1 ...)
function botLogs() {
  const dir = tmp && path.join(tmp, 'var', 'logs');
  let all = '';
  try {
    for (const f of fs.readdirSync(dir)) all += fs.readFileSync(path.join(dir, f), 'utf8');
  } catch (e) { /* none yet */ }
  return all;
}

async function fail(msg) {
  if (done) return;
  done = true;
  console.error('ui_sim: FAIL: ' + msg);
  if (page) {
    const shown = await page.evaluate(dumpList).catch(() => null);
    if (shown) console.error('ui_sim: the page shows:\n' + shown);
    const png = path.join(os.tmpdir(), 'myna-ui-sim-failure.png');
    if (await page.screenshot({ path: png }).then(() => true, () => false))
      console.error('ui_sim: screenshot: ' + png);
  }
  const tail = (log + botLogs()).split('\n').slice(-40).join('\n');
  if (tail.trim()) console.error('ui_sim: the end of myna\'s log:\n' + tail);
  await cleanup();
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// runs in the page: one line per message, "dir status text [error]"
function dumpList() {
  return [...document.querySelectorAll('#list .msg')].map((m) => '  ' + m.dataset.dir + ' ' +
    m.dataset.status + ' ' + JSON.stringify((m.querySelector('.text') || m).textContent) +
    (m.querySelector('.err') ? ' error=' + JSON.stringify(m.querySelector('.err').textContent) : '')).join('\n');
}

// the messages on the page as {dir, status, text, error, buttons}
function messages(page) {
  return page.evaluate(() => [...document.querySelectorAll('#list .msg[data-dir]')].map((m) => ({
    dir: m.dataset.dir, status: m.dataset.status, text: m.querySelector('.text').textContent,
    error: m.querySelector('.err') ? m.querySelector('.err').textContent : null,
  })));
}

// polls pred until it returns a truthy value; fails with what was awaited
async function until(page, what, pred, ms = STEP_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) await fail('timed out after ' + ms + ' ms waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// the customer's message with this text, once the server took it
async function accepted(page, text) {
  return until(page, 'the customer\'s message ' + JSON.stringify(text) + ' to be accepted', async () => {
    const m = (await messages(page)).find((x) => x.dir === 'in' && x.text === text);
    if (m && (m.error || m.status === 'failed'))
      await fail('the server refused ' + JSON.stringify(text) + ': ' + m.error);
    return m && m.status !== 'pending' ? m : null;
  });
}

async function startMyna() {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'myna-ui-'));
  const instances = path.join(tmp, 'instances.json');
  fs.writeFileSync(instances, JSON.stringify([{
    id: 'demo', name: 'Demo', provider: 'sim',
    faq: [{ q: ['what are your opening hours', 'when are you open'], a: 'We are open 9-18.' }],
    fallback_text: 'Sorry, I don\'t know.',
    batch: { window_ms: 300 },
  }]));
  myna = spawn(bin, ['serve', '--public', '127.0.0.1:0', '--admin', '127.0.0.1:0',
    '--data', path.join(tmp, 'var'), '--instances', instances, '--bots', '1'],
  { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve) => {
    let line = '';
    const onData = (d) => {
      log += d;
      line += d;
      let i;
      while ((i = line.indexOf('\n')) >= 0) {
        const l = line.slice(0, i);
        line = line.slice(i + 1);
        const m = / event=ready\b/.test(l) && / admin=(\S+)/.exec(l);
        if (m) resolve(m[1].replace(/^"|"$/g, ''));
      }
    };
    myna.stdout.on('data', onData);
    myna.stderr.on('data', onData);
    myna.on('error', (e) => fail('cannot start ' + bin + ': ' + e.message));
    myna.on('exit', (code, sig) => {
      if (!done) fail('myna exited (code ' + code + ', signal ' + sig + ') before the test ended');
    });
  });
}

async function main() {
  if (!bin) await fail('usage: node sim.test.mjs MYNA_BIN (or env MYNA_BIN)');
  if (!fs.existsSync(CHROMIUM)) await fail(CHROMIUM + ' is missing: run scripts/deps.sh');
  let chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch (e) {
    await fail('playwright-core is not installed in tests/ui: run scripts/deps.sh (' + e.message + ')');
  }

  const admin = await startMyna();
  say('myna is ready, admin listener ' + admin);
  ctx = await chromium.launchPersistentContext(path.join(tmp, 'chromium'), {
    executablePath: CHROMIUM, headless: true, viewport: { width: 480, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = ctx.pages()[0] || await ctx.newPage();
  let dialogs = 0;
  page.on('dialog', (d) => { dialogs++; d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => fail('script error in the page: ' + e.message));
  const res = await page.goto('http://' + admin + '/sim/demo');
  if (!res || res.status() !== 200) await fail('GET /sim/demo answered ' + (res && res.status()));
  const box = page.locator('#text');

  // 1. a FAQ question: answered, and the bot reads it (blue ticks)
  await box.fill('when are you open?');
  await box.press('Enter');
  await accepted(page, 'when are you open?');
  await until(page, 'the bot\'s reply "We are open 9-18."', async () =>
    (await messages(page)).some((m) => m.dir === 'out' && m.text === 'We are open 9-18.'));
  await until(page, 'the question to turn read (blue ticks)', async () =>
    (await messages(page)).some((m) => m.dir === 'in' && m.text === 'when are you open?' &&
      m.status === 'read') &&
    await page.locator('.msg[data-dir="in"][data-status="read"] .tick.read').count() > 0);
  say('ok: the FAQ answer arrived and the question was read');

  // 2. hostile text is shown as text: no element made, nothing run
  const hostile = '<img src=x onerror=alert(1)>';
  await box.fill(hostile);
  await box.press('Enter');
  await accepted(page, hostile);
  await page.waitForTimeout(300);
  const imgs = await page.locator('#list img').count();
  if (imgs !== 0 || dialogs !== 0)
    await fail('hostile text made ' + imgs + ' <img> and ' + dialogs + ' dialogs');
  say('ok: hostile text shown literally');

  // 3. a reply button sent by the bot, clicked by the customer
  const ir = await fetch('http://' + admin + '/sim/demo/info');
  const info = await ir.json().catch(() => ({}));
  if (!ir.ok || !info.phone_number_id || !info.access_token)
    await fail('GET /sim/demo/info answered ' + ir.status + ' without phone_number_id and access_token');
  const phone = await page.evaluate(() => localStorage.getItem('myna.sim.phone'));
  const gr = await fetch('http://' + admin + '/sim/graph/' + info.phone_number_id + '/messages', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + info.access_token },
    body: JSON.stringify({ messaging_product: 'whatsapp', to: '+' + phone, type: 'interactive',
      interactive: { type: 'button', body: { text: 'Pick one' },
        action: { buttons: [{ type: 'reply', reply: { id: 'b_yes', title: 'Yes' } }] } } }),
  });
  if (!gr.ok) await fail('the fake Graph API answered ' + gr.status + ': ' + await gr.text());
  const yes = page.locator('.msg[data-dir="out"]', { hasText: 'Pick one' }).locator('.acts button', { hasText: 'Yes' });
  await until(page, 'the "Pick one" message with its "Yes" button', async () => await yes.count() === 1);
  await yes.click();
  await accepted(page, 'Yes');
  say('ok: the "Yes" button was clicked and its reply sent');

  // 4. a name of 63 letters and an emoji: cut at 64 whole characters, the send still goes
  await page.locator('#me').click();
  await page.locator('#f-name').fill('a'.repeat(63) + '\u{1F600}');
  await page.locator('#idform').evaluate((f) => f.requestSubmit());
  const stored = await page.evaluate(() => localStorage.getItem('myna.sim.name'));
  if (stored !== 'a'.repeat(63) + '\u{1F600}') await fail('the name was kept as ' + JSON.stringify(stored));
  await box.fill('named');
  await box.press('Enter');
  await accepted(page, 'named');
  say('ok: a name ending in an emoji at the limit is kept whole and sent');

  if (process.env.MYNA_UI_SCREENSHOT) await page.screenshot({ path: process.env.MYNA_UI_SCREENSHOT });

  // 5. SIGTERM: a clean exit, and nothing from the sanitizers in the log
  await ctx.close();
  ctx = null;
  done = true;
  const exited = new Promise((r) => myna.once('exit', (code, sig) => r([code, sig])));
  myna.kill('SIGTERM');
  const [code, sig] = await exited;
  log += botLogs();
  if (code !== 0 || /AddressSanitizer|LeakSanitizer|runtime error:/.test(log)) {
    done = false;
    await fail('myna stopped with code ' + code + ', signal ' + sig + ' or a sanitizer report');
  }
  say('ok: myna stopped cleanly on SIGTERM');
  await cleanup();
  console.log('4 passed, 0 failed');
}

const timer = setTimeout(() => fail('the whole test took over ' + TOTAL_MS / 1000 + ' s'), TOTAL_MS);
process.on('SIGTERM', () => fail('killed by SIGTERM'));
process.on('SIGINT', () => fail('interrupted'));
main().then(() => clearTimeout(timer), (e) => fail(e.stack || String(e)));
