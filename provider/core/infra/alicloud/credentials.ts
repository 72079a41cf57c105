import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../../errors";
import { registerSecret } from "../../log";

export interface AccessKey {
  accessKeyId: string;
  accessKeySecret: string;
  securityToken?: string;
}

/**
 * Where credentials come from, first match wins: explicit values; ALIBABA_CLOUD_ACCESS_KEY_ID /
 * ALIBABA_CLOUD_ACCESS_KEY_SECRET (+ ALIBABA_CLOUD_SECURITY_TOKEN); ALICLOUD_ACCESS_KEY /
 * ALICLOUD_SECRET_KEY (Terraform/Pulumi alicloud); ACCESSKEYID / ACCESSKEYSECRET (sealer's own);
 * the `aliyun` CLI profile file (~/.aliyun/config.json, profile $ALIBABA_CLOUD_PROFILE or `current`).
 * The secret is registered with the log redactor at once.
 */
export function resolveCredentials(
  explicit: { accessKeyId: string; accessKeySecret: string } | undefined,
  env: NodeJS.ProcessEnv = process.env,
  home = os.homedir(),
): AccessKey {
  const found: AccessKey | undefined = explicit ?? fromEnv(env) ?? fromProfile(env, home);
  if (!found)
    throw new UserError(
      "no Alibaba Cloud credentials: set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET (or ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY), or configure a profile with `aliyun configure`",
    );
  registerSecret(found.accessKeySecret);
  registerSecret(found.securityToken);
  return found;
}

function fromEnv(env: NodeJS.ProcessEnv): AccessKey | undefined {
  const pairs: Array<[string, string]> = [
    ["ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
    ["ALICLOUD_ACCESS_KEY", "ALICLOUD_SECRET_KEY"],
    ["ACCESSKEYID", "ACCESSKEYSECRET"],
  ];
  for (const [idVar, secretVar] of pairs) {
    const id = env[idVar];
    const secret = env[secretVar];
    if (id && secret) {
      const token = env.ALIBABA_CLOUD_SECURITY_TOKEN ?? env.ALICLOUD_SECURITY_TOKEN;
      return token
        ? { accessKeyId: id, accessKeySecret: secret, securityToken: token }
        : { accessKeyId: id, accessKeySecret: secret };
    }
  }
  return undefined;
}

interface AliyunProfile {
  name?: string;
  mode?: string;
  access_key_id?: string;
  access_key_secret?: string;
  sts_token?: string;
}

function fromProfile(env: NodeJS.ProcessEnv, home: string): AccessKey | undefined {
  const file = env.ALIBABA_CLOUD_CONFIG_FILE ?? path.join(home, ".aliyun", "config.json");
  let doc: { current?: string; profiles?: AliyunProfile[] };
  try {
    doc = JSON.parse(fs.readFileSync(file, "utf8")) as typeof doc;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UserError(`reading Alibaba Cloud profile ${file}: ${(err as Error).message}`);
  }
  const name = env.ALIBABA_CLOUD_PROFILE ?? doc.current ?? "default";
  const p = (doc.profiles ?? []).find((x) => x.name === name);
  if (!p) return undefined;
  if (p.mode && p.mode !== "AK" && p.mode !== "StsToken")
    throw new UserError(
      `${file}: profile "${name}" uses mode ${p.mode}; only AK and StsToken profiles are supported — set ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET instead`,
    );
  if (!p.access_key_id || !p.access_key_secret) return undefined;
  return p.sts_token
    ? { accessKeyId: p.access_key_id, accessKeySecret: p.access_key_secret, securityToken: p.sts_token }
    : { accessKeyId: p.access_key_id, accessKeySecret: p.access_key_secret };
}
