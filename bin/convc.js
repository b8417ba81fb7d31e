#!/usr/bin/env node
// The installed command. The compiled sources live in dist/ (built by `npm install`'s prepare
// step, or `npm run build`): tsc's output, and dist/convc.mjs, the command line bundled into one
// module with its dependencies left outside. Loading one file instead of ninety saves Node about
// 60 ms of every command's start (module resolution and compilation), a third of compiling
// V2-huge after Node's own start.
import { main } from '../dist/convc.mjs';

process.exitCode = await main(process.argv.slice(2));
