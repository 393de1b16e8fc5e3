import AxeBuilder from '@axe-core/playwright';
import { expect, test } from '@playwright/test';
import { accountNumbers, deposit, hydrated, openAccount, signUp } from './bank';

test('points earned by a transfer are redeemed as cashback, with precise refusals', async ({ browser }) => {
  test.setTimeout(60_000);
  const gil = await signUp(browser, 'gil');
  const hal = await signUp(browser, 'hal');
  const [from] = await accountNumbers(gil.page, 1);
  const [to] = await accountNumbers(hal.page, 1);
  await openAccount(gil.page, from);
  await deposit(gil.page, '100.00', '£100.00');

  // Gil watches the overview while a transfer of £25 earns two points.
  const page = gil.page;
  await page.goto('/accounts');
  await hydrated(page);
  const card = page.getByTestId('points-card');
  await expect(card.getByTestId('points-total')).toHaveText('0 points');

  const payer = await gil.context.newPage();
  await payer.goto(`/transfer?from=${from}&to=${to}&amount=25.00&reference=Points&review=1`);
  await hydrated(payer);
  await payer.getByTestId('confirm-transfer').click();
  await expect(payer.getByTestId('transfer-status')).toHaveAttribute('data-status', 'accepted');

  // Without a reload: the points arrive after the transfer is accepted.
  await expect(card.getByTestId('points-total')).toHaveText('2 points');
  await expect(page.getByTestId('account-points')).toHaveText('2 points');
  await expect(page.getByTestId('account-balance')).toHaveText('£75.00');

  // More points than the account has: refused with what it has, nothing changes.
  const form = page.getByTestId('redeem-form');
  const points = form.getByLabel('Points to redeem');
  await expect(points).toHaveAttribute('inputmode', 'numeric');
  await points.fill('3');
  await form.getByRole('button', { name: 'Redeem as cashback' }).click();
  await expect(form.getByText('insufficient points: the account has 2')).toBeVisible();
  await expect(points).toHaveAttribute('aria-invalid', 'true');
  await expect(points).toHaveValue('3');
  expect((await new AxeBuilder({ page }).analyze()).violations.map((v) => v.id)).toEqual([]);

  await points.fill('1.5');
  await form.getByRole('button', { name: 'Redeem as cashback' }).click();
  await expect(form.getByText('enter a whole number of points, such as 250')).toBeVisible();
  await expect(card.getByTestId('points-total')).toHaveText('2 points');
  await expect(page.getByTestId('account-balance')).toHaveText('£75.00');

  // Both points, as 2p of cashback paid into the account. The field is
  // marked first: the same element must still be there afterwards, with
  // what was typed, as the form is not drawn again when the points change.
  await points.fill('2');
  await points.evaluate((input) => input.setAttribute('data-marked', 'yes'));
  await form.getByRole('button', { name: 'Redeem as cashback' }).click();
  await expect(page.getByTestId('redeemed')).toHaveText(
    `Redeemed 2 points: £0.02 paid into account ${from}.`,
  );
  await expect(page.getByTestId('account-balance')).toHaveText('£75.02');
  await expect(card.getByTestId('points-total')).toHaveText('0 points');
  await expect(points).toHaveAttribute('data-marked', 'yes');
  await expect(points).toHaveValue('2');

  await openAccount(page, from);
  await expect(page.getByTestId('balance')).toHaveText('£75.02');
  const cashback = page.getByTestId('statement-line').first();
  await expect(cashback).toContainText('Nectar cashback: 2 points');
  await expect(cashback).toContainText('+£0.02');

  // Money received earns nothing.
  await hal.page.goto('/accounts');
  await hydrated(hal.page);
  await expect(hal.page.getByTestId('account-balance')).toHaveText('£25.00');
  await expect(hal.page.getByTestId('account-points')).toHaveText('0 points');
});

test('points are redeemed without JavaScript, and fit a phone', async ({ browser }) => {
  const ivy = await signUp(browser, 'ivy');
  const jon = await signUp(browser, 'jon');
  const [from] = await accountNumbers(ivy.page, 1);
  const [to] = await accountNumbers(jon.page, 1);
  await openAccount(ivy.page, from);
  await deposit(ivy.page, '50.00', '£50.00');
  await ivy.page.goto(`/transfer?from=${from}&to=${to}&amount=10.00&review=1`);
  await hydrated(ivy.page);
  await ivy.page.getByTestId('confirm-transfer').click();
  await expect(ivy.page.getByTestId('transfer-status')).toHaveAttribute('data-status', 'accepted');

  const context = await browser.newContext({
    javaScriptEnabled: false,
    viewport: { width: 360, height: 740 },
    storageState: await ivy.context.storageState(),
  });
  const page = await context.newPage();
  // Nectar credits the point after the transfer: look again until it shows.
  await expect(async () => {
    await page.goto('/accounts');
    await expect(page.getByTestId('points-total')).toHaveText('1 point');
  }).toPass();
  expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);

  const form = page.getByTestId('redeem-form');
  await form.getByLabel('Account', { exact: true }).selectOption(String(from));
  await form.getByLabel('Points to redeem').fill('1');
  const post = page.waitForRequest((request) => request.method() === 'POST');
  await form.getByRole('button', { name: 'Redeem as cashback' }).click();
  expect((await post).resourceType()).toBe('document');
  await page.waitForLoadState();
  expect(new URL(page.url()).pathname).toBe('/accounts');
  // No live updates without JavaScript: look again until both have applied it.
  await expect(async () => {
    await page.goto('/accounts');
    await expect(page.getByTestId('account-balance')).toHaveText('£40.01');
    await expect(page.getByTestId('points-total')).toHaveText('0 points');
  }).toPass();
  await context.close();
});
