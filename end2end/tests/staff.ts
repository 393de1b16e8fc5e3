import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { hydrated } from './bank';

// What the staff console's tests share: the demo staff log-in, and SQL on
// the bank's database (to make the reporting service fail on purpose).

/** The staff log-in the server made at its first start (demo-logins.json). */
export function staffLogin(): { username: string; password: string } {
  const dir = process.env.LEDGERLINE_STATE_DIR ?? join(__dirname, '..', '..', 'target', 'ledgerline');
  const logins = JSON.parse(readFileSync(join(dir, 'demo-logins.json'), 'utf8'));
  return logins.staff;
}

/** The staff member's session, logged in once for all the staff tests: the
 * users service limits log-ins per client address, and every test's
 * browser comes from the same one. */
let staffSession: Awaited<ReturnType<BrowserContext['storageState']>> | undefined;

/** A browser context with the staff member logged in. */
export async function staffPage(browser: Browser): Promise<Page> {
  if (staffSession) {
    return (await browser.newContext({ storageState: staffSession })).newPage();
  }
  const { username, password } = staffLogin();
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto('/login?next=/staff/events');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  // The path itself: `/login?next=/staff/events` must not count as arrived.
  await expect(page).toHaveURL((url) => url.pathname === '/staff/events');
  staffSession = await context.storageState();
  return page;
}

/** Runs SQL on the bank's database (the server's DATABASE_URL). */
export function sql(statement: string): string {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL must name the database the server under test uses');
  return execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qAtc', statement], { encoding: 'utf8' }).trim();
}

/** The UTC time `seconds` before now, as the console reads it. */
export function utcSecondsAgo(seconds: number): string {
  return new Date(Date.now() - seconds * 1000).toISOString().slice(0, 19).replace('T', ' ');
}
