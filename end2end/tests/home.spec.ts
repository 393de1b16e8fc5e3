import { expect, test, type Page } from '@playwright/test';

// The number of the newest recorded status check on the page, 0 when none.
async function shownCheckNumber(page: Page): Promise<number> {
  const number = page.getByTestId('check-number');
  if ((await number.count()) === 0) return 0;
  return Number(await number.textContent());
}

test('the hydrated page checks the database through a server function', async ({ page }) => {
  await page.goto('/');
  await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
  await expect(page.getByTestId('status-check').or(page.getByTestId('no-check'))).toBeVisible();
  const before = await shownCheckNumber(page);

  const call = page.waitForRequest((request) => request.url().includes('/api/record_status_check'));
  await page.getByTestId('check-database').click();
  // Hydrated, the form is sent by the WASM with fetch, not by the browser.
  expect((await call).resourceType()).toBe('fetch');

  await expect.poll(() => shownCheckNumber(page)).toBeGreaterThan(before);
  await expect(page.getByTestId('postgres-version')).toContainText('PostgreSQL');
  await expect(page.getByTestId('schema-version')).toHaveText(/^[1-9]\d*$/);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the server-rendered page checks the database with a plain form post', async ({ page }) => {
    await page.goto('/');
    await expect(page.getByRole('heading', { name: 'System status' })).toBeVisible();
    await expect(page.locator('main[data-hydrated]')).toHaveCount(0);
    const before = await shownCheckNumber(page);

    const post = page.waitForRequest(
      (request) => request.method() === 'POST' && request.url().includes('/api/record_status_check'),
    );
    // The server function answers a form post with a redirect back here.
    const reloaded = page.waitForResponse(
      (response) =>
        response.request().method() === 'GET' &&
        response.request().resourceType() === 'document' &&
        new URL(response.url()).pathname === '/',
    );
    await page.getByTestId('check-database').click();
    expect((await post).resourceType()).toBe('document');
    await reloaded;
    await page.waitForLoadState();

    expect(await shownCheckNumber(page)).toBeGreaterThan(before);
    await expect(page.getByTestId('postgres-version')).toContainText('PostgreSQL');
  });
});
