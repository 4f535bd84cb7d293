/** @type {import('jest').Config} */
module.exports = {
  // onnxruntime-node checks `instanceof Float32Array` against the host realm; jest's default VM context has
  // its own typed-array constructors (jest #11864), so tests run in an env that shares the host's.
  testEnvironment: '<rootDir>/test/helpers/node-shared-env.js',
  transform: {
    '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } } }],
    // hyparquet ships ESM only; Node >= 20.19 require()s it natively, jest's runtime needs it compiled to CJS.
    '^.+/node_modules/hyparquet(-writer)?/.+\\.js$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(hyparquet|hyparquet-writer)/)'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // The fault tests (SIGKILLed workers and servers, minutes long) run apart: `npm run test:faults` (jest.faults.config.js).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/faults/'],
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  testTimeout: 120_000,
  maxWorkers: 1,
};
