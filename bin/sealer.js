#!/usr/bin/env node
"use strict";
// The CLI is compiled TypeScript: run `npm run build` first.
require("../dist/provider/cli/main.js").main(process.argv).catch((err) => {
  const { redact } = require("../dist/provider/core/log.js");
  process.stderr.write(`sealer: ${redact(err && err.message ? err.message : String(err))}\n`);
  process.exit(typeof err?.exitCode === "number" ? err.exitCode : 1);
});
