import tseslint from "typescript-eslint";

// Module boundaries. Flat config replaces (does not merge) a rule's options when several blocks
// match a file, so each block lists every restriction that holds for its files.
const noPulumi = {
  group: ["@pulumi/*", "@pulumi/**"],
  message: "provider/core imports no Pulumi: Pulumi glue lives in provider/resources.",
};
const noTerminal = {
  group: ["commander", "cli-progress", "**/cli", "**/cli/**"],
  message: "provider/core imports no terminal or CLI modules: it is the library both front doors share.",
};
const noResources = {
  group: ["**/resources", "**/resources/**"],
  message: "import shared pure modules from provider/shared instead of provider/resources.",
};
const noCli = {
  group: ["**/cli", "**/cli/**"],
  message: "provider/resources does not import the CLI: share through provider/core or provider/shared.",
};
const noIo = {
  group: [
    "fs",
    "fs/*",
    "node:fs",
    "node:fs/*",
    "child_process",
    "node:child_process",
    "net",
    "node:net",
    "ssh2",
    "**/ssh",
    "**/ssh/**",
    "**/exec/**",
    "**/fsutil",
    "**/state",
    "**/registry/**",
  ],
  message:
    "the planner is pure (no file, process, network or SSH access): pass what it needs in through Desired/AppliedState.",
};
const noImage = {
  group: ["**/image/**"],
  message: "kubefile is below image: move shared pieces to provider/core/common.",
};
const restrict = (...patterns) => ["error", { patterns }];

export default tseslint.config(
  { ignores: ["dist/**", "node_modules/**", "bin/**", "eslint.config.mjs", "**/*.js"] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-require-imports": "off",
      "no-console": "error",
    },
  },
  {
    files: ["provider/cli/**/*.ts", "bench/**/*.ts", "tests/**/*.ts", "examples/**/*.ts"],
    rules: { "no-console": "off" },
  },
  {
    files: ["provider/core/**/*.ts"],
    rules: { "no-restricted-imports": restrict(noPulumi, noTerminal, noResources) },
  },
  {
    files: ["provider/core/kubefile/**/*.ts"],
    rules: { "no-restricted-imports": restrict(noPulumi, noTerminal, noResources, noImage) },
  },
  {
    files: ["provider/core/plan/**/*.ts"],
    rules: { "no-restricted-imports": restrict(noPulumi, noTerminal, noResources, noIo) },
  },
  {
    files: ["provider/shared/**/*.ts"],
    rules: { "no-restricted-imports": restrict(noPulumi, noTerminal, noResources) },
  },
  { files: ["provider/cli/**/*.ts"], rules: { "no-restricted-imports": restrict(noResources) } },
  { files: ["provider/resources/**/*.ts"], rules: { "no-restricted-imports": restrict(noCli) } },
);
