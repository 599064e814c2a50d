// The architecture's boundaries, checked on every `npm run lint` (and so in `.ci/run`): see
// docs/architecture.md, "Boundaries". Each rule names the layer it protects; a violation prints
// the rule's name, the importing file and what it imported.
//
// Run alone: npx depcruise --config .dependency-cruiser.cjs packages/server/src packages/protocol/src packages/sdk/src

/**
 * Engine drivers, as dependency-cruiser resolves them (into node_modules): only adapters (and the
 * composition roots that build them) may load them.
 */
const DRIVER_PATHS = ['cassandra-driver', 'kafkajs', 'ioredis', '@aws-sdk/[^/]+', 'better-sqlite3', 'ws'].map(
  (name) => `(^|/)node_modules/${name}/`,
);

/** The server's outer layers, none of which the domain may know. */
const OUTER = '^packages/server/src/(adapters|gateway|cluster|workers|backend|config)/';
/** Any server file that is not a port. */
const ADAPTER = '^packages/server/src/adapters/([^/]+)/';

/** Packages that run in browsers too (`protocol`, `sdk`): no Node modules, no packages but ours. */
const BROWSER_SAFE_DEPENDENCIES = ['^packages/protocol/', '(^|/)node_modules/@parley/protocol/'];

module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment:
        'The domain imports nothing but its ports, its own files and @parley/protocol: no adapter, ' +
        'gateway, cluster, workers, backend or config module, and no engine driver.',
      severity: 'error',
      from: { path: '^packages/server/src/domain/', pathNot: '\\.test\\.ts$' },
      to: { path: [OUTER, ...DRIVER_PATHS] },
    },
    {
      name: 'domain-tests-use-memory-adapters-only',
      comment:
        'Domain tests may build their ports from the in-memory reference adapters (adapters/memory), ' +
        'nothing else outside the domain and its ports.',
      severity: 'error',
      from: { path: '^packages/server/src/domain/.+\\.test\\.ts$' },
      to: { path: [OUTER, ...DRIVER_PATHS], pathNot: '^packages/server/src/adapters/memory/' },
    },
    {
      name: 'ports-import-ports-only',
      comment: 'A port imports only other ports and @parley/protocol (no Node modules, no packages).',
      severity: 'error',
      from: { path: '^packages/server/src/ports/' },
      to: { pathNot: ['^packages/server/src/ports/', ...BROWSER_SAFE_DEPENDENCIES] },
    },
    {
      name: 'adapters-keep-to-themselves',
      comment:
        "An adapter does not import another adapter's internals (adapters/<x> → adapters/<y>). Shared " +
        'code goes to ports/ (contracts) or util/. Allowed: the conformance suites (adapters/conformance), ' +
        "which every adapter's tests run.",
      severity: 'error',
      from: { path: ADAPTER },
      to: {
        path: ADAPTER,
        pathNot: ['^packages/server/src/adapters/$1/', '^packages/server/src/adapters/conformance/'],
      },
    },
    {
      name: 'conformance-suites-only-from-tests',
      comment: "An adapter's own code never imports a conformance suite: only its tests do.",
      severity: 'error',
      from: { path: ADAPTER, pathNot: ['\\.test\\.ts$', '^packages/server/src/adapters/conformance/'] },
      to: { path: '^packages/server/src/adapters/conformance/' },
    },
    {
      name: 'protocol-is-browser-safe',
      comment:
        'packages/protocol runs in browsers: no node: modules and no packages (it has no dependencies). ' +
        'Its tests (node:test, fast-check) are exempt.',
      severity: 'error',
      from: { path: '^packages/protocol/src/', pathNot: '\\.test\\.ts$' },
      to: { pathNot: ['^packages/protocol/src/'] },
    },
    {
      name: 'sdk-is-browser-safe',
      comment:
        'packages/sdk runs in browsers: no node: modules and no packages but @parley/protocol (the ' +
        'WebSocket class is injected, so `ws` stays in the application). Its tests are exempt.',
      severity: 'error',
      from: { path: '^packages/sdk/src/', pathNot: '\\.test\\.ts$' },
      to: { pathNot: ['^packages/sdk/src/', ...BROWSER_SAFE_DEPENDENCIES] },
    },
    {
      name: 'no-unresolvable',
      comment: 'An import that does not resolve cannot be checked (a typo, or a missing dependency).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // Packages (and our own built packages, which `@parley/protocol` resolves to) are checked as
    // targets but not cruised into. Nothing is excluded: an excluded module vanishes from the
    // graph, and the rules about drivers and packages need them.
    doNotFollow: { path: ['(^|/)node_modules/', '^packages/[^/]+/dist/'] },
    // Type-only imports are dependencies too: a port that imports a driver's types is coupled to it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.check.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.d.ts', '.json'],
    },
  },
};
