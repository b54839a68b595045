'use strict';
// Prints the test run's closing line, last, whatever ran before it.
const fs = require('node:fs');
const path = require('node:path');
const file = path.resolve(process.env.SIGNET_TEST_SUMMARY || 'coverage/test-summary.json');
if (fs.existsSync(file)) {
  const { passes, failures, pending } = JSON.parse(fs.readFileSync(file, 'utf8'));
  console.log(`${passes} passed, ${failures} failed, ${pending} skipped`);
} else {
  console.log('0 passed, 1 failed (no test ran: type-check or lint failed, or mocha did not start)');
}
