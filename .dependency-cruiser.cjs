// The architecture's boundaries, checked on every `npm run lint` (and so in `.ci/run`): see
// docs/architecture.md, "Boundaries". Each rule names the layer it protects; a violation prints
// the rule's name, the importing file and what it imported.
//
// Run alone: npx depcruise --config .dependency-cruiser.cjs packages/server/src packages/cluster/src packages/protocol/src packages/sdk/src packages/e2ee/src

/** Packages as dependency-cruiser resolves them (into node_modules). */
const packagePaths = (names) => names.map((name) => `(^|/)node_modules/${name}/`);

/** The drivers of cluster mode's engines: only `@parley/cluster` (packages/cluster) loads them. */
const CLUSTER_DRIVER_PATHS = packagePaths(['cassandra-driver', 'kafkajs', 'ioredis', '@aws-sdk/[^/]+']);

/** Engine drivers: only adapters (and the composition roots that build them) may load them. */
const DRIVER_PATHS = [...CLUSTER_DRIVER_PATHS, ...packagePaths(['better-sqlite3', 'ws'])];

/** The server's outer layers, none of which the domain may know. */
const OUTER =
  '^packages/server/src/((adapters|gateway|cluster|workers|backend|config)/|(metrics|logger)\\.ts$)';
/** An adapter's folder: in the server, or in the cluster package (one folder per engine). */
const ADAPTER = '^packages/(server/src/adapters|cluster/src)/([^/]+)/';

/** Packages that run in browsers too (`protocol`, `sdk`): no Node modules, no packages but ours. */
const BROWSER_SAFE_DEPENDENCIES = ['^packages/protocol/', '(^|/)node_modules/@parley/protocol/'];

module.exports = {
  forbidden: [
    {
      name: 'domain-is-pure',
      comment:
        'The domain imports nothing but its ports, its own files and @parley/protocol: no adapter, ' +
        'gateway, cluster, workers, backend or config module, not the metrics or the logger, and no engine driver.',
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
        "An adapter does not import another adapter's internals (adapters/<x> → adapters/<y>, or " +
        'between the engine folders of packages/cluster). Shared code goes to ports/ (contracts) or ' +
        "util/. Allowed: the conformance suites (adapters/conformance), which every adapter's tests run.",
      severity: 'error',
      from: { path: ADAPTER },
      to: {
        path: ADAPTER,
        pathNot: ['^packages/$1/$2/', '^packages/server/src/adapters/conformance/'],
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
      name: 'server-loads-no-cluster-drivers',
      comment:
        'packages/server imports neither @parley/cluster nor the drivers it owns (cassandra-driver, ' +
        'kafkajs, ioredis, @aws-sdk/*), so that an embedded process never loads them. The one way in ' +
        'is loadClusterEngines (cluster/engine-package.ts): an import() of a specifier that is not a ' +
        'literal, which neither TypeScript nor this check follows, run only in cluster mode and by ' +
        '`parley migrate-cluster`. test/embedded-loads-no-drivers.test.ts checks the running process.',
      severity: 'error',
      from: { path: '^packages/server/src/' },
      to: { path: ['^packages/cluster/', '(^|/)node_modules/@parley/cluster/', ...CLUSTER_DRIVER_PATHS] },
    },
    {
      name: 'cluster-imports-server-by-package',
      comment:
        'packages/cluster imports the server as @parley/server/… (its package exports), never by a ' +
        "relative path into packages/server: only the exports choose between the server's sources " +
        '(the `parley-source` condition, in tests) and its build, so that one process never loads both.',
      severity: 'error',
      from: { path: '^packages/cluster/' },
      to: { path: '^packages/server/', dependencyTypes: ['local'] },
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
      name: 'e2ee-is-browser-safe',
      comment:
        'packages/e2ee runs in browsers: no node: modules and no packages but the audited @noble ' +
        'primitives (curves, hashes, ciphers); the client it runs over is injected (E2eeTransport). ' +
        'Its tests are exempt.',
      severity: 'error',
      from: { path: '^packages/e2ee/src/', pathNot: '\\.test\\.ts$' },
      to: { pathNot: ['^packages/e2ee/src/', '(^|/)node_modules/@noble/(curves|hashes|ciphers)/'] },
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
      // `parley-source` as in the tests: our packages' imports of each other resolve to their sources.
      conditionNames: ['parley-source', 'import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.d.ts', '.json'],
    },
  },
};
