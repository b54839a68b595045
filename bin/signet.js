#!/usr/bin/env node
'use strict';
// Entry point of the `signet` command. A source checkout runs the TypeScript
// through tsx; the packaged appliance (no sources, no tsx) runs the compiled
// JavaScript in dist/.
const path = require('node:path');
const fs = require('node:fs');
const source = path.join(__dirname, '..', 'appliance', 'src', 'cli', 'main.ts');
if (fs.existsSync(source)) {
  require('tsx/cjs');
  require(source);
} else {
  require(path.join(__dirname, '..', 'dist', 'cli', 'main.js'));
}
