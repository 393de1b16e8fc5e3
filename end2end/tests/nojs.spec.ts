import { expect, test } from '@playwright/test';
import { accountNumbers, signUp } from './bank';

test('the deposit form works with JavaScript disabled', async ({ browser }) => {
  const lou = await signUp(browser, 'lou');
  const [account] = await accountNumbers(lou.page, 1);

  // The same log-in, in a browser without JavaScript.
  const context = await browser.newContext({
    javaScriptEnabled: false,
    storageState: await lou.context.storageState(),
  });
  const page = await context.newPage();
  await page.goto(`/accounts/${account}`);
  await expect(page.locator('main[data-hydrated]')).toHaveCount(0);
  await expect(page.getByTestId('balance')).toHaveText('£0.00');

  const form = page.getByTestId('deposit-form');
  await form.getByLabel('Amount to pay in (£)').fill('42.10');
  await form.getByLabel('Note (optional)').fill('Birthday money');
  const post = page.waitForRequest((request) => request.method() === 'POST');
  await form.getByRole('button', { name: 'Pay in' }).click();
  expect((await post).resourceType()).toBe('document');
  await page.waitForLoadState();

  await expect(page.getByTestId('balance')).toHaveText('£42.10');
  await expect(page.getByTestId('statement-line').first()).toContainText('Birthday money');

  // A mistake comes back as a message on the page, and changes nothing.
  await form.getByLabel('Amount to pay in (£)').fill('3.999');
  await form.getByRole('button', { name: 'Pay in' }).click();
  await page.waitForLoadState();
  await expect(page.getByText('at most 2 decimal places')).toBeVisible();
  await expect(page.getByTestId('balance')).toHaveText('£42.10');
  await context.close();
});
