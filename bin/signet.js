#!/usr/bin/env node
'use strict';
// Entry point of the `signet` command. A source checkout runs the TypeScript
// through tsx; the packaged appliance (no sources, no tsx) runs the compiled
// JavaScript in dist/.
const path = require('node:path');
const fs = require('node:fs');
const source = path.join(__dirname, '..', 'appliance', 'src', 'cli', 'main.ts');
if (fs.existsSync(source)) {
  // tsx looks for a tsconfig.json from the working directory: run from anywhere else (an
  // organization folder, a runbook's work folder), the same sources would compile differently
  process.env.TSX_TSCONFIG_PATH ??= path.join(__dirname, '..', 'tsconfig.json');
  require('tsx/cjs');
  require(source);
} else {
  require(path.join(__dirname, '..', 'dist', 'cli', 'main.js'));
}
