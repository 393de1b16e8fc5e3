import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { accountNumbers, deposit, hydrated, openAccount, signUp, uniqueUsername } from './bank';
import { sql, staffLogin, staffPage } from './staff';

// Each test drives customers and staff through whole journeys.
test.describe.configure({ mode: 'serial', timeout: 90_000 });

/** Pays `amount` from one account to another through the review step. */
async function transfer(page: Page, from: number, to: number, amount: string, reference: string) {
  await page.goto(`/transfer?from=${from}&to=${to}&amount=${amount}&reference=${encodeURIComponent(reference)}&review=1`);
  await hydrated(page);
  await page.getByTestId('confirm-transfer').click();
  await expect(page.getByTestId('transfer-status')).toHaveAttribute('data-status', 'accepted');
}

/** Loads `path` again and again until `check` passes (the reporting tables
 * follow the log within moments; a loaded page does not change by itself). */
async function eventually(page: Page, path: string, check: () => Promise<void>) {
  await expect(async () => {
    await page.goto(path);
    await check();
  }).toPass({ timeout: 45_000 });
}

/** For checks inside `eventually`: each look at a loaded page is short. */
const soon = expect.configure({ timeout: 2_000 });

test('staff see a transfer just made, its trace, the account history, seeking and time travel', async ({ browser }) => {
  const ann = await signUp(browser, 'sta');
  const ben = await signUp(browser, 'stb');
  const [annAccount] = await accountNumbers(ann.page, 1);
  const [benAccount] = await accountNumbers(ben.page, 1);
  await openAccount(ann.page, annAccount);
  await deposit(ann.page, '100.00', '£100.00');
  const reference = `rent ${uniqueUsername('r')}`;
  await transfer(ann.page, annAccount, benAccount, '30.00', reference);

  const staff = await staffPage(browser);
  // The whole log, newest first: the transfer is there.
  const pending = staff.getByTestId('event-line').filter({ hasText: reference });
  await eventually(staff, '/staff/events', async () => {
    await soon(pending).toHaveCount(1);
  });

  // Free text narrows the log to the events that carry the reference: the
  // request, and the debit and credit whose notes repeat it.
  const word = encodeURIComponent(reference.split(' ')[1]);
  await staff.goto(`/staff/events?q=${word}`);
  await expect(staff.getByTestId('event-line')).toHaveCount(3);
  await expect(staff.getByTestId('event-line').nth(0)).toContainText('ConfirmedCredit');
  await expect(staff.getByTestId('event-line').nth(2)).toContainText('PendingTransaction');
  // Type and account: exactly the one credit into Ben's account.
  await staff.goto('/staff/events');
  await hydrated(staff);
  await staff.getByLabel('ConfirmedCredit').check();
  await staff.getByLabel('Account', { exact: true }).fill(String(benAccount));
  await staff.getByRole('button', { name: 'Show' }).click();
  await expect(staff).toHaveURL(/type=ConfirmedCredit/);
  await expect(staff.getByTestId('event-line')).toHaveCount(1);
  await expect(staff.getByTestId('event-line')).toContainText(`acc-${benAccount}`);

  // Seek to the pending event's time: it heads the page.
  await staff.goto(`/staff/events?q=${word}&type=PendingTransaction`);
  const row = staff.getByTestId('event-line').first();
  const position = Number(await row.getAttribute('data-position'));
  const at = await row.locator('time').getAttribute('datetime');
  await staff.goto(`/staff/events?at=${encodeURIComponent(at!)}`);
  await expect(staff.getByTestId('event-line').first()).toHaveAttribute('data-position', String(position));
  // And to its position.
  await staff.goto(`/staff/events?position=${position}`);
  await expect(staff.getByTestId('event-line').first()).toHaveAttribute('data-position', String(position));

  // Its correlation: four steps, pending, then the decision's three.
  await staff.goto(`/staff/events?position=${position}`);
  await staff.getByTestId('event-line').first().getByRole('link', { name: /^[0-9a-f]{8}$/ }).click();
  const steps = staff.getByTestId('trace-step');
  await expect(steps).toHaveCount(4);
  await expect(steps.nth(0)).toContainText('PendingTransaction');
  await expect(steps.nth(1)).toContainText('AcceptedTransaction');
  await expect(steps.nth(2)).toContainText('ConfirmedDebit');
  await expect(steps.nth(3)).toContainText('ConfirmedCredit');
  // Which instance handled each step: the transactions service asked, the accounts service decided.
  await expect(steps.nth(0).getByTestId('published-by')).toContainText(/published by transactions@127\.0\.0\.1:\d+/);
  for (const step of [1, 2, 3]) {
    await expect(steps.nth(step).getByTestId('published-by')).toContainText(/published by accounts@127\.0\.0\.1:\d+/);
  }

  // Ann's account's life, with the running balance.
  await staff.goto(`/staff/keys/acc-${annAccount}`);
  const lines = staff.getByTestId('history-line');
  await expect(lines).toHaveCount(3);
  await expect(lines.nth(1).getByTestId('balance-after')).toHaveText('£100.00');
  await expect(lines.nth(2).getByTestId('balance-after')).toHaveText('£70.00');
  const depositedAt = await lines.nth(1).locator('time').getAttribute('datetime');

  // Where Ben's money came from: the transfer Ann asked for.
  await staff.goto(`/staff/keys/acc-${benAccount}`);
  await staff.getByRole('link', { name: 'Where did this money come from?' }).click();
  const tree = staff.getByTestId('causation-tree');
  await expect(tree.getByTestId('tree-node').first()).toContainText('PendingTransaction');
  await expect(tree.getByTestId('tree-node').first()).toContainText(ann.username);
  await expect(tree.getByTestId('tree-node')).toHaveCount(4);

  // Time travel to before the transfer: Ann's balance as it was.
  await staff.goto(`/staff/time-travel?at=${encodeURIComponent(depositedAt!)}&account=${annAccount}`);
  await expect(staff.getByTestId('balance-then')).toHaveText('£100.00');
  await staff.goto(`/staff/time-travel?at=${encodeURIComponent(new Date().toISOString())}&account=${annAccount}`);
  await expect(staff.getByTestId('balance-then')).toHaveText('£70.00');
});

test('a chart shows the right totals for a known set of deposits', async ({ browser }) => {
  const staff = await staffPage(browser);
  const creditsRow = () =>
    staff.getByTestId('report-totals').locator('tbody tr').filter({ hasText: 'ConfirmedCredit' });
  await staff.goto('/staff/reports');
  const before = (await creditsRow().locator('td').nth(1).textContent()) ?? '0';

  const cy = await signUp(browser, 'stc');
  const [account] = await accountNumbers(cy.page, 1);
  await openAccount(cy.page, account);
  await deposit(cy.page, '1.11', '£1.11');
  await deposit(cy.page, '2.22', '£3.33');
  await deposit(cy.page, '3.33', '£6.66');

  const expected = String(Number(before) + 3);
  await eventually(staff, '/staff/reports', async () => {
    await soon(creditsRow().locator('td').nth(1)).toHaveText(expected);
  });
  // The chart's bar for the type says the same number.
  await expect(staff.getByTestId('report-totals').locator('svg rect title', { hasText: `events: ${expected}` })).toHaveCount(1);
});

test('a parked event is replayed from the system page and leaves the list', async ({ browser }) => {
  const dee = await signUp(browser, 'std');
  const [account] = await accountNumbers(dee.page, 1);
  const marker = uniqueUsername('park');
  // The reporting service fails on this one deposit until the fault is removed.
  sql(`CREATE OR REPLACE FUNCTION reporting.e2e_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN IF NEW.data::text LIKE '%${marker}%' THEN RAISE EXCEPTION 'e2e: refused on purpose'; END IF; RETURN NEW; END $$;
       DROP TRIGGER IF EXISTS e2e_refuse ON reporting.events;
       CREATE TRIGGER e2e_refuse BEFORE INSERT ON reporting.events FOR EACH ROW EXECUTE FUNCTION reporting.e2e_refuse();`);
  try {
    await openAccount(dee.page, account);
    const form = dee.page.getByTestId('deposit-form');
    await form.getByLabel('Amount to pay in (£)').fill('5.00');
    await form.getByLabel('Note (optional)').fill(marker);
    await form.getByRole('button', { name: 'Pay in' }).click();
    await expect(dee.page.getByTestId('balance')).toHaveText('£5.00');

    const staff = await staffPage(browser);
    const parked = staff.getByTestId('parked-event').filter({ hasText: `acc-${account}` });
    await eventually(staff, '/staff/system', async () => {
      await soon(parked).toHaveCount(1);
    });
    await expect(parked).toContainText('e2e: refused on purpose');
  } finally {
    sql('DROP TRIGGER IF EXISTS e2e_refuse ON reporting.events; DROP FUNCTION IF EXISTS reporting.e2e_refuse();');
  }
  const staff = await staffPage(browser);
  await staff.goto('/staff/system');
  await hydrated(staff);
  const parked = staff.getByTestId('parked-event').filter({ hasText: `acc-${account}` });
  await parked.getByRole('link', { name: 'Replay…' }).click();
  const review = staff.getByTestId('decision-review');
  await expect(review).toContainText('Replaying delivers event');
  await hydrated(staff);
  await review.getByLabel('Note (optional)').fill('the fault is fixed');
  await review.getByRole('button', { name: 'Confirm the replay' }).click();
  await expect(staff.getByTestId('decision-result')).toContainText('replay done');
  await expect(parked).toHaveCount(0);
  // It stays gone: the reporting service applied it this time.
  await eventually(staff, `/staff/keys/acc-${account}`, async () => {
    await soon(staff.getByTestId('history-line')).toHaveCount(2);
  });
  await staff.goto('/staff/system');
  await expect(parked).toHaveCount(0);
  const decision = staff.getByTestId('audit').locator('tbody tr').first();
  await expect(decision).toContainText(staffLogin().username);
  await expect(decision).toContainText('replay');
  await expect(decision).toContainText('the fault is fixed');
  await expect(decision).toContainText('released');
});

test('live mode puts new events on top, and holds them while the reader scrolls', async ({ browser }) => {
  const fox = await signUp(browser, 'stf');
  const [account] = await accountNumbers(fox.page, 1);
  await openAccount(fox.page, account);
  const staff = await staffPage(browser);
  await staff.goto('/staff/events');
  await hydrated(staff);
  await staff.getByLabel('Live: new events appear at the top').check();

  await deposit(fox.page, '4.00', '£4.00');
  const fresh = staff.getByRole('region', { name: 'New events' }).getByTestId('event-line');
  await expect(fresh.filter({ hasText: `acc-${account}` })).toHaveCount(1);

  // Scrolled down to read: the next one is held and counted, not shown.
  await staff.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  await deposit(fox.page, '5.00', '£9.00');
  await expect(staff.getByTestId('live-held')).toContainText('new events held while you scroll down');
  await expect(fresh).toHaveCount(1);
  await staff.getByRole('button', { name: 'Show them' }).click();
  await expect(fresh.first()).toContainText('+£5.00');
});

const STAFF_PAGES = [
  '/staff/events',
  '/staff/events/1',
  '/staff/keys/acc-1',
  '/staff/traces/00000000-0000-0000-0000-000000000000',
  '/staff/time-travel',
  '/staff/reports',
  '/staff/system',
];

test('customers get 404 on every staff page and export; no one logged in is sent to log in', async ({ browser }) => {
  const eve = await signUp(browser, 'ste');
  for (const path of [...STAFF_PAGES, '/staff/events.csv', '/staff/events.json', '/staff/reports/totals.csv']) {
    const response = await eve.page.goto(path);
    expect(response?.status(), path).toBe(404);
  }
  // Nothing of the console shows: exactly the page for an address that does not exist.
  for (const path of STAFF_PAGES) {
    await eve.page.goto(path);
    await expect(eve.page.getByRole('heading', { level: 1 }), path).toHaveText('Page not found');
    await expect(eve.page.getByRole('navigation', { name: 'Staff console' }), path).toHaveCount(0);
    await expect(eve.page.locator('form'), path).toHaveCount(1); // the header's log-out only
  }
  const anonymous = await (await browser.newContext()).newPage();
  for (const path of STAFF_PAGES) {
    await anonymous.goto(path);
    await expect(anonymous, path).toHaveURL(/\/login\?next=/);
  }
});

test('staff pages have no serious accessibility violation', async ({ browser }) => {
  const staff = await staffPage(browser);
  const pages = ['/staff/events', '/staff/events?type=ConfirmedCredit', '/staff/time-travel?at=2030-01-01&account=1', '/staff/reports', '/staff/system', '/staff/keys/acc-1', '/staff/events/1'];
  for (const path of pages) {
    await staff.goto(path);
    await hydrated(staff);
    const results = await new AxeBuilder({ page: staff }).analyze();
    const serious = results.violations
      .filter((violation) => violation.impact === 'serious' || violation.impact === 'critical')
      .map((violation) => `${violation.id}: ${violation.help} (${violation.nodes.length})`);
    expect(serious, path).toEqual([]);
  }
});
