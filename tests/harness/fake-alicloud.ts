/**
 * A local, stateful fake of the Alibaba Cloud ECS (2014-05-26) and VPC (2016-04-28) RPC APIs for
 * the actions the infra provisioner uses. It listens on 127.0.0.1:<free port>, verifies request
 * signatures (V3 ACS3-HMAC-SHA256 and V1 HMAC-SHA1) with its own verifier — written from the
 * documentation, sharing no code with the client's signer, so a signing bug fails the tests —
 * keeps resource state with realistic transitions, honours ClientToken idempotency, paginates,
 * enforces a quota, and injects faults on demand. Error answers have the API's shape
 * `{RequestId, HostId, Code, Message, Recommend}` and 4xx/5xx statuses.
 */
import * as crypto from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export type Fault =
  | { kind: "throttle" }
  | { kind: "conflict" }
  | { kind: "http500" }
  | { kind: "http503" }
  /** Do the action, then destroy the socket without answering. */
  | { kind: "drop" }
  /** Do the action, answer after `ms`. */
  | { kind: "slow"; ms: number }
  | { kind: "error"; code: string; status: number; message?: string };

export interface FakeOptions {
  accessKeyId?: string;
  accessKeySecret?: string;
  region?: string;
  /** Pending for the first half, Starting for the second half, then Running. */
  bootDelayMs?: number;
  /** Stopping for this long after DeleteInstances, then gone. */
  deleteDelayMs?: number;
  /** VPC / VSwitch Pending time. */
  networkDelayMs?: number;
  /** EIP Associating / Unassociating time. */
  eipDelayMs?: number;
  /** Instance quota for the account (all states). */
  maxInstances?: number;
  /** Instance types that DescribeAvailableResource lists but RunInstances refuses with OperationDenied.NoStock. */
  noStockAtRun?: string[];
  /** Rate-based throttling storm: at most this many calls per rolling second, others get Throttling.User. */
  maxCallsPerSecond?: number;
}

interface Instance {
  InstanceId: string;
  InstanceName: string;
  HostName: string;
  InstanceType: string;
  ZoneId: string;
  VpcId: string;
  VSwitchId: string;
  SecurityGroupId: string;
  ImageId: string;
  privateIp: string;
  createdMs: number;
  deletedMs?: number;
  tags: Array<{ TagKey: string; TagValue: string }>;
  eip?: { ip: string; allocationId: string };
}

interface Net {
  id: string;
  cidr: string;
  createdMs: number;
  zoneId?: string;
  vpcId?: string;
  nextHost?: number;
}

interface Eip {
  AllocationId: string;
  IpAddress: string;
  instanceId?: string;
  changeMs: number;
  target: "InUse" | "Available";
}

export const FAKE_TYPES = [
  { id: "ecs.c7.large", cpu: 2, mem: 4 },
  { id: "ecs.g7.large", cpu: 2, mem: 8 },
  { id: "ecs.r7.large", cpu: 2, mem: 16 },
  { id: "ecs.c7.xlarge", cpu: 4, mem: 8 },
  { id: "ecs.g7.xlarge", cpu: 4, mem: 16 },
];

class ApiFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

// RFC 3986 unreserved characters stay; every other byte becomes %XX (upper-case hex).
function rfc3986(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-_.~]/.test(c) ? c : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** "a.b.c.d/bits" as a 32-bit number and a prefix length. */
function parseCidr(cidr: string): { n: number; bits: number } {
  const [a, b] = cidr.split("/");
  return { n: (a ?? "").split(".").reduce((x, o) => x * 256 + Number(o), 0), bits: Number(b) };
}

/** The entry `id` names, or the API's 404 fault `code`. */
function found<T>(map: Map<string, T>, id: string | undefined, code: string, message: string): T {
  const v = map.get(id ?? "");
  if (v === undefined) throw new ApiFault(404, code, message);
  return v;
}

function parsePairs(qs: string): Array<[string, string]> {
  if (!qs) return [];
  return qs
    .split("&")
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf("=");
      const dec = (x: string) => decodeURIComponent(x.replace(/\+/g, "%20"));
      return i < 0 ? [dec(kv), ""] : [dec(kv.slice(0, i)), dec(kv.slice(i + 1))];
    });
}

export class FakeAlicloud {
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
  readonly region: string;
  opts: Required<Omit<FakeOptions, "noStockAtRun" | "maxCallsPerSecond">> & {
    noStockAtRun: string[];
    maxCallsPerSecond?: number;
  };
  /** Requests received per action (every one, failed or not). */
  readonly calls: Record<string, number> = {};
  /** Every request's action and parameters, in order. */
  readonly log: Array<{ action: string; params: Record<string, string>; outcome: string }> = [];
  private server?: http.Server;
  private faults: Array<{ action: string; fault: Fault; left: number }> = [];
  private nonces = new Set<string>();
  private recent: number[] = [];
  private seq = 0;
  readonly instances = new Map<string, Instance>();
  readonly vpcs = new Map<string, Net>();
  readonly vswitches = new Map<string, Net>();
  readonly sgs = new Map<
    string,
    { id: string; vpcId: string; rules: Array<{ port: string; cidr: string; proto: string }> }
  >();
  readonly eips = new Map<string, Eip>();
  private tokens = new Map<string, { hash: string; body: unknown }>();

  constructor(o: FakeOptions = {}) {
    this.accessKeyId = o.accessKeyId ?? "LTAI5tFakeTestKeyId0001";
    this.accessKeySecret = o.accessKeySecret ?? "fakeSecret-0123456789abcdefABCDEF";
    this.region = o.region ?? "cn-test";
    this.opts = {
      accessKeyId: this.accessKeyId,
      accessKeySecret: this.accessKeySecret,
      region: this.region,
      bootDelayMs: o.bootDelayMs ?? 200,
      deleteDelayMs: o.deleteDelayMs ?? 100,
      networkDelayMs: o.networkDelayMs ?? 50,
      eipDelayMs: o.eipDelayMs ?? 50,
      maxInstances: o.maxInstances ?? 1000,
      noStockAtRun: o.noStockAtRun ?? [],
      maxCallsPerSecond: o.maxCallsPerSecond,
    };
  }

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
    return this.url;
  }

  get url(): string {
    const a = this.server?.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}`;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
  }

  /** Make the next `times` calls of `action` ("*" = any) fail or misbehave. */
  inject(action: string, fault: Fault, times = 1): void {
    this.faults.push({ action, fault, left: times });
  }

  resetCounts(): void {
    for (const k of Object.keys(this.calls)) delete this.calls[k];
    this.log.length = 0;
  }

  total(): number {
    return Object.values(this.calls).reduce((a, b) => a + b, 0);
  }

  /** Instances that still exist (not yet gone after a delete). */
  liveInstances(): Instance[] {
    return [...this.instances.values()].filter((i) => this.instanceStatus(i) !== "Deleted");
  }

  /** Seeds a ready network, as if made outside (e.g. by @pulumi/alicloud). */
  seedNetwork(o: { vpcCidr: string; vSwitchCidr: string; zoneId?: string }): {
    vpcId: string;
    vSwitchId: string;
    securityGroupId: string;
  } {
    const vpcId = this.newId("vpc");
    this.vpcs.set(vpcId, { id: vpcId, cidr: o.vpcCidr, createdMs: 0 });
    const vSwitchId = this.newId("vsw");
    this.vswitches.set(vSwitchId, {
      id: vSwitchId,
      cidr: o.vSwitchCidr,
      createdMs: 0,
      zoneId: o.zoneId ?? `${this.region}-a`,
      vpcId,
      nextHost: 1,
    });
    const securityGroupId = this.newId("sg");
    this.sgs.set(securityGroupId, { id: securityGroupId, vpcId, rules: [] });
    return { vpcId, vSwitchId, securityGroupId };
  }

  // -------------------------------------------------------------------------------------------

  // One not-found fault per resource kind, as the API words it; every action that names the
  // resource looks it up through these.
  private vpcOf(id: string | undefined): Net {
    return found(this.vpcs, id, "InvalidVpcId.NotFound", "Specified VPC is not found.");
  }

  private sgOf(id: string | undefined) {
    return found(
      this.sgs,
      id,
      "InvalidSecurityGroupId.NotFound",
      "The specified security group does not exist.",
    );
  }

  private eipOf(id: string | undefined): Eip {
    return found(this.eips, id, "InvalidAllocationId.NotFound", "Specified allocation ID is not found.");
  }

  private newId(prefix: string): string {
    this.seq++;
    return `${prefix}-${crypto.createHash("md5").update(`${prefix}${this.seq}${Math.random()}`).digest("hex").slice(0, 20)}`;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const requestId = crypto.randomUUID().toUpperCase();
    const rawUrl = req.url ?? "/";
    const qi = rawUrl.indexOf("?");
    const rawPath = qi < 0 ? rawUrl : rawUrl.slice(0, qi);
    const rawQuery = qi < 0 ? "" : rawUrl.slice(qi + 1);
    const queryPairs = parsePairs(rawQuery);
    const ctype = String(req.headers["content-type"] ?? "");
    const bodyPairs = ctype.startsWith("application/x-www-form-urlencoded")
      ? parsePairs(body.toString("utf8"))
      : [];
    const params: Record<string, string> = Object.fromEntries([...queryPairs, ...bodyPairs]);
    const hostId = String(req.headers.host ?? "127.0.0.1");
    let action = String(req.headers["x-acs-action"] ?? params.Action ?? "");
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, {
        "content-type": "application/json;charset=utf-8",
        "x-acs-request-id": requestId,
      });
      res.end(JSON.stringify(payload));
    };
    const fail = (e: ApiFault) => {
      this.log.push({ action, params, outcome: e.code });
      send(e.status, {
        RequestId: requestId,
        HostId: hostId,
        Code: e.code,
        Message: e.message,
        Recommend: `https://api.aliyun.com/troubleshoot?q=${e.code}&product=Ecs`,
      });
    };
    // Counted before authentication: a refused call is still a call.
    this.calls[action || "?"] = (this.calls[action || "?"] ?? 0) + 1;
    try {
      action = this.authenticate(req, rawPath, queryPairs, body, params);
      const fault = this.takeFault(action);
      if (this.opts.maxCallsPerSecond !== undefined) {
        const now = Date.now();
        this.recent = this.recent.filter((t) => now - t < 1000);
        if (this.recent.length >= this.opts.maxCallsPerSecond)
          throw new ApiFault(400, "Throttling.User", "Request was denied due to user flow control.");
        this.recent.push(now);
      }
      if (fault) {
        switch (fault.kind) {
          case "throttle":
            throw new ApiFault(400, "Throttling.User", "Request was denied due to user flow control.");
          case "conflict":
            throw new ApiFault(
              409,
              "OperationConflict",
              "Request was denied due to conflict with a previous request.",
            );
          case "http500":
            throw new ApiFault(
              500,
              "InternalError",
              "The request processing has failed due to some unknown error.",
            );
          case "http503":
            throw new ApiFault(
              503,
              "ServiceUnavailable",
              "The request has failed due to a temporary failure of the server.",
            );
          case "error":
            throw new ApiFault(fault.status, fault.code, fault.message ?? fault.code);
          case "drop": {
            this.dispatch(action, params);
            this.log.push({ action, params, outcome: "dropped" });
            req.socket.destroy();
            return;
          }
          case "slow": {
            const out = this.dispatch(action, params);
            await new Promise((r) => setTimeout(r, fault.ms));
            this.log.push({ action, params, outcome: "slow" });
            if (!res.destroyed && !req.socket.destroyed) send(200, { RequestId: requestId, ...out });
            return;
          }
        }
      }
      const out = this.dispatch(action, params);
      this.log.push({ action, params, outcome: "ok" });
      send(200, { RequestId: requestId, ...out });
    } catch (e) {
      if (e instanceof ApiFault) fail(e);
      else fail(new ApiFault(500, "InternalError", (e as Error).message));
    }
  }

  private takeFault(action: string): Fault | undefined {
    const f = this.faults.find((x) => x.left > 0 && (x.action === action || x.action === "*"));
    if (!f) return undefined;
    f.left--;
    return f.fault;
  }

  /** Checks the signature; returns the action. */
  private authenticate(
    req: http.IncomingMessage,
    rawPath: string,
    query: Array<[string, string]>,
    body: Buffer,
    params: Record<string, string>,
  ): string {
    const auth = req.headers.authorization;
    if (auth) {
      const m = /^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})$/.exec(
        auth,
      );
      if (!m)
        throw new ApiFault(
          400,
          "IncompleteSignature",
          "The request signature does not conform to Aliyun standards.",
        );
      const [, keyId, signedList, sig] = m as unknown as [string, string, string, string];
      const action = String(req.headers["x-acs-action"] ?? "");
      if (!action)
        throw new ApiFault(
          400,
          "MissingParameter",
          'The input parameter "x-acs-action" that is mandatory for processing this request is not supplied.',
        );
      if (keyId !== this.accessKeyId)
        throw new ApiFault(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
      const signedNames = signedList.split(";");
      for (const must of [
        "host",
        "x-acs-action",
        "x-acs-content-sha256",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-version",
      ])
        if (!signedNames.includes(must))
          throw new ApiFault(400, "IncompleteSignature", `The header ${must} must be signed.`);
      const bodyHash = crypto.createHash("sha256").update(body).digest("hex");
      if (req.headers["x-acs-content-sha256"] !== bodyHash)
        throw new ApiFault(
          400,
          "SignatureDoesNotMatch",
          "The request body does not match x-acs-content-sha256.",
        );
      this.checkFreshness(
        String(req.headers["x-acs-date"] ?? ""),
        String(req.headers["x-acs-signature-nonce"] ?? ""),
      );
      const canonHeaders = signedNames.map((n) => `${n}:${String(req.headers[n] ?? "").trim()}\n`).join("");
      const canonQuery = query
        .map(([k, v]) => ({ k: rfc3986(k), v: rfc3986(v) }))
        .sort((a, b) => Buffer.compare(Buffer.from(a.k), Buffer.from(b.k)))
        .map(({ k, v }) => `${k}=${v}`)
        .join("&");
      const creq = `${req.method}\n${rawPath || "/"}\n${canonQuery}\n${canonHeaders}\n${signedList}\n${bodyHash}`;
      const sts = "ACS3-HMAC-SHA256\n" + crypto.createHash("sha256").update(creq, "utf8").digest("hex");
      const want = crypto.createHmac("sha256", this.accessKeySecret).update(sts, "utf8").digest("hex");
      if (!crypto.timingSafeEqual(Buffer.from(want), Buffer.from(sig)))
        throw new ApiFault(
          400,
          "SignatureDoesNotMatch",
          `Specified signature does not match our calculation. server string to sign is:${sts}`,
        );
      return action;
    }
    // V1: everything in the parameters.
    if (!params.Signature)
      throw new ApiFault(
        400,
        "MissingParameter",
        'An input parameter "Signature" that is mandatory for processing the request is not supplied.',
      );
    if (params.AccessKeyId !== this.accessKeyId)
      throw new ApiFault(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.");
    if (params.SignatureMethod !== "HMAC-SHA1" || params.SignatureVersion !== "1.0")
      throw new ApiFault(400, "InvalidParameter", 'The specified parameter "SignatureMethod" is not valid.');
    this.checkFreshness(params.Timestamp ?? "", params.SignatureNonce ?? "");
    const pairs = Object.entries(params)
      .filter(([k]) => k !== "Signature")
      .map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`)
      .sort();
    const sts = `${req.method}&%2F&${rfc3986(pairs.join("&"))}`;
    const want = crypto
      .createHmac("sha1", this.accessKeySecret + "&")
      .update(sts, "utf8")
      .digest("base64");
    if (want !== params.Signature)
      throw new ApiFault(
        400,
        "SignatureDoesNotMatch",
        `Specified signature is not matched with our calculation. server string to sign is:${sts}`,
      );
    for (const k of [
      "Signature",
      "AccessKeyId",
      "SignatureMethod",
      "SignatureVersion",
      "SignatureNonce",
      "Timestamp",
      "Format",
      "Version",
    ])
      delete params[k];
    const action = params.Action ?? "";
    delete params.Action;
    return action;
  }

  private checkFreshness(date: string, nonce: string): void {
    const t = Date.parse(date);
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(date) || Number.isNaN(t))
      throw new ApiFault(
        400,
        "InvalidTimeStamp.Format",
        "Specified time stamp or date value is not well formatted.",
      );
    if (Math.abs(Date.now() - t) > 15 * 60_000)
      throw new ApiFault(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.");
    if (!nonce) throw new ApiFault(400, "MissingParameter", "SignatureNonce is mandatory.");
    if (this.nonces.has(nonce))
      throw new ApiFault(400, "SignatureNonceUsed", "Specified signature nonce was used already.");
    this.nonces.add(nonce);
  }

  // -------------------------------------------------------------------------------------------

  private dispatch(action: string, p: Record<string, string>): Record<string, unknown> {
    if (p.RegionId !== undefined && p.RegionId !== this.region && action !== "DescribeInstanceTypes")
      throw new ApiFault(
        400,
        "InvalidRegionId.NotFound",
        `The specified RegionId ${p.RegionId} does not exist.`,
      );
    const idem = (fn: () => Record<string, unknown>) => {
      const token = p.ClientToken;
      if (!token) return fn();
      const key = `${action}\0${token}`;
      const { ClientToken: _t, ...rest } = p;
      const hash = JSON.stringify(Object.entries(rest).sort());
      const prev = this.tokens.get(key);
      if (prev) {
        if (prev.hash !== hash)
          throw new ApiFault(
            400,
            "IdempotentParameterMismatch",
            "The request uses the same client token as a previous, but non-identical request.",
          );
        return prev.body as Record<string, unknown>;
      }
      const out = fn();
      this.tokens.set(key, { hash, body: out });
      return out;
    };
    switch (action) {
      case "CreateVpc":
        return idem(() => {
          const id = this.newId("vpc");
          this.vpcs.set(id, { id, cidr: p.CidrBlock ?? "172.16.0.0/12", createdMs: Date.now() });
          return { VpcId: id, VRouterId: this.newId("vrt"), RouteTableId: this.newId("vtb") };
        });
      case "DescribeVpcs": {
        const list = [...this.vpcs.values()].filter((v) => !p.VpcId || v.id === p.VpcId);
        return {
          TotalCount: list.length,
          PageNumber: 1,
          PageSize: 10,
          Vpcs: { Vpc: list.map((v) => ({ VpcId: v.id, CidrBlock: v.cidr, Status: this.netStatus(v) })) },
        };
      }
      case "DeleteVpc": {
        const v = this.vpcOf(p.VpcId);
        if ([...this.vswitches.values()].some((s) => s.vpcId === v.id))
          throw new ApiFault(400, "DependencyViolation.VSwitch", "Specified VPC still has VSwitch.");
        if ([...this.sgs.values()].some((s) => s.vpcId === v.id))
          throw new ApiFault(
            400,
            "DependencyViolation.SecurityGroup",
            "Specified VPC still has security group.",
          );
        this.vpcs.delete(v.id);
        return {};
      }
      case "CreateVSwitch":
        return idem(() => {
          const vpc = this.vpcOf(p.VpcId);
          if (this.netStatus(vpc) !== "Available")
            throw new ApiFault(
              400,
              "IncorrectVpcStatus",
              "The current VPC status does not support this operation.",
            );
          if (!p.ZoneId) throw new ApiFault(400, "MissingParameter", "ZoneId is mandatory.");
          if (!this.cidrWithin(p.CidrBlock ?? "", vpc.cidr))
            throw new ApiFault(
              400,
              "InvalidCidrBlock.Malformed",
              "Specified CIDR block is not within the VPC.",
            );
          const id = this.newId("vsw");
          this.vswitches.set(id, {
            id,
            cidr: p.CidrBlock ?? "",
            createdMs: Date.now(),
            zoneId: p.ZoneId,
            vpcId: vpc.id,
            nextHost: 1,
          });
          return { VSwitchId: id };
        });
      case "DescribeVSwitches": {
        const list = [...this.vswitches.values()].filter(
          (v) => (!p.VSwitchId || v.id === p.VSwitchId) && (!p.VpcId || v.vpcId === p.VpcId),
        );
        return {
          TotalCount: list.length,
          PageNumber: 1,
          PageSize: 10,
          VSwitches: {
            VSwitch: list.map((v) => ({
              VSwitchId: v.id,
              VpcId: v.vpcId,
              ZoneId: v.zoneId,
              CidrBlock: v.cidr,
              Status: this.netStatus(v),
            })),
          },
        };
      }
      case "DeleteVSwitch": {
        const v = found(
          this.vswitches,
          p.VSwitchId,
          "InvalidVSwitchId.NotFound",
          "Specified VSwitch is not found.",
        );
        if (this.liveInstances().some((i) => i.VSwitchId === v.id))
          throw new ApiFault(
            400,
            "DependencyViolation",
            "Specified VSwitch has resources (instances) in use.",
          );
        this.vswitches.delete(v.id);
        return {};
      }
      case "CreateSecurityGroup":
        return idem(() => {
          const vpc = this.vpcOf(p.VpcId);
          const id = this.newId("sg");
          this.sgs.set(id, { id, vpcId: vpc.id, rules: [] });
          return { SecurityGroupId: id };
        });
      case "AuthorizeSecurityGroup":
        return idem(() => {
          const sg = this.sgOf(p.SecurityGroupId);
          for (let n = 1; p[`Permissions.${n}.PortRange`]; n++) {
            const cidr = p[`Permissions.${n}.SourceCidrIp`] ?? "";
            if (!cidr)
              throw new ApiFault(
                400,
                "MissingParameter.Source",
                "A source (SourceCidrIp or group) is mandatory.",
              );
            sg.rules.push({
              port: p[`Permissions.${n}.PortRange`] ?? "",
              cidr,
              proto: p[`Permissions.${n}.IpProtocol`] ?? "",
            });
          }
          return {};
        });
      case "DeleteSecurityGroup": {
        const sg = this.sgOf(p.SecurityGroupId);
        if (this.liveInstances().some((i) => i.SecurityGroupId === sg.id))
          throw new ApiFault(
            403,
            "DependencyViolation",
            "There is still instance(s) in the specified security group.",
          );
        this.sgs.delete(sg.id);
        return {};
      }
      case "DescribeZones":
        return {
          Zones: {
            Zone: [`${this.region}-b`, `${this.region}-a`].map((z) => ({
              ZoneId: z,
              LocalName: z,
              AvailableResourceCreation: { ResourceTypes: ["Instance", "Disk", "VSwitch"] },
              AvailableInstanceTypes: { InstanceTypes: FAKE_TYPES.map((t) => t.id) },
            })),
          },
        };
      case "DescribeAvailableResource": {
        if (p.DestinationResource !== "InstanceType")
          throw new ApiFault(400, "InvalidParameter", "only DestinationResource=InstanceType is faked");
        const zones = [`${this.region}-a`, `${this.region}-b`].filter((z) => !p.ZoneId || z === p.ZoneId);
        const types = FAKE_TYPES.filter(
          (t) =>
            (!p.Cores || t.cpu === Number(p.Cores)) &&
            (!p.Memory || t.mem === Number(p.Memory)) &&
            (!p.InstanceType || t.id === p.InstanceType),
        );
        return {
          AvailableZones: {
            AvailableZone: zones.map((z) => ({
              ZoneId: z,
              RegionId: this.region,
              Status: "Available",
              StatusCategory: "WithStock",
              AvailableResources: {
                AvailableResource: [
                  {
                    Type: "InstanceType",
                    SupportedResources: {
                      SupportedResource: types.map((t) => ({
                        Value: t.id,
                        Status: "Available",
                        StatusCategory: "WithStock",
                      })),
                    },
                  },
                ],
              },
            })),
          },
        };
      }
      case "DescribeInstanceTypes": {
        const all = FAKE_TYPES.filter(
          (t) =>
            (!p.MinimumCpuCoreCount || t.cpu >= Number(p.MinimumCpuCoreCount)) &&
            (!p.MinimumMemorySize || t.mem >= Number(p.MinimumMemorySize)),
        );
        const max = Math.min(Number(p.MaxResults ?? 100), 1600);
        const start = p.NextToken ? Number(Buffer.from(p.NextToken, "base64").toString()) : 0;
        const page = all.slice(start, start + max);
        const next = start + max < all.length ? Buffer.from(String(start + max)).toString("base64") : "";
        return {
          NextToken: next,
          InstanceTypes: {
            InstanceType: page.map((t) => ({ InstanceTypeId: t.id, CpuCoreCount: t.cpu, MemorySize: t.mem })),
          },
        };
      }
      case "RunInstances":
        return idem(() => this.runInstances(p));
      case "DescribeInstances":
        return this.describeInstances(p);
      case "DeleteInstances": {
        const ids: string[] = [];
        for (let n = 1; p[`InstanceId.${n}`]; n++) ids.push(p[`InstanceId.${n}`] ?? "");
        if (ids.length === 0 || ids.length > 100)
          throw new ApiFault(
            400,
            "InvalidParameter.InstanceIds",
            "InstanceId.N must name 1 to 100 instances.",
          );
        for (const id of ids) {
          const i = this.instances.get(id);
          if (!i || this.instanceStatus(i) === "Deleted")
            throw new ApiFault(
              404,
              "InvalidInstanceId.NotFound",
              `The specified InstanceId ${id} does not exist.`,
            );
          if (p.Force !== "true" && this.instanceStatus(i) !== "Stopped")
            throw new ApiFault(
              403,
              "IncorrectInstanceStatus",
              "The current status of the resource does not support this operation.",
            );
          if (i.eip)
            throw new ApiFault(403, "DependencyViolation.EipAddress", "The instance still has an EIP bound.");
        }
        for (const id of ids) {
          const i = this.instances.get(id);
          if (i && i.deletedMs === undefined) i.deletedMs = Date.now();
        }
        return {};
      }
      case "AllocateEipAddress":
        return idem(() => {
          const id = this.newId("eip");
          const ip = `198.51.100.${(this.eips.size % 250) + 1}`;
          this.eips.set(id, { AllocationId: id, IpAddress: ip, changeMs: 0, target: "Available" });
          return { AllocationId: id, EipAddress: ip };
        });
      case "AssociateEipAddress":
        return idem(() => {
          const e = this.eipOf(p.AllocationId);
          const i = this.instances.get(p.InstanceId ?? "");
          if (!i || this.instanceStatus(i) === "Deleted")
            throw new ApiFault(404, "InvalidInstanceId.NotFound", "The specified instance does not exist.");
          if (this.instanceStatus(i) !== "Running")
            throw new ApiFault(400, "IncorrectInstanceStatus", "The instance is not running.");
          if (this.eipStatus(e) !== "Available")
            throw new ApiFault(400, "IncorrectEipStatus", "The EIP is not available.");
          e.instanceId = i.InstanceId;
          e.target = "InUse";
          e.changeMs = Date.now();
          i.eip = { ip: e.IpAddress, allocationId: e.AllocationId };
          return {};
        });
      case "UnassociateEipAddress": {
        const e = this.eipOf(p.AllocationId);
        if (this.eipStatus(e) !== "InUse")
          throw new ApiFault(400, "IncorrectEipStatus", "The EIP is not bound.");
        const i = this.instances.get(e.instanceId ?? "");
        if (i) delete i.eip;
        e.target = "Available";
        e.changeMs = Date.now();
        delete e.instanceId;
        return {};
      }
      case "DescribeEipAddresses": {
        const list = [...this.eips.values()].filter(
          (e) => !p.AllocationId || e.AllocationId === p.AllocationId,
        );
        return {
          TotalCount: list.length,
          EipAddresses: {
            EipAddress: list.map((e) => ({
              AllocationId: e.AllocationId,
              IpAddress: e.IpAddress,
              Status: this.eipStatus(e),
              InstanceId: e.instanceId ?? "",
            })),
          },
        };
      }
      case "ReleaseEipAddress": {
        const e = this.eipOf(p.AllocationId);
        if (this.eipStatus(e) !== "Available")
          throw new ApiFault(400, "IncorrectEipStatus", "The EIP is still bound.");
        this.eips.delete(e.AllocationId);
        return {};
      }
      default:
        throw new ApiFault(
          404,
          "InvalidAction.NotFound",
          `Specified api ${action} is not found, please check your url and method.`,
        );
    }
  }

  private runInstances(p: Record<string, string>): Record<string, unknown> {
    const amount = Number(p.Amount ?? "1");
    const min = Number(p.MinAmount ?? p.Amount ?? "1");
    if (!Number.isInteger(amount) || amount < 1 || amount > 100)
      throw new ApiFault(400, "InvalidParameter.Amount", "Amount must be 1..100.");
    if (min > amount)
      throw new ApiFault(400, "InvalidParameter.MinAmount", "MinAmount must not exceed Amount.");
    if (!p.ImageId) throw new ApiFault(400, "MissingParameter.ImageId", "ImageId is mandatory.");
    const type = FAKE_TYPES.find((t) => t.id === p.InstanceType);
    if (!type)
      throw new ApiFault(
        400,
        "InvalidInstanceType.ValueNotSupported",
        `The specified InstanceType ${p.InstanceType} does not exist or is not supported.`,
      );
    if (this.opts.noStockAtRun.includes(type.id))
      throw new ApiFault(
        403,
        "OperationDenied.NoStock",
        "The requested resource is sold out in the specified zone; try other types of resources or other regions and zones.",
      );
    const vsw = found(
      this.vswitches,
      p.VSwitchId,
      "InvalidVSwitchId.NotFound",
      "The specified VSwitchId does not exist.",
    );
    if (p.ZoneId && p.ZoneId !== vsw.zoneId)
      throw new ApiFault(400, "InvalidVSwitchId.ZoneMismatch", "The VSwitch is not in the specified zone.");
    const sg = this.sgOf(p.SecurityGroupId);
    if (sg.vpcId !== vsw.vpcId)
      throw new ApiFault(
        400,
        "InvalidSecurityGroupId.VPCMismatch",
        "The security group and VSwitch are not in the same VPC.",
      );
    if (!p.Password && !p.KeyPairName)
      throw new ApiFault(
        400,
        "MissingParameter.Credential",
        "Password or KeyPairName is mandatory for a Linux image in this fake.",
      );
    const room = this.opts.maxInstances - this.liveInstances().length;
    if (room < min)
      throw new ApiFault(
        403,
        "QuotaExceed.ElasticQuota",
        `The number of instances exceeds the quota: ${room} more allowed, ${min} requested.`,
      );
    const n = Math.min(amount, room);
    const tags: Array<{ TagKey: string; TagValue: string }> = [];
    for (let k = 1; p[`Tag.${k}.Key`]; k++)
      tags.push({ TagKey: p[`Tag.${k}.Key`] ?? "", TagValue: p[`Tag.${k}.Value`] ?? "" });
    const ids: string[] = [];
    for (let k = 0; k < n; k++) {
      const id = this.newId("i");
      const suffix = p.UniqueSuffix === "true" ? String(this.instances.size + 1).padStart(3, "0") : "";
      this.instances.set(id, {
        InstanceId: id,
        InstanceName: (p.InstanceName ?? id) + suffix,
        HostName: (p.HostName ?? id) + suffix,
        InstanceType: type.id,
        ZoneId: vsw.zoneId ?? "",
        VpcId: vsw.vpcId ?? "",
        VSwitchId: vsw.id,
        SecurityGroupId: sg.id,
        ImageId: p.ImageId,
        privateIp: this.allocIp(vsw),
        createdMs: Date.now(),
        tags,
      });
      ids.push(id);
    }
    return { InstanceIdSets: { InstanceIdSet: ids }, TradePrice: 0, OrderId: String(Date.now()) };
  }

  private describeInstances(p: Record<string, string>): Record<string, unknown> {
    let list = [...this.instances.values()].filter((i) => this.instanceStatus(i) !== "Deleted");
    if (p.InstanceIds) {
      let ids: string[];
      try {
        ids = JSON.parse(p.InstanceIds) as string[];
      } catch {
        throw new ApiFault(400, "InvalidInstanceIds.Malformed", "InstanceIds must be a JSON array.");
      }
      if (ids.length > 100)
        throw new ApiFault(400, "InvalidInstanceIds.ValueNotSupported", "At most 100 InstanceIds.");
      list = list.filter((i) => ids.includes(i.InstanceId));
    }
    if (p.VpcId) list = list.filter((i) => i.VpcId === p.VpcId);
    if (p.VSwitchId) list = list.filter((i) => i.VSwitchId === p.VSwitchId);
    for (let k = 1; p[`Tag.${k}.Key`]; k++) {
      const key = p[`Tag.${k}.Key`];
      const val = p[`Tag.${k}.Value`];
      list = list.filter((i) =>
        i.tags.some((t) => t.TagKey === key && (val === undefined || t.TagValue === val)),
      );
    }
    list.sort((a, b) => a.createdMs - b.createdMs || (a.InstanceId < b.InstanceId ? -1 : 1));
    const render = (i: Instance) => {
      const status = this.instanceStatus(i);
      return {
        InstanceId: i.InstanceId,
        InstanceName: i.InstanceName,
        HostName: i.HostName,
        InstanceType: i.InstanceType,
        ZoneId: i.ZoneId,
        RegionId: this.region,
        ImageId: i.ImageId,
        Status: status,
        CreationTime: new Date(i.createdMs).toISOString().slice(0, 16) + "Z", // minute resolution, like the API
        VpcAttributes: {
          VpcId: i.VpcId,
          VSwitchId: i.VSwitchId,
          PrivateIpAddress: { IpAddress: status === "Pending" ? [] : [i.privateIp] },
        },
        PublicIpAddress: { IpAddress: [] },
        EipAddress: i.eip
          ? { IpAddress: i.eip.ip, AllocationId: i.eip.allocationId }
          : { IpAddress: "", AllocationId: "" },
        SecurityGroupIds: { SecurityGroupId: [i.SecurityGroupId] },
        Tags: { Tag: i.tags },
      };
    };
    if (p.NextToken !== undefined || p.MaxResults !== undefined) {
      const max = Math.min(Number(p.MaxResults ?? 10), 100);
      const start = p.NextToken ? Number(Buffer.from(p.NextToken, "base64").toString()) : 0;
      const page = list.slice(start, start + max);
      const next = start + max < list.length ? Buffer.from(String(start + max)).toString("base64") : "";
      return { TotalCount: list.length, NextToken: next, Instances: { Instance: page.map(render) } };
    }
    const size = Math.min(Number(p.PageSize ?? 10), 100);
    const num = Number(p.PageNumber ?? 1);
    const page = list.slice((num - 1) * size, num * size);
    return {
      TotalCount: list.length,
      PageNumber: num,
      PageSize: size,
      Instances: { Instance: page.map(render) },
    };
  }

  instanceStatus(i: Instance): string {
    const now = Date.now();
    if (i.deletedMs !== undefined)
      return now - i.deletedMs >= this.opts.deleteDelayMs ? "Deleted" : "Stopping";
    const age = now - i.createdMs;
    if (age < this.opts.bootDelayMs / 2) return "Pending";
    if (age < this.opts.bootDelayMs) return "Starting";
    return "Running";
  }

  private netStatus(n: Net): string {
    return Date.now() - n.createdMs >= this.opts.networkDelayMs ? "Available" : "Pending";
  }

  private eipStatus(e: Eip): string {
    const settled = Date.now() - e.changeMs >= this.opts.eipDelayMs;
    if (e.target === "InUse") return settled ? "InUse" : "Associating";
    return settled ? "Available" : e.changeMs === 0 ? "Available" : "Unassociating";
  }

  private allocIp(vsw: Net): string {
    const { n, bits } = parseCidr(vsw.cidr);
    const host = vsw.nextHost ?? 1;
    if (host >= 2 ** (32 - bits) - 3)
      throw new ApiFault(
        400,
        "InvalidVSwitchId.IpNotEnough",
        "The specified VSwitch has not enough IP addresses.",
      );
    vsw.nextHost = host + 1;
    const ip = n + host;
    return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join(".");
  }

  private cidrWithin(inner: string, outer: string): boolean {
    const i = parseCidr(inner);
    const o = parseCidr(outer);
    if (!(i.bits >= o.bits)) return false;
    const mask = o.bits === 0 ? 0 : (0xffffffff << (32 - o.bits)) >>> 0;
    return (i.n & mask) >>> 0 === (o.n & mask) >>> 0;
  }
}
