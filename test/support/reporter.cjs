'use strict';
// mocha's spec reporter, plus a record of the run's counts so that `npm test`
// can end with one plain "N passed, N failed" line after c8's coverage summary.
const fs = require('node:fs');
const path = require('node:path');
const Mocha = require('mocha');

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    // Only `npm test` asks for the record (a run of one folder does not), so
    // that concurrent runs cannot overwrite each other's counts.
    const file = process.env.SIGNET_TEST_SUMMARY;
    if (!file) return;
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const { passes, failures, pending } = this.stats;
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, JSON.stringify({ passes, failures, pending }));
    });
  }
}
module.exports = SpecWithSummary;
