/**
 * `npm run test:faults`: the fault tests (test/faults/) — real worker processes, the real CLI and a real dev server
 * SIGKILLed and restarted. Minutes long, so apart from `npm test` (jest.config.js leaves test/faults/ out); .ci/run
 * runs both.
 */
/** @type {import('jest').Config} */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 600_000,
};
