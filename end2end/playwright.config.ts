import { defineConfig, devices } from '@playwright/test';

// `cargo leptos end-to-end` builds the app, starts the server and runs
// `npx playwright test` here. The browser is Debian's Chromium: Playwright's
// own browser downloads cannot be reached from these machines.
export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  // One worker: the staff tests read bank-wide totals before and after.
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  globalSetup: './global-setup.ts',
  reporter: [['list'], ['./summary-reporter.ts']],
  use: {
    baseURL: process.env.LEDGERLINE_URL ?? 'http://127.0.0.1:3000',
    trace: 'retain-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      use: {
        ...devices['Desktop Chrome'],
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
            '--disable-quic',
          ],
        },
      },
    },
  ],
});
