// The web view (/ui) in a real browser: Debian's Chromium, headless, driven
// by playwright-core, against a real three-node vtaskd cluster with TLS and
// bearer tokens that this file starts on free loopback ports (and stops).
// The CLI (`vtask`) makes the changes; the page must show them live.
//
//   scripts/ui-test.sh            (installs what it needs, builds, runs this)
//
// Environment: VTASK_BIN_DIR (vtaskd and vtask; default
// $CARGO_TARGET_DIR/debug), CHROMIUM (default /usr/bin/chromium),
// VTASK_UI_SCREENSHOTS (default $CARGO_TARGET_DIR/ui-screenshots),
// VTASK_KEEP_CLUSTER=1 keeps the cluster's directory.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const run = promisify(execFile);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const target = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
const bin = process.env.VTASK_BIN_DIR || path.join(target, 'debug');
const shots = process.env.VTASK_UI_SCREENSHOTS || path.join(target, 'ui-screenshots');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const now = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------
// The cluster

async function freePorts(count) {
  const servers = [];
  const ports = [];
  for (let i = 0; i < count; i++) {
    const server = net.createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    ports.push(server.address().port);
  }
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

function hashToken(token) {
  return execFileSync(path.join(bin, 'vtaskd'), ['hash-token'], { input: token + '\n' }).toString().trim();
}

function spki(pem) {
  // The SHA-256 of a certificate's public key, base64: Chromium accepts
  // exactly these keys (--ignore-certificate-errors-spki-list), as a
  // browser that trusts the cluster CA would accept the node certificates.
  const der = execFileSync('sh', ['-c', 'openssl x509 -pubkey -noout -in "$1" | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64', 'sh', pem]);
  return der.toString().trim();
}

class Cluster {
  async start() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vtask-ui-'));
    const ports = await freePorts(6);
    this.nodes = [1, 2, 3].map((id, i) => ({ id, grpc: ports[2 * i], http: ports[2 * i + 1], child: null }));
    execFileSync('bash', [path.join(repo, 'scripts/certs.sh'), path.join(this.dir, 'certs'), '3'], { stdio: 'ignore' });
    this.ca = path.join(this.dir, 'certs/ca.pem');
    this.tokens = { admin: randomBytes(24).toString('hex'), reporter: randomBytes(24).toString('hex'), outsider: randomBytes(24).toString('hex') };
    // The roles of scripts/users.sh, plus a reporter (no Global.CancelTask)
    // and an outsider (no System.View).
    fs.writeFileSync(path.join(this.dir, 'users.toml'), [
      '[roles]',
      'admin = ["Task.Create", "Task.Update", "Global.CancelTask", "System.View"]',
      'reporter = ["Task.Update", "System.View"]',
      'updater = ["Task.Update"]',
      ...['admin', 'reporter', 'outsider'].flatMap((name) => [
        '[[users]]', `name = "${name}"`, `token_sha256 = "${hashToken(this.tokens[name])}"`,
        `roles = ["${name === 'outsider' ? 'updater' : name}"]`]),
    ].join('\n') + '\n');
    this.initial = this.nodes.map((n) => `${n.id}=127.0.0.1:${n.grpc}`).join(',');
    for (const node of this.nodes) this.spawn(node.id);
    await this.waitHealthy();
  }

  node(id) { return this.nodes.find((n) => n.id === id); }

  spawn(id) {
    const node = this.node(id);
    const log = fs.openSync(path.join(this.dir, `node-${id}.log`), 'a');
    const certs = path.join(this.dir, 'certs');
    node.child = spawn(path.join(bin, 'vtaskd'), [
      '--auth-file', path.join(this.dir, 'users.toml'),
      '--tls-cert', path.join(certs, `node-${id}.pem`), '--tls-key', path.join(certs, `node-${id}-key.pem`), '--tls-ca', this.ca,
      '--node-id', String(id), '--listen', `127.0.0.1:${node.grpc}`, '--http', `127.0.0.1:${node.http}`,
      '--data-dir', path.join(this.dir, `node-${id}`), '--initial-cluster', this.initial,
    ], { stdio: ['ignore', log, log], env: { ...process.env, VTASKD_WORKER_THREADS: '1' } });
    fs.closeSync(log);
  }

  kill(id) {
    const node = this.node(id);
    node.child.kill('SIGKILL');
    node.child = null;
  }

  stopAll() {
    for (const node of this.nodes) if (node.child) this.kill(node.id);
    if (process.env.VTASK_KEEP_CLUSTER) console.log(`cluster kept in ${this.dir}`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }

  // GET /status in plain HTTP: a TLS node serves the probes' routes so.
  status(id) {
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: this.node(id).http, path: '/status', timeout: 1000 }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => { try { resolve(res.statusCode === 200 ? JSON.parse(body) : null); } catch { resolve(null); } });
      });
      req.on('error', () => resolve(null));
      req.on('timeout', () => { req.destroy(); resolve(null); });
    });
  }

  async leader(exclude) {
    for (let i = 0; i < 200; i++) {
      for (const node of this.nodes) {
        if (!node.child || node.id === exclude) continue;
        const s = await this.status(node.id);
        if (s && s.isLeader) return { id: node.id, term: s.term };
      }
      await sleep(100);
    }
    throw new Error('no leader\n' + this.logs());
  }

  async waitHealthy() {
    for (let i = 0; i < 300; i++) {
      const all = await Promise.all(this.nodes.filter((n) => n.child).map((n) => this.status(n.id)));
      if (all.every((s) => s && s.leaderId)) return;
      await sleep(100);
    }
    throw new Error('the cluster did not come up\n' + this.logs());
  }

  // The CLI as an operator runs it: every node, the admin's token, the CA.
  async cli(...args) {
    const env = {
      ...process.env,
      VTASK_ENDPOINTS: this.nodes.map((n) => `127.0.0.1:${n.grpc}`).join(','),
      VTASK_TOKEN: this.tokens.admin,
      VTASK_CA: this.ca,
    };
    const { stdout } = await run(path.join(bin, 'vtask'), args, { env });
    return stdout.trim();
  }

  url(id, rest) { return `https://127.0.0.1:${this.node(id).http}/ui${rest || ''}`; }

  logs() {
    return this.nodes.map((n) => {
      const text = fs.existsSync(path.join(this.dir, `node-${n.id}.log`)) ? fs.readFileSync(path.join(this.dir, `node-${n.id}.log`), 'utf8') : '';
      return `--- node ${n.id} ---\n` + text.split('\n').slice(-15).join('\n');
    }).join('\n');
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// The browser

const cluster = new Cluster();
let browser;
let admin;     // the admin's page
let pageNode;  // the node the admin's page is served by (a follower at the start)
let key;       // the task the CLI made
const delays = [];
const sinceInvoked = [];

async function shot(page, name) {
  fs.mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: path.join(shots, name + '.png'), fullPage: true });
}

// Script errors and Content-Security-Policy violations of every page.
const pageErrors = [];
function watchErrors(page) {
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error' && /Content.Security.Policy/i.test(m.text())) pageErrors.push(m.text()); });
  return page;
}

async function signIn(context, nodeId, token) {
  const page = watchErrors(await context.newPage());
  await page.goto(cluster.url(nodeId));
  await page.fill('#token', token);
  await page.click('#login button[type=submit]');
  return page;
}

// The row of `key` on the tasks page, and its status cell.
const row = (k) => `#task-rows tr[data-key="${k}"]`;
const progressOf = (k, v) => `${row(k)} .state[data-progress="${v}"]`;

before(async () => {
  await cluster.start();
  const spkis = [1, 2, 3].map((id) => spki(path.join(cluster.dir, `certs/node-${id}.pem`))).join(',');
  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
      `--ignore-certificate-errors-spki-list=${spkis}`],
  });
});

after(async () => {
  if (browser) await browser.close();
  cluster.stopAll();
  if (delays.length) {
    const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)].toFixed(1);
    console.log(`progress → bar delays (ms, from \`vtask progress\` returning to the bar showing the value): ${delays.map((d) => d.toFixed(1)).join(', ')}; median ${median(delays)}, max ${Math.max(...delays).toFixed(1)} (negative: the bar moved before the CLI had exited)`);
    console.log(`from starting \`vtask progress\` to the bar: median ${median(sinceInvoked)}, max ${Math.max(...sinceInvoked).toFixed(1)} ms`);
  }
  console.log(`screenshots in ${shots}`);
});

test('plain HTTP goes to TLS; the page asks for a token and keeps it from scripts and URLs', async () => {
  const leader = await cluster.leader();
  pageNode = cluster.nodes.find((n) => n.id !== leader.id).id;
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
  const page = watchErrors(await context.newPage());
  // The probes stay plain; the page is sent to https on the same port.
  await page.goto(`http://127.0.0.1:${cluster.node(pageNode).http}/ui`);
  assert.ok(page.url().startsWith('https://'), page.url());
  await page.waitForSelector('#login');
  await shot(page, 'login');
  await page.fill('#token', 'not-a-token');
  await page.click('#login button[type=submit]');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('not known'));
  await page.fill('#token', cluster.tokens.admin);
  await page.click('#login button[type=submit]');
  await page.waitForSelector('#tasks');
  assert.ok(!page.url().includes(cluster.tokens.admin));
  const visible = await page.evaluate(() => document.cookie + JSON.stringify(sessionStorage) + JSON.stringify(localStorage));
  assert.ok(!visible.includes(cluster.tokens.admin), 'the token is readable by scripts');
  const cookie = (await context.cookies()).find((c) => c.name === 'vtask_token');
  assert.ok(cookie && cookie.httpOnly && cookie.secure && cookie.sameSite === 'Strict', JSON.stringify(cookie));
  await page.waitForSelector('#live.on');
  admin = page;
});

test('the list shows a task the CLI creates, live, with the Recent Tasks columns', async () => {
  await admin.evaluate(() => { window.__noReload = true; });
  key = await cluster.cli('create', '--type-id', 'com.example.backup', '--entity', 'VirtualMachine:vm-42', '--cancelable', '-o', 'key');
  await admin.waitForSelector(row(key), { timeout: 5000 });
  const cells = await admin.$$eval(`${row(key)} td`, (tds) => tds.map((td) => td.textContent));
  assert.match(cells[0], /com\.example\.backup/);
  assert.match(cells[1], /VirtualMachine:vm-42/);
  assert.match(cells[2], /queued/);
  assert.equal(cells[4], 'admin');
  assert.equal(cells[8], `node ${pageNode}`);
  assert.equal(await admin.evaluate(() => window.__noReload), true, 'the page was reloaded');
});

test('the progress bar moves when the CLI updates it, without a reload, within a second', async () => {
  await cluster.cli('start', key);
  await admin.waitForSelector(`${row(key)} .state[data-state="running"]`);
  // The page notes when its bar first shows each value (its clock and ours
  // are this machine's wall clock).
  await admin.evaluate((k) => {
    window.__seen = {};
    const look = () => {
      const cell = document.querySelector(`#task-rows tr[data-key="${k}"] .state`);
      const v = cell && cell.dataset.progress;
      if (v && !(v in window.__seen)) window.__seen[v] = performance.timeOrigin + performance.now();
    };
    new MutationObserver(look).observe(document.querySelector('#task-rows'), { subtree: true, childList: true, attributes: true });
  }, key);
  for (const value of [10, 25, 40, 55, 70, 85]) {
    const invoked = now();
    await cluster.cli('progress', key, String(value));
    const returned = now();
    await admin.waitForSelector(progressOf(key, value), { timeout: 5000 });
    const seen = await admin.evaluate((v) => window.__seen[v], String(value));
    delays.push(seen - returned);
    sinceInvoked.push(seen - invoked);
    const width = await admin.$eval(`${row(key)} .bar > span`, (s) => s.style.width);
    assert.equal(width, `${value}%`);
  }
  console.log(`progress → bar (ms): ${delays.map((d) => d.toFixed(1)).join(' ')} after \`vtask progress\` returned; ${sinceInvoked.map((d) => d.toFixed(1)).join(' ')} after it was started (process start, TLS, Raft commit included)`);
  assert.ok(Math.max(...delays) < 1000, `a progress change took ${Math.max(...delays)} ms to show`);
  assert.equal(await admin.evaluate(() => window.__noReload), true, 'the page was reloaded');
  await shot(admin, 'tasks');
});

function historyFromCli(text) {
  return text.split('\n').filter(Boolean).map((line) => {
    const c = JSON.parse(line);
    return [String(c.revision), c.time, c.method, c.actor || '(vtask)', String(c.term), String(c.index)];
  });
}

async function historyOnPage(page) {
  return page.$$eval('#history tbody tr', (trs) => trs.map((tr) =>
    ['rev', 'time', 'method', 'actor', 'term', 'index'].map((c) => tr.querySelector('.' + c).textContent)));
}

test('the task page shows every field and the history `vtask history` shows, live', async () => {
  await admin.click(`${row(key)} a.task-link`);
  await admin.waitForSelector('#task-fields');
  const field = (name) => admin.$eval(`#task-fields dd[data-field="${name}"]`, (dd) => dd.textContent);
  assert.equal(await field('key'), key);
  assert.equal(await field('entity'), 'VirtualMachine:vm-42');
  assert.equal(await field('progress'), '85%');
  assert.equal(await field('cancelable'), 'true');
  for (const name of ['descriptionId', 'state', 'reason', 'queueTime', 'startTime', 'completeTime', 'eventChainId', 'activationId']) {
    assert.ok(await admin.$(`#task-fields dd[data-field="${name}"]`), `no ${name}`);
  }
  assert.deepEqual(await historyOnPage(admin), historyFromCli(await cluster.cli('history', key, '-o', 'json')));
  // A change while the page is open: the fields and the history follow.
  await cluster.cli('describe', key, '--key', 'com.example.backup.copying', '--message', 'Copying disks');
  await admin.waitForFunction(() => document.querySelector('#task-fields dd[data-field="description"]').textContent.includes('Copying disks'));
  await admin.waitForFunction(() => [...document.querySelectorAll('#history .method')].some((td) => td.textContent === 'SetTaskDescription'));
  assert.deepEqual(await historyOnPage(admin), historyFromCli(await cluster.cli('history', key, '-o', 'json')));
  await shot(admin, 'task');
});

test('a leader SIGKILL while the page is open: it keeps updating through its node; the cluster page shows leader changes live', async () => {
  const old = await cluster.leader();
  // The page on a follower (leadership may have moved since the page was
  // opened; the session cookie is this host's, so any node's page is signed in).
  if (old.id === pageNode) pageNode = cluster.nodes.find((n) => n.id !== old.id).id;
  await admin.goto(cluster.url(pageNode, '#/tasks'));
  await admin.waitForSelector(progressOf(key, 85));
  await admin.waitForSelector('#live.on');
  await admin.evaluate(() => { window.__noReload = true; });
  const killed = now();
  cluster.kill(old.id);
  await cluster.cli('progress', key, '90');
  await admin.waitForSelector(progressOf(key, 90), { timeout: 20000 });
  console.log(`leader node ${old.id} killed: the bar showed the next update ${(now() - killed).toFixed(0)} ms later (election included)`);
  assert.equal(await admin.evaluate(() => window.__noReload), true, 'the page was reloaded');
  cluster.spawn(old.id);
  await cluster.waitHealthy();

  // The cluster page, on a node that is not the leader now (the session
  // cookie is this host's, so that node's page is signed in too).
  const leader = await cluster.leader();
  const watcher = cluster.nodes.find((n) => n.id !== leader.id).id;
  const page = watchErrors(await admin.context().newPage());
  await page.goto(cluster.url(watcher, '#/cluster'));
  await page.waitForSelector(`#members tr[data-node="${leader.id}"][data-role="leader"]`);
  await page.waitForSelector('#charts [data-histogram="vtask_apply_seconds"] svg');
  await page.waitForFunction(() => /^[0-9a-f]{16,}/.test(document.querySelector('#digest').textContent));
  cluster.kill(leader.id);
  const next = await cluster.leader(leader.id);
  await page.waitForSelector(`#leader-events li[data-term="${next.term}"][data-leader="${next.id}"]`, { timeout: 10000 });
  await page.waitForSelector(`#members tr[data-node="${next.id}"][data-role="leader"]`, { timeout: 5000 });
  await shot(page, 'cluster');
  await page.close();
  cluster.spawn(leader.id);
  await cluster.waitHealthy();
});

test('the page\'s own node dies: it says it reconnects, then resumes and misses nothing', async () => {
  await admin.goto(cluster.url(pageNode, '#/tasks'));
  await admin.waitForSelector(progressOf(key, 90));
  await admin.waitForSelector('#live.on');
  await admin.evaluate(() => { window.__noReload = true; });
  cluster.kill(pageNode);
  await admin.waitForSelector('#live.reconnecting', { timeout: 10000 });
  assert.match(await admin.textContent('#banner'), /reconnecting/);
  await shot(admin, 'reconnecting');
  // Changes made while it is down, through the other nodes.
  await cluster.cli('progress', key, '93');
  await cluster.cli('progress', key, '96');
  const restarted = now();
  cluster.spawn(pageNode);
  await admin.waitForSelector(progressOf(key, 96), { timeout: 30000 });
  await admin.waitForSelector('#live.on', { timeout: 10000 });
  console.log(`node ${pageNode} restarted: the page was live again with the changes it missed ${(now() - restarted).toFixed(0)} ms later`);
  assert.equal(await admin.evaluate(() => window.__noReload), true, 'the page was reloaded');
  await cluster.waitHealthy();
});

test('Cancel: absent for a reporter, working for the admin', async () => {
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
  const reporter = await signIn(context, pageNode, cluster.tokens.reporter);
  await reporter.waitForSelector(row(key));
  assert.equal(await reporter.$$eval(`${row(key)} button.cancel`, (b) => b.length), 0);
  await reporter.goto(cluster.url(pageNode, `#/task/${key}`));
  await reporter.waitForSelector('#task-fields');
  assert.equal(await reporter.$$eval('#task-actions button', (b) => b.length), 0);
  await shot(reporter, 'reporter-task');
  // The refusal is the server's, whatever a page shows: the reporter's own
  // request (with the CSRF header) gets the model's NoPermission.
  const refused = await reporter.evaluate(async (k) => {
    const r = await fetch(`/ui/api/tasks/${k}/cancel`, { method: 'POST', headers: { 'x-vtask-csrf': '1' } });
    return [r.status, (await r.json()).fault._typeName];
  }, key);
  assert.deepEqual(refused, [403, 'NoPermission']);
  await context.close();

  await admin.goto(cluster.url(pageNode, '#/tasks'));
  await admin.waitForSelector(`${row(key)} button.cancel`);
  // Without the header, even the admin's own page is refused (CSRF).
  const forged = await admin.evaluate(async (k) => (await fetch(`/ui/api/tasks/${k}/cancel`, { method: 'POST' })).status, key);
  assert.equal(forged, 403);
  await admin.click(`${row(key)} button.cancel`);
  await admin.waitForFunction((k) => document.querySelector(`#task-rows tr[data-key="${k}"] .state`).textContent.includes('cancel requested'), key);
  assert.equal(await admin.$$eval(`${row(key)} button.cancel`, (b) => b.length), 0);
  const info = JSON.parse(await cluster.cli('get', key, '-o', 'json'));
  assert.equal(info.cancelled, true);
  // The owner ends it; the page shows the fault.
  await cluster.cli('set-state', key, 'error', '--fault', 'RequestCanceled:stopped by the user');
  await admin.waitForSelector(`${row(key)} .state[data-state="error"]`);
  await admin.goto(cluster.url(pageNode, `#/task/${key}`));
  await admin.waitForSelector('#task-fault');
  assert.match(await admin.textContent('#task-fault'), /RequestCanceled/);
  await shot(admin, 'task-error');
});

test('filters and pages: state, entity and initiator, a page at a time', async () => {
  const keys = [];
  for (let i = 0; i < 4; i++) {
    keys.push(await cluster.cli('create', '--type-id', 'com.example.scan', '--entity', `HostSystem:host-${i % 2}`, '-o', 'key'));
  }
  const pageKeys = () => admin.$$eval('#task-rows tr', (trs) => trs.map((tr) => tr.dataset.key));
  await admin.goto(cluster.url(pageNode, '#/tasks?entity=HostSystem:host-1'));
  await admin.waitForSelector(row(keys[3]));
  assert.deepEqual(await pageKeys(), [keys[1], keys[3]]);
  await admin.goto(cluster.url(pageNode, '#/tasks?state=error'));
  await admin.waitForSelector(row(key));
  assert.deepEqual(await pageKeys(), [key]);
  await admin.goto(cluster.url(pageNode, '#/tasks?initiator=admin&state=queued'));
  await admin.waitForSelector(row(keys[3]));
  assert.deepEqual(await pageKeys(), keys);
  await admin.goto(cluster.url(pageNode, '#/tasks?initiator=somebody-else'));
  await admin.waitForSelector('#page-range');
  assert.deepEqual(await pageKeys(), []);
  // Pages of 2 in key order, through ListTasks' page tokens.
  await admin.goto(cluster.url(pageNode, '#/tasks?pageSize=2'));
  await admin.waitForSelector(row(keys[0]));
  assert.deepEqual(await pageKeys(), [key, keys[0]]);
  await admin.click('#next-page');
  await admin.waitForSelector(row(keys[2]));
  assert.deepEqual(await pageKeys(), [keys[1], keys[2]]);
  await admin.click('#next-page');
  await admin.waitForSelector(row(keys[3]));
  assert.deepEqual(await pageKeys(), [keys[3]]);
  assert.equal(await admin.$eval('#next-page', (b) => b.disabled), true);
  // A task created now belongs on this last page: it appears live.
  const newest = await cluster.cli('create', '--type-id', 'com.example.scan', '--entity', 'HostSystem:host-9', '-o', 'key');
  await admin.waitForSelector(row(newest));
  await admin.click('#prev-page');
  await admin.waitForSelector(row(keys[1]));
  assert.deepEqual(await pageKeys(), [keys[1], keys[2]]);
  await shot(admin, 'tasks-paged');
});

test('a caller without System.View sees nothing', async () => {
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
  const outsider = await signIn(context, pageNode, cluster.tokens.outsider);
  await outsider.waitForSelector('#refused');
  assert.match(await outsider.textContent('#refused'), /System\.View/);
  assert.equal(await outsider.$$eval('#task-rows tr', (trs) => trs.length), 0);
  await shot(outsider, 'no-system-view');
  await context.close();
});

test('no page had a script error or a Content-Security-Policy violation', () => {
  assert.deepEqual(pageErrors, []);
});
