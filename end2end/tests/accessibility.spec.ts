import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { accountNumbers, deposit, hydrated, openAccount, signUp } from './bank';

async function seriousViolations(page: Page) {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
    .map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.length})`);
}

test('no page has a serious or critical accessibility violation', async ({ browser }) => {
  // Two customers, then axe over every page: longer than one journey.
  test.setTimeout(90_000);
  const ola = await signUp(browser, 'ola');
  const pip = await signUp(browser, 'pip');
  const [account] = await accountNumbers(ola.page, 1);
  const [payee] = await accountNumbers(pip.page, 1);
  await openAccount(ola.page, account);
  await deposit(ola.page, '20.00', '£20.00');
  const page = ola.page;

  const anonymous = await (await browser.newContext()).newPage();
  for (const path of ['/', '/login', '/signup', '/no-such-page']) {
    await anonymous.goto(path);
    await hydrated(anonymous);
    expect(await seriousViolations(anonymous), path).toEqual([]);
  }

  const pages = [
    '/accounts',
    `/accounts/${account}`,
    '/transfer',
    `/transfer?from=${account}&to=${payee}&amount=5&review=1`,
    `/transfer?from=${account}&to=&amount=0&review=1`,
    '/transfers',
  ];
  for (const path of pages) {
    await page.goto(path);
    await hydrated(page);
    expect(await seriousViolations(page), path).toEqual([]);
  }

  await page.goto(`/transfer?from=${account}&to=${payee}&amount=5&review=1`);
  await hydrated(page);
  await page.getByTestId('confirm-transfer').click();
  await expect(page.getByTestId('transfer-status')).toBeVisible();
  expect(await seriousViolations(page), 'transfer status').toEqual([]);
});

test('the pages work at phone width', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
  await page.goto('/signup');
  await hydrated(page);
  expect(await fits(), '/signup').toBe(true);

  const rex = await signUp(browser, 'rex');
  const [account] = await accountNumbers(rex.page, 1);
  await context.addCookies(await rex.context.cookies());
  for (const path of ['/accounts', `/accounts/${account}`, '/transfer', '/transfers']) {
    await page.goto(path);
    await hydrated(page);
    expect(await fits(), path).toBe(true);
  }
  await context.close();
});
