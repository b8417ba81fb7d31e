// Registered by vitest.config.ts for every test file.
import { afterEach } from 'vitest';
import { yieldToEventLoop } from './event-loop.js';

// Between tests, let the worker read the main process's replies (see event-loop.ts).
afterEach(yieldToEventLoop);
