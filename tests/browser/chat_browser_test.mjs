// The chat in a real browser: Debian's Chromium, driven by playwright-core.
// Two browser contexts join one room from the lobby, chat both ways, and a
// message that looks like HTML shows as text. Prints "N passed, N failed".
// Usage: node chat_browser_test.mjs http://127.0.0.1:PORT [screenshot.png]
import { chromium } from 'playwright-core';

const [base, screenshot] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else { failed++; console.log(`FAIL: ${name} ${detail}`); }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  // Without the networking flags Chromium tries to reach Google's hosts.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const a = await (await browser.newContext()).newPage();
  const b = await (await browser.newContext()).newPage();
  let alerted = false;
  for (const p of [a, b]) p.on('dialog', async d => { alerted = true; await d.dismiss(); });

  await a.goto(base + '/chat/');
  check('lobby has the room name input', await a.isVisible('#room-name-input'));
  await a.fill('#room-name-input', 'lobby');
  await a.click('#room-name-submit');
  await a.waitForURL('**/chat/lobby/', { timeout: 5000 });
  check('submit goes to the room page', a.url().endsWith('/chat/lobby/'), a.url());
  await b.goto(base + '/chat/lobby/');

  // Wait until both sockets are open: a probe from each comes back to itself.
  const log = p => p.inputValue('#chat-log');
  const waitLog = (p, text) =>
    p.waitForFunction(t => document.querySelector('#chat-log').value.includes(t), text, { timeout: 5000 })
     .then(() => true, () => false);
  for (const [p, name] of [[a, 'probe-a'], [b, 'probe-b']]) {
    await p.fill('#chat-message-input', name);
    await p.click('#chat-message-submit');
    check(`${name} echoes to its sender`, await waitLog(p, name));
  }

  const html = 'hello <img src=x onerror=alert(1)>';
  await a.fill('#chat-message-input', html);
  await a.click('#chat-message-submit');
  check('B gets A\'s message', await waitLog(b, html));
  await b.fill('#chat-message-input', 'hi from B');
  await b.press('#chat-message-input', 'Enter');
  check('A gets B\'s message (sent with Enter)', await waitLog(a, 'hi from B'));
  check('the input is cleared after sending', (await b.inputValue('#chat-message-input')) === '');
  check('HTML in a message is shown as text', (await log(b)).includes(html));
  check('no script ran from a message', !alerted);
  check('no <img> element was created', (await b.$$('img')).length === 0);
  if (screenshot) await b.screenshot({ path: screenshot });
} catch (e) {
  failed++;
  console.log('FAIL: ' + e.message);
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
