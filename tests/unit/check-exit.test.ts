/** `sealer check` exit codes: what a script can test after a check. */
import * as assert from "node:assert/strict";
import { checkExitCode, DRIFT_EXIT, UNREACHABLE_EXIT } from "../../provider/cli/commands/check";
import type { CheckResult, DriftReport } from "../../provider/core/drift/compare";

const ok = (check: string): CheckResult => ({ check, status: "ok" });
const report = (hosts: Array<[string, CheckResult[]]>, drifted = false): DriftReport => ({
  cluster: "c",
  hosts: hosts.map(([host, checks]) => ({ host, checks })),
  steps: drifted ? ["distribute:10.0.0.2"] : [],
  drifted,
  notes: [],
});
const refused: CheckResult = {
  check: "ssh",
  status: "unreachable",
  detail: "10.0.0.2: host key changed (known_hosts pins another key): refused",
};
const drifted: CheckResult = {
  check: "blobs",
  status: "drifted",
  expected: "3 blobs",
  found: "1",
  steps: ["distribute:10.0.0.2"],
};

describe("sealer check exit code", () => {
  const cases: Array<[string, DriftReport, number]> = [
    ["every host checked, no drift", report([["10.0.0.1", [ok("ssh"), ok("blobs")]]]), 0],
    ["drift", report([["10.0.0.2", [ok("ssh"), drifted]]], true), DRIFT_EXIT],
    [
      "a refused host key (reported unreachable) is not success",
      report([
        ["10.0.0.1", [ok("ssh")]],
        ["10.0.0.2", [refused]],
      ]),
      UNREACHABLE_EXIT,
    ],
    [
      "drift on one host and another unreachable: drift",
      report(
        [
          ["10.0.0.1", [ok("ssh"), drifted]],
          ["10.0.0.2", [refused]],
        ],
        true,
      ),
      DRIFT_EXIT,
    ],
    [
      "a check that could not be made on a reached host is not unreachable",
      report([
        ["10.0.0.1", [ok("ssh"), { check: "node", status: "unknown", detail: "api server did not answer" }]],
      ]),
      0,
    ],
  ];
  for (const [name, r, want] of cases) it(`${name}: ${want}`, () => assert.equal(checkExitCode(r), want));
  it("the codes differ from each other and from bad input (2)", () =>
    assert.equal(new Set([0, 2, DRIFT_EXIT, UNREACHABLE_EXIT]).size, 4));
});
