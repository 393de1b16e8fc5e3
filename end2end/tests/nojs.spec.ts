import { expect, test } from '@playwright/test';
import { accountNumbers, deposit, openAccount, signUp } from './bank';

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

test('a confirmed payment sent again, as a browser resends a form, pays once', async ({ browser }) => {
  const una = await signUp(browser, 'una');
  const vic = await signUp(browser, 'vic');
  const [from] = await accountNumbers(una.page, 1);
  const [to] = await accountNumbers(vic.page, 1);
  await openAccount(una.page, from);
  await deposit(una.page, '50.00', '£50.00');

  const context = await browser.newContext({
    javaScriptEnabled: false,
    storageState: await una.context.storageState(),
  });
  const page = await context.newPage();
  await page.goto(`/transfer?from=${from}&to=${to}&amount=20&reference=Twice&review=1`);
  const confirm = page.locator('form:has([data-testid="confirm-transfer"])');
  const fields = Object.fromEntries(
    await confirm.locator('input[type="hidden"]').evaluateAll((inputs) =>
      inputs.map((input) => [(input as HTMLInputElement).name, (input as HTMLInputElement).value]),
    ),
  );
  expect(fields.form_key).toMatch(/^[0-9a-f-]{36}$/);
  const action = (await confirm.getAttribute('action')) ?? '';
  const origin = new URL(page.url()).origin;
  for (let attempt = 0; attempt < 2; attempt++) {
    const sent = await context.request.post(action, {
      headers: { Origin: origin, Accept: 'text/html' },
      form: fields,
      maxRedirects: 0,
    });
    expect(sent.status()).toBe(302);
    expect(sent.headers()['location']).toMatch(/^\/transfers\/\d+$/);
  }
  await context.close();

  await openAccount(una.page, from);
  await expect(una.page.getByTestId('balance')).toHaveText('£30.00');
  await una.page.goto('/transfers');
  await expect(una.page.getByTestId('transfer-line')).toHaveCount(1);
});
