// The chat in a real browser: Debian's Chromium, driven by playwright-core.
// Starts the chat server itself (so it can restart it), then: two browser
// contexts join one room from the lobby, see each other online, chat both
// ways, a message that looks like HTML shows as text, the name is kept across
// a reload with the history shown again, one closes and the other sees it
// leave, and the page reconnects by itself after the server restarts.
// Prints "N passed, N failed".
// Usage: node chat_browser_test.mjs CHAT ROUTING OUT_DIR
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { openSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [chatBinary, routing, out] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else { failed++; console.log(`FAIL: ${name} ${detail}`); }
}

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  s.on('error', reject);
});

// The server, started and stopped by its PID.
let server = null;
const log = openSync(`${out}/chat-browser-server.log`, 'a');
async function startServer(port) {
  server = spawn(chatBinary, ['--routing', routing, '--bind', '127.0.0.1', '--port', String(port), '--threads', '2'],
                 { stdio: ['ignore', log, log] });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/chat/`);
      if (r.ok) return;
    } catch (e) { /* not listening yet */ }
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error('the chat server did not start: see chat-browser-server.log');
}
async function stopServer() {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise(r => server.once('exit', r));
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 10000);
  await exited;
  clearTimeout(timer);
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
await startServer(port);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Without the networking flags Chromium tries to reach Google's hosts.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const T = { timeout: 8000 };
const passes = p => p.then(() => true, () => false);
try {
  const contextA = await browser.newContext({ viewport: { width: 1000, height: 600 } });
  const contextB = await browser.newContext();
  const a = await contextA.newPage();
  const b = await contextB.newPage();
  let alerted = false;
  for (const p of [a, b]) p.on('dialog', async d => { alerted = true; await d.dismiss(); });

  const state = p => p.getAttribute('#connection-state', 'data-state');
  const waitOnline = (p, timeout = 8000) =>
    passes(p.waitForSelector('#connection-state[data-state=online]', { timeout }));
  const logHas = (p, text) => passes(p.waitForFunction(
    t => [...document.querySelectorAll('#chat-log .entry')].some(e => e.textContent.includes(t)), text, T));
  const onlineNames = p => p.$$eval('#online-list li', lis => lis.map(li => li.textContent));
  const waitOnlineList = (p, expected) => passes(p.waitForFunction(
    e => JSON.stringify([...document.querySelectorAll('#online-list li')].map(li => li.textContent)) === JSON.stringify(e),
    expected, T));
  const say = async (p, text, withEnter = false) => {
    await p.fill('#chat-message-input', text);
    if (withEnter) await p.press('#chat-message-input', 'Enter');
    else await p.click('#chat-message-submit');
  };

  // The lobby: a form to join a room; the room then shows up with its count.
  await a.goto(base + '/chat/');
  check('lobby has the room name input', await a.isVisible('#room-name-input'));
  await a.fill('#room-name-input', 'bad room');
  await a.click('#room-name-submit');
  check('a bad room name is refused in the lobby', (await a.textContent('#room-name-error')).includes('letters'));
  await a.fill('#room-name-input', 'lobby');
  await a.click('#room-name-submit');
  await a.waitForURL('**/chat/lobby/', T);
  check('submit goes to the room page', a.url().endsWith('/chat/lobby/'), a.url());

  // The name is asked once, checked, and kept in the browser.
  check('A is asked for a name', await a.isVisible('#name-dialog'));
  await a.fill('#name-input', '<b>');
  await a.click('#name-submit');
  check('a bad name is refused', (await a.textContent('#name-error')).length > 0);
  await a.fill('#name-input', 'Alice');
  await a.click('#name-submit');
  check('A is online', await waitOnline(a));
  await b.goto(base + '/chat/lobby/');
  await b.fill('#name-input', 'Bob');
  await b.press('#name-input', 'Enter');
  check('B is online', await waitOnline(b));

  // Presence: each sees both.
  check('A sees Alice and Bob online', await waitOnlineList(a, ['Alice (you)', 'Bob']), JSON.stringify(await onlineNames(a)));
  check('B sees Alice and Bob online', await waitOnlineList(b, ['Alice', 'Bob (you)']), JSON.stringify(await onlineNames(b)));
  check('A is told that Bob joined', await logHas(a, 'Bob joined'));

  const lobby = await contextA.newPage();
  await lobby.goto(base + '/chat/');
  check('the lobby lists the room with 2 people online', await passes(lobby.waitForFunction(
    () => [...document.querySelectorAll('#room-list li')].some(li => li.dataset.room === 'lobby' && li.textContent.includes('2 people')), null, T)));
  await lobby.close();

  // Messages both ways, with the sender's name.
  await say(a, 'hello from A');
  check('B gets A\'s message', await logHas(b, 'hello from A'));
  check('B sees it comes from Alice', await passes(b.waitForFunction(
    () => [...document.querySelectorAll('#chat-log .message')].some(e =>
      e.querySelector('.name').textContent === 'Alice' && e.querySelector('.text').textContent === 'hello from A'
      && /\d/.test(e.querySelector('.time').textContent)), null, T)));
  await say(b, 'hi from B', true);
  check('A gets B\'s message (sent with Enter)', await logHas(a, 'hi from B'));
  check('the input is cleared after sending', (await b.inputValue('#chat-message-input')) === '');

  // HTML injection: shown as text, nothing runs, no element is made.
  const html = 'hello <img src=x onerror=alert(1)>';
  await say(a, html);
  check('B gets the HTML-looking message', await logHas(b, html));
  const texts = await b.$$eval('#chat-log .text', els => els.map(e => e.textContent));
  check('HTML in a message is shown as text', texts.includes(html), JSON.stringify(texts));
  check('no script ran from a message', !alerted);
  check('no <img> element was created', (await b.$$('img')).length === 0);

  // A reload keeps the name and shows the history again.
  await b.reload();
  check('B is back online after a reload without being asked its name',
        (await waitOnline(b)) && !(await b.isVisible('#name-dialog')));
  check('B sees the history after the reload', await logHas(b, 'hello from A') && await logHas(b, 'hi from B'));

  if (out) await a.screenshot({ path: `${out}/chat-room.png` });

  // B closes its tab: A sees Bob leave.
  const bobLeft = () => a.$$eval('#chat-log .notice', els => els.filter(e => e.textContent.includes('Bob left')).length);
  const leftBefore = await bobLeft();  // the reload may have shown one already
  await contextB.close();
  check('A is told that Bob left', await passes(a.waitForFunction(
    n => [...document.querySelectorAll('#chat-log .notice')].filter(e => e.textContent.includes('Bob left')).length > n,
    leftBefore, T)));
  check('Bob is gone from A\'s online list', await waitOnlineList(a, ['Alice (you)']), JSON.stringify(await onlineNames(a)));

  // The server restarts: A shows it is offline, then reconnects by itself.
  const before = await a.getAttribute('body', 'data-server');
  await stopServer();
  check('A shows it is offline while the server is down', await passes(a.waitForFunction(
    () => document.querySelector('#connection-state').dataset.state !== 'online', null, T)));
  check('the state says it is reconnecting', /reconnect/.test(await a.textContent('#connection-state')));
  await startServer(port);
  check('A reconnects after the server restarts', await waitOnline(a, 15000), await state(a));
  check('the same server address answered', (await a.getAttribute('body', 'data-server')) === before);
  check('the log from before the restart is still on the page', await logHas(a, 'hi from B'));
  await say(a, 'after the restart');
  check('A can chat after reconnecting', await logHas(a, 'after the restart'));
  check('no script ran at any point', !alerted);
} catch (e) {
  failed++;
  console.log('FAIL: ' + e.message);
} finally {
  await browser.close();
  await stopServer();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
