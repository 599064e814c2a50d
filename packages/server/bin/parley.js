#!/usr/bin/env node
// The `parley` command. Runs the compiled CLI (built by `npm install` / `npm run build`).
import '../dist/cli.js';
