import { strict as assert } from "node:assert";
import { familiarReference, normalizeReference, parseReference } from "../../provider/core/common/reference";

describe("image reference", () => {
  const cases: Array<[string, string]> = [
    ["nginx", "docker.io/library/nginx:latest"],
    ["my-saas:1.0", "docker.io/library/my-saas:1.0"],
    ["team/app:2", "docker.io/team/app:2"],
    ["127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app:latest"],
    ["localhost/app:v1", "localhost/app:v1"],
    ["registry.example.com/a/b/c:1.2.3", "registry.example.com/a/b/c:1.2.3"],
    [`app@sha256:${"a".repeat(64)}`, `docker.io/library/app@sha256:${"a".repeat(64)}`],
    [`r.io:443/app:1@sha256:${"b".repeat(64)}`, `r.io:443/app:1@sha256:${"b".repeat(64)}`],
  ];
  for (const [input, want] of cases)
    it(`normalises ${input}`, () => assert.equal(normalizeReference(input), want));

  it("shows familiar names", () => {
    assert.equal(familiarReference(parseReference("nginx")), "nginx:latest");
    assert.equal(familiarReference(parseReference("team/app:1")), "team/app:1");
    assert.equal(familiarReference(parseReference("r.io/app:1")), "r.io/app:1");
  });

  const bad: Array<[string, RegExp]> = [
    ["", /is empty/],
    ["UPPER/case", /lowercase/],
    ["app:bad tag", /tag "bad tag"/],
    ["app@sha256:123", /not a sha256 digest/],
    // docker.io/library/ + 238 letters: 256 characters of repository name, one past the limit.
    [`${"a".repeat(238)}:1`, /longer than 255 characters/],
  ];
  for (const [input, re] of bad)
    it(`rejects "${input.slice(0, 40)}"`, () => assert.throws(() => parseReference(input), re));
  it("accepts a repository name of exactly 255 characters", () =>
    assert.equal(parseReference(`${"a".repeat(237)}:1`).path.length, "library/".length + 237));
});
