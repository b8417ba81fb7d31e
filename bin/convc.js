#!/usr/bin/env node
// The installed command. The compiled sources live in dist/ (built by `npm install`'s prepare
// step, or `npm run build`).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
