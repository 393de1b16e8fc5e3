import type { FullResult, Reporter, Suite } from '@playwright/test/reporter';

// CI reads a plain "N passed, M failed" line, not Playwright's own summary.
export default class SummaryReporter implements Reporter {
  private root?: Suite;

  onBegin(_config: unknown, suite: Suite) {
    this.root = suite;
  }

  onEnd(result: FullResult) {
    const tests = this.root?.allTests() ?? [];
    const count = (outcomes: string[]) =>
      tests.filter((test) => outcomes.includes(test.outcome())).length;
    const passed = count(['expected', 'flaky']);
    const skipped = count(['skipped']);
    let failed = count(['unexpected']);
    // A run that broke outside any test (global setup, a crash) has failed too.
    if (result.status !== 'passed' && failed === 0) failed = 1;
    console.log(`end2end: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  }
}
