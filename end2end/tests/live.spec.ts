import { expect, test, type WebSocketRoute } from '@playwright/test';
import { accountNumbers, deposit, openAccount, signUp } from './bank';

test('a live update arrives after the socket is cut and restored', async ({ browser }) => {
  const max = await signUp(browser, 'max');
  const ned = await signUp(browser, 'ned');
  const [maxAccount] = await accountNumbers(max.page, 1);
  const [nedAccount] = await accountNumbers(ned.page, 1);

  // Ned's live socket runs through a relay the test can cut.
  const relays: WebSocketRoute[] = [];
  await ned.page.routeWebSocket(/\/live$/, (ws) => {
    ws.connectToServer();
    relays.push(ws);
  });
  await openAccount(ned.page, nedAccount);
  await expect.poll(() => relays.length).toBeGreaterThan(0);

  // Cut: the browser sees the socket close and reconnects by itself.
  await relays[relays.length - 1].close({ code: 1012, reason: 'cut by the test' });
  await expect.poll(() => relays.length).toBeGreaterThan(1);

  await openAccount(max.page, maxAccount);
  await deposit(max.page, '9.00', '£9.00');
  await max.page.goto(`/transfer?from=${maxAccount}&to=${nedAccount}&amount=4.00&review=1`);
  await max.page.getByTestId('confirm-transfer').click();
  await expect(max.page.getByTestId('transfer-status')).toHaveAttribute('data-status', 'accepted');

  await expect(ned.page.getByTestId('balance')).toHaveText('£4.00', { timeout: 2_000 });
});
