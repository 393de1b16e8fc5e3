// Push latency: from a credit to the browser's DOM update, over the live socket.
//
//   node end2end/bench/push-latency.mjs [base URL] [credits]
//
// Signs a new customer up, opens their account page in headless Chromium,
// then pays in 1.00 at a time through the deposit server function (as a
// second browser tab would) and waits for the page's balance to change,
// which only the live socket can make happen. For each credit it records,
// on the machine's one clock, the time from sending the deposit to the DOM
// update (an upper bound of commit to DOM: it includes the deposit's own
// decision, commit and answer) and from the deposit's answer to the DOM
// update. Prints exact percentiles of all the samples.
import { chromium } from '@playwright/test';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

const base = process.argv[2] ?? 'http://127.0.0.1:3000';
const credits = Number(process.argv[3] ?? 1000);
const now = () => performance.timeOrigin + performance.now();

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic'],
});
const context = await browser.newContext({ baseURL: base });
const origin = { Origin: base };
const username = `push_${Date.now().toString(36)}`;
const signup = await context.request.post('/api/sign_up', {
  headers: origin,
  form: { username, display_name: 'Push bench', password: `pw-${username}-long`, form_key: randomUUID() },
});
if (!signup.ok()) throw new Error(`sign-up failed: ${signup.status()}`);

let account;
for (let tries = 0; !account && tries < 100; tries++) {
  const overview = await (await context.request.get('/accounts')).text();
  account = overview.match(/href="\/accounts\/(\d+)"/)?.[1];
  if (!account) await new Promise((resolve) => setTimeout(resolve, 100));
}
if (!account) throw new Error('the account was not opened');

const page = await context.newPage();
const socket = page.waitForEvent('websocket');
await page.goto(`/accounts/${account}`);
await page.locator('main[data-hydrated="true"]').waitFor({ state: 'attached' });
await socket;
await page.evaluate(() => {
  window.seen = [];
  const balance = document.querySelector('[data-testid="balance"]');
  new MutationObserver(() => window.seen.push([performance.timeOrigin + performance.now(), balance.textContent]))
    .observe(balance, { subtree: true, childList: true, characterData: true });
});

const fromSend = [];
const fromAnswer = [];
for (let credit = 1; credit <= credits; credit++) {
  const expected = `£${credit.toLocaleString('en-GB')}.00`;
  const sent = now();
  const answer = await context.request.post('/api/deposit', {
    headers: origin,
    form: { account_id: account, amount: '1.00', note: '', form_key: randomUUID() },
  });
  const answered = now();
  if (!answer.ok()) throw new Error(`deposit ${credit} failed: ${answer.status()}`);
  const shownAt = await page.waitForFunction(
    (text) => window.seen.find(([, shown]) => shown === text)?.[0],
    expected,
    { timeout: 10_000, polling: 'raf' },
  );
  const shown = await shownAt.jsonValue();
  fromSend.push(shown - sent);
  fromAnswer.push(shown - answered);
}
await browser.close();

const percentile = (samples, q) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
};
const describe = (name, samples) =>
  `${name}: p50 ${percentile(samples, 0.5).toFixed(1)} ms, p99 ${percentile(samples, 0.99).toFixed(1)} ms, ` +
  `max ${Math.max(...samples).toFixed(1)} ms`;
console.log(`${credits} credits`);
console.log(describe('deposit sent -> DOM updated', fromSend));
console.log(describe('deposit answered -> DOM updated', fromAnswer));
