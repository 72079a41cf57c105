import { strict as assert } from "node:assert";
import * as crypto from "node:crypto";
import {
  acsDate,
  authorizationV3,
  canonicalQueryString,
  canonicalRequestV3,
  percentEncode,
  signatureV1,
  type V3Input,
} from "../../provider/core/infra/alicloud/signer";

describe("alicloud signer", () => {
  // V3 vectors produced by the current official packages (@alicloud/openapi-util 0.3.3
  // getAuthorization, installed next to @alicloud/openapi-client 0.4.15 and @alicloud/tea-util
  // 1.4.11 in a scratch directory on 2026-12-04). An empty value is signed as `empty=`; releases
  // before 0.3 signed the bare key, which gave the older vector
  // da772425f29289d3460d5fc961455d40c5e8c6afd0888b78a910c991e6a14846 for the first case.
  it("V3 matches the official SDK vector (empty value, repeated header in two cases)", () => {
    const auth = authorizationV3(
      {
        method: "GET",
        path: "",
        query: [
          ["test", "ok"],
          ["empty", ""],
        ],
        headers: { "x-acs-test": "http", "x-acs-TEST": "https" },
        payloadHash: "55e12e91650d2fec56ec74e1d3e4ddbfce2ef3a65890c2a19ecf88a307e76a23",
      },
      "acesskey",
      "secret",
    );
    assert.equal(
      auth,
      "ACS3-HMAC-SHA256 Credential=acesskey,SignedHeaders=x-acs-test,Signature=910e59dd385879346de704a06c96613f8157aa7124e6d1c4f2bdffa1e5588187",
    );
  });

  it("V3 matches the official SDK vector for an RPC call with an empty parameter and reserved characters", () => {
    const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const input: V3Input = {
      method: "POST",
      path: "/",
      query: [
        ["Action", "DescribeInstances"],
        ["RegionId", "cn-hangzhou"],
        ["NextToken", ""],
        ["Tag.1.Key", "sealer-cluster"],
        ["Tag.1.Value", "a b*~"],
      ],
      headers: {
        host: "ecs.cn-hangzhou.aliyuncs.com",
        "x-acs-action": "DescribeInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2026-12-04T23:30:00Z",
        "x-acs-signature-nonce": "3f6c1b2e-0000-4000-8000-000000000001",
        "x-acs-content-sha256": emptyHash,
      },
      payloadHash: emptyHash,
    };
    assert.match(
      canonicalRequestV3(input).canonicalRequest,
      /^POST\n\/\nAction=DescribeInstances&NextToken=&RegionId=/,
    );
    assert.equal(
      authorizationV3(input, "LTAI-test-key", "test-secret"),
      "ACS3-HMAC-SHA256 Credential=LTAI-test-key,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=caf93fa6ddac52948a1b636327ae8c6cb8efe3564bb019fef804d76e01591b0b",
    );
  });

  // V1 vectors from the same @alicloud/openapi-util 0.3.3 (getRPCSignature).
  it("V1 matches the official SDK vectors (an empty value signed as Key=, reserved characters)", () => {
    assert.equal(signatureV1({ test: "ok" }, "", "accessKeySecret"), "jHx/oHoHNrbVfhncHEvPdHXZwHU=");
    assert.equal(
      signatureV1(
        { Action: "DescribeInstances", RegionId: "cn-hangzhou", NextToken: "", "Tag.1.Value": "a b*~" },
        "POST",
        "test-secret",
      ),
      "kOQ5H/SpcRb61GeYwe5BAjWh2oQ=",
    );
  });

  it("builds the documented canonical request for an RPC call", () => {
    const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const input: V3Input = {
      method: "post",
      path: "/",
      query: [
        ["RegionId", "cn-shanghai"],
        ["ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"],
        ["Tag.1.Key", "a b*c~"],
      ],
      headers: {
        host: "ecs.cn-shanghai.aliyuncs.com",
        "x-acs-action": "RunInstances",
        "x-acs-version": "2014-05-26",
        "x-acs-date": "2023-10-26T10:22:32Z",
        "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
        "x-acs-content-sha256": emptyHash,
        accept: "application/json",
      },
      payloadHash: emptyHash,
    };
    const { canonicalRequest, signedHeaders } = canonicalRequestV3(input);
    assert.equal(
      signedHeaders,
      "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version",
    );
    assert.equal(
      canonicalRequest,
      [
        "POST",
        "/",
        "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai&Tag.1.Key=a%20b%2Ac~",
        "host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n",
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      ].join("\n"),
    );
    // The signature is HMAC-SHA256 over "ACS3-HMAC-SHA256\n" + hex(sha256(canonical request)), computed here by hand.
    const sts = "ACS3-HMAC-SHA256\n" + crypto.createHash("sha256").update(canonicalRequest).digest("hex");
    const sig = crypto.createHmac("sha256", "YourAccessKeySecret").update(sts).digest("hex");
    assert.equal(
      authorizationV3({ ...input, method: "POST" }, "YourAccessKeyId", "YourAccessKeySecret"),
      `ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=${sig}`,
    );
  });

  const enc: Array<[string, string]> = [
    ["a b", "a%20b"],
    ["a*b", "a%2Ab"],
    ["a~b", "a~b"],
    ["!'()", "%21%27%28%29"],
    ['["i-1","i-2"]', "%5B%22i-1%22%2C%22i-2%22%5D"],
    ["中", "%E4%B8%AD"],
  ];
  for (const [raw, want] of enc) it(`percent-encodes ${raw}`, () => assert.equal(percentEncode(raw), want));

  it("sorts the canonical query by encoded key", () => {
    assert.equal(
      canonicalQueryString([
        ["b", "2"],
        ["a", "1"],
        ["A", "0"],
        ["Tag.10.Key", "x"],
        ["Tag.2.Key", "y"],
      ]),
      "A=0&Tag.10.Key=x&Tag.2.Key=y&a=1&b=2",
    );
  });

  it("formats dates without milliseconds", () =>
    assert.equal(acsDate(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678))), "2024-01-02T03:04:05Z"));
});
