import { expect, type Browser, type BrowserContext, type Page } from '@playwright/test';

// What the banking tests share: new customers, their accounts, money in.

export type Customer = { username: string; password: string; context: BrowserContext; page: Page };

let counter = 0;

/** A username no other test or run has used: 3 to 32 of a-z, 0-9 and _. */
export function uniqueUsername(prefix: string): string {
  counter += 1;
  const stamp = Date.now().toString(36);
  const random = Math.floor(Math.random() * 36 ** 4).toString(36);
  return `${prefix}_${stamp}${random}${counter}`.slice(0, 32);
}

/** Waits until the WASM has taken over the page. */
export async function hydrated(page: Page) {
  await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
}

/** Signs a new customer up in a browser context of their own. */
export async function signUp(browser: Browser, prefix: string): Promise<Customer> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const username = uniqueUsername(prefix);
  const password = `pw-${username}-long`;
  await page.goto('/signup');
  await hydrated(page);
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Your name').fill(`Test ${prefix}`);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Open my account' }).click();
  await expect(page).toHaveURL(/\/accounts$/);
  return { username, password, context, page };
}

/** The customer's account numbers, once their accounts are open. */
export async function accountNumbers(page: Page, count: number): Promise<number[]> {
  await expect(page.getByTestId('account')).toHaveCount(count);
  const names = await page.getByTestId('account').locator('.account-name').allTextContents();
  return names.map((name) => Number(name.replace(/\D/g, '')));
}

/** Opens the account page and waits for it to be interactive. */
export async function openAccount(page: Page, accountId: number) {
  await page.goto(`/accounts/${accountId}`);
  await hydrated(page);
  await expect(page.getByRole('heading', { name: `Account ${accountId}` })).toBeVisible();
}

/** Pays `amount` into the account whose page is open. */
export async function deposit(page: Page, amount: string, expectedBalance: string) {
  const form = page.getByTestId('deposit-form');
  await form.getByLabel('Amount to pay in (£)').fill(amount);
  await form.getByRole('button', { name: 'Pay in' }).click();
  await expect(page.getByTestId('balance')).toHaveText(expectedBalance);
}
