import type { FullConfig } from '@playwright/test';

// cargo-leptos starts the server and the tests at the same moment; the server
// may still be starting its database. Wait until /health says it is ready.
export default async function globalSetup(config: FullConfig) {
  const baseURL = config.projects[0].use.baseURL ?? 'http://127.0.0.1:3000';
  const deadline = Date.now() + 180_000;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(new URL('/health', baseURL));
      if (response.ok) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the server at ${baseURL} was not healthy within 180 s (${last})`);
}
