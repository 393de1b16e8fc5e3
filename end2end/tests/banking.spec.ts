import { expect, test } from '@playwright/test';
import { accountNumbers, deposit, hydrated, openAccount, signUp } from './bank';

test.describe.configure({ mode: 'serial' });

test('two customers sign up, get accounts, and pay money in', async ({ browser }) => {
  const ann = await signUp(browser, 'ann');
  const ben = await signUp(browser, 'ben');
  const [annAccount] = await accountNumbers(ann.page, 1);
  const [benAccount] = await accountNumbers(ben.page, 1);
  expect(annAccount).not.toEqual(benAccount);

  // Another account: pending at first, then open without a reload.
  await ann.page.getByRole('button', { name: 'Open an account' }).click();
  const both = await accountNumbers(ann.page, 2);
  expect(both).toContain(annAccount);

  await openAccount(ann.page, annAccount);
  await deposit(ann.page, '125.50', '£125.50');
  await expect(ann.page.getByTestId('statement-line').first()).toContainText('+£125.50');
});

test('a withdrawal above the balance is refused with the balance, and changes nothing', async ({ browser }) => {
  const cat = await signUp(browser, 'cat');
  const [account] = await accountNumbers(cat.page, 1);
  await openAccount(cat.page, account);
  await deposit(cat.page, '12.50', '£12.50');

  const form = cat.page.getByTestId('withdraw-form');
  await form.getByLabel('Amount to take out (£)').fill('20');
  await form.getByRole('button', { name: 'Take out' }).click();
  await expect(form.getByText('insufficient funds: available £12.50')).toBeVisible();
  await expect(cat.page.getByTestId('balance')).toHaveText('£12.50');
  await cat.page.reload();
  await expect(cat.page.getByTestId('balance')).toHaveText('£12.50');
  await expect(cat.page.getByTestId('statement-line')).toHaveCount(1);
});

test('amounts are checked in the browser with precise messages', async ({ browser }) => {
  const dee = await signUp(browser, 'dee');
  const [account] = await accountNumbers(dee.page, 1);
  await openAccount(dee.page, account);
  const amount = dee.page.getByTestId('deposit-form').getByLabel('Amount to pay in (£)');
  await amount.fill('0');
  await amount.blur();
  await expect(dee.page.getByText('enter an amount greater than £0')).toBeVisible();
  await amount.fill('1.234');
  await amount.blur();
  await expect(dee.page.getByText('at most 2 decimal places')).toBeVisible();
  await expect(amount).toHaveAttribute('inputmode', 'decimal');
});

test('a transfer reaches the receiver without a reload; a double click pays once', async ({ browser }) => {
  const eve = await signUp(browser, 'eve');
  const fay = await signUp(browser, 'fay');
  const [eveAccount] = await accountNumbers(eve.page, 1);
  const [fayAccount] = await accountNumbers(fay.page, 1);
  await openAccount(eve.page, eveAccount);
  await deposit(eve.page, '100.00', '£100.00');

  // Fay watches her account while Eve pays.
  await openAccount(fay.page, fayAccount);
  await expect(fay.page.getByTestId('balance')).toHaveText('£0.00');

  await eve.page.goto('/transfer');
  await hydrated(eve.page);
  await eve.page.getByLabel('Account number to pay').fill(String(fayAccount));
  await eve.page.getByLabel('Amount (£)').fill('30');
  await eve.page.getByLabel('Reference (optional)').fill('Dinner');
  await eve.page.getByRole('button', { name: 'Review' }).click();
  await expect(eve.page.getByTestId('review-amount')).toHaveText('£30.00');
  await expect(eve.page.getByTestId('review')).toContainText(`Account ${fayAccount}`);
  await expect(eve.page.getByTestId('review')).toContainText('Dinner');

  await eve.page.getByTestId('confirm-transfer').dblclick();
  await expect(eve.page).toHaveURL(/\/transfers\/\d+$/);
  await expect(eve.page.getByTestId('transfer-status')).toHaveAttribute('data-status', 'accepted');

  await expect(fay.page.getByTestId('balance')).toHaveText('£30.00', { timeout: 2_000 });
  await expect(fay.page.getByTestId('statement-line').first()).toContainText('+£30.00');

  // Paid once: one debit, and the balance it leaves.
  await openAccount(eve.page, eveAccount);
  await expect(eve.page.getByTestId('balance')).toHaveText('£70.00');
  await expect(eve.page.getByTestId('statement-line')).toHaveCount(2);
  await eve.page.goto('/transfers');
  await expect(eve.page.getByTestId('transfer-line')).toHaveCount(1);
});

test('a rejected transfer shows its reason', async ({ browser }) => {
  const gus = await signUp(browser, 'gus');
  const [account] = await accountNumbers(gus.page, 1);
  await openAccount(gus.page, account);
  await deposit(gus.page, '10.00', '£10.00');
  const nowhere = account + 1_000_000;

  await gus.page.goto(`/transfer?from=${account}&to=${nowhere}&amount=5.00&review=1`);
  await hydrated(gus.page);
  await gus.page.getByTestId('confirm-transfer').click();
  const status = gus.page.getByTestId('transfer-status');
  await expect(status).toHaveAttribute('data-status', 'rejected');
  await expect(status).toHaveText(`Not paid: no account ${nowhere}`);
  await openAccount(gus.page, account);
  await expect(gus.page.getByTestId('balance')).toHaveText('£10.00');
});

test('the statement downloads as CSV with its rows', async ({ browser }) => {
  const hal = await signUp(browser, 'hal');
  const [account] = await accountNumbers(hal.page, 1);
  await openAccount(hal.page, account);
  await deposit(hal.page, '40.00', '£40.00');
  const withdraw = hal.page.getByTestId('withdraw-form');
  await withdraw.getByLabel('Amount to take out (£)').fill('15.25');
  await withdraw.getByRole('button', { name: 'Take out' }).click();
  await expect(hal.page.getByTestId('balance')).toHaveText('£24.75');

  const response = await hal.context.request.get(`/accounts/${account}/statement.csv`);
  expect(response.status()).toBe(200);
  expect(response.headers()['content-type']).toContain('text/csv');
  const lines = (await response.text()).trim().split('\n');
  expect(lines[0]).toBe('date,description,amount,balance,transaction');
  expect(lines).toHaveLength(3);
  expect(lines[1]).toContain(',-15.25,24.75,');
  expect(lines[2]).toContain(',40.00,40.00,');
});

test('after logging out the account page sends to the log-in page', async ({ browser }) => {
  const ivy = await signUp(browser, 'ivy');
  const [account] = await accountNumbers(ivy.page, 1);
  await ivy.page.getByRole('button', { name: 'Log out' }).click();
  await expect(ivy.page).toHaveURL(/\/$/);
  await ivy.page.goto(`/accounts/${account}`);
  await expect(ivy.page).toHaveURL(new RegExp(`/login\\?next=%2Faccounts%2F${account}|/login\\?next=/accounts/${account}`));

  // Logging in again goes back to where they were.
  await hydrated(ivy.page);
  await ivy.page.getByLabel('Username').fill(ivy.username);
  await ivy.page.getByLabel('Password').fill(ivy.password);
  await ivy.page.getByRole('button', { name: 'Log in' }).click();
  await expect(ivy.page).toHaveURL(new RegExp(`/accounts/${account}$`));
});

test('wrong credentials get one message that does not say which part was wrong', async ({ page }) => {
  await page.goto('/login');
  await hydrated(page);
  await page.getByLabel('Username').fill('nobody_here');
  await page.getByLabel('Password').fill('not the password at all');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('form-error')).toHaveText('the username or password is not right');
});

test("another customer's account is the same 404 as a missing one", async ({ browser }) => {
  const jo = await signUp(browser, 'jo');
  const kim = await signUp(browser, 'kim');
  const [joAccount] = await accountNumbers(jo.page, 1);
  await accountNumbers(kim.page, 1);

  const theirs = await kim.page.goto(`/accounts/${joAccount}`);
  expect(theirs?.status()).toBe(404);
  await expect(kim.page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
  const missing = await kim.page.goto('/accounts/999999999');
  expect(missing?.status()).toBe(404);
  const csv = await kim.context.request.get(`/accounts/${joAccount}/statement.csv`);
  expect(csv.status()).toBe(404);
});

test('a change sent from another site is refused and changes nothing; pages carry a strict policy', async ({ browser }) => {
  const sam = await signUp(browser, 'sam');
  const [account] = await accountNumbers(sam.page, 1);
  const form = { account_id: String(account), amount: '500.00', note: 'forged', form_key: crypto.randomUUID() };

  const forged = await sam.context.request.post('/api/deposit', { headers: { Origin: 'http://evil.example' }, form });
  expect(forged.status()).toBe(403);
  const unsigned = await sam.context.request.post('/api/deposit', { form });
  expect(unsigned.status()).toBe(403);
  const socket = await sam.context.request.get('/live', {
    headers: { Origin: 'http://evil.example', Connection: 'Upgrade', Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' },
  });
  expect(socket.status()).toBe(403);

  const page = await sam.page.goto(`/accounts/${account}`);
  await expect(sam.page.getByTestId('balance')).toHaveText('£0.00');
  const policy = page?.headers()['content-security-policy'] ?? '';
  expect(policy).toContain("frame-ancestors 'none'");
  expect(policy).toMatch(/script-src 'self' 'nonce-[A-Za-z0-9_-]+'/);
  expect(page?.headers()['x-content-type-options']).toBe('nosniff');
});
