import type { Logger } from "../../log";

export type Role = "master" | "node";

export interface GroupSpec {
  count: number;
  /** Exact ECS instance type, e.g. ecs.g7.large. */
  instanceType?: string;
  /** When no instanceType: vCPUs and memory; the first type in stock that fits is used, falling back across candidates. */
  cpu?: number;
  memoryGiB?: number;
  systemDiskGiB?: number;
  dataDisksGiB?: number[];
}

export interface AlicloudInfraSpec {
  cluster: string;
  region: string;
  zoneId?: string;
  /** Tests point these at the fake; nothing else differs. */
  endpoint?: { ecs?: string; vpc?: string };
  /** Else the environment (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET, ALICLOUD_ACCESS_KEY/SECRET_KEY) or ~/.aliyun/config.json. */
  credentials?: { accessKeyId: string; accessKeySecret: string };
  network?: {
    vpcId?: string;
    vSwitchId?: string;
    securityGroupId?: string;
    /** CIDR of a VPC/VSwitch we create. Default 172.16.0.0/16 (VPC) and its first /20 (VSwitch). */
    cidr?: string;
    /** Who may reach 22 and 6443 on a security group we create. Required then; 0.0.0.0/0 only when written explicitly. */
    sshCidr?: string;
  };
  masters: GroupSpec;
  nodes: GroupSpec;
  imageId: string;
  keyPairName?: string;
  password?: string;
  tags?: Record<string, string>;
  /** Allocate an EIP for master0. */
  eip?: boolean;
  /** Instances per RunInstances call (1..100). Default 100. */
  batchSize?: number;
  rateLimitPerMinute?: number;
  /** Timing knobs (tests and bench shorten them). */
  tuning?: Tuning;
}

export interface Tuning {
  retries?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  requestTimeoutMs?: number;
  /** First and largest wait between DescribeInstances polls (×1.5 per poll, ±20% jitter). Defaults 1 s and 5 s. */
  pollMinMs?: number;
  pollMaxMs?: number;
  /** Give up waiting for Running (or for deletion) after this long. Default 10 min. */
  pollTimeoutMs?: number;
  sshTimeoutMs?: number;
  signatureVersion?: "v3" | "v1";
}

export interface InstanceRecord {
  id: string;
  role: Role;
  privateIp: string;
  publicIp?: string;
  createdAt: string;
  clientToken: string;
  instanceType?: string;
}

export interface InfraState {
  /**
   * Random ID of this deployment, chosen by its first create and set as a tag on everything it
   * makes and in every ClientToken: what tells its instances from another deployment's under the
   * same cluster name. Absent only in states written before it existed (then nothing unlisted is adopted).
   */
  deploymentId?: string;
  vpcId?: string;
  vSwitchId?: string;
  securityGroupId?: string;
  zoneId?: string;
  created: { vpc: boolean; vSwitch: boolean; securityGroup: boolean };
  /** The 22/6443 rules were added to the security group we created. */
  sgRules?: boolean;
  eip?: { allocationId: string; ip: string; instanceId?: string; created?: boolean };
  /** master0 first, then the other masters, then nodes, each group oldest first. */
  instances: InstanceRecord[];
  /** RunInstances calls made so far; part of every ClientToken so a new call never reuses an old token. */
  generation?: number;
  /** Instance IDs a RunInstances call returned that are not yet Running with an IP. */
  pending?: Array<{ id: string; role: Role; clientToken: string; instanceType?: string }>;
}

export interface ApplyOptions {
  /** Called after every mutating step so callers persist partial state. */
  onState?: (s: InfraState) => Promise<void>;
  waitForSsh?: boolean;
  sshPort?: number;
  /** Which address to probe for SSH: the private IP (default) or the public one where there is one. */
  sshAddress?: "private" | "public";
  log?: Logger;
  /** On a failed create, delete what this run created instead of returning it as partial state. */
  rollbackOnFailure?: boolean;
}

export interface DestroyOptions {
  onState?: (s: InfraState) => Promise<void>;
  log?: Logger;
}
