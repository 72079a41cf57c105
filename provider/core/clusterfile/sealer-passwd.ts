import * as crypto from "node:crypto";

/**
 * sealer (v0.8+) saves Clusterfiles with `ssh.encrypted: true` and `passwd` in its own reversible
 * form: AES-256-CBC with a key built into sealer (the same for every installation, so this is
 * obfuscation, not protection), the IV being the key's first 16 bytes, PKCS#7 padding, base64.
 * Reading such a file back needs the same transformation. The key is sealer's published constant.
 */
const SEALER_AES_KEY = Buffer.from("ZU9WbzRMVXRQZ2pzTGowR2hNWUpIZjRkWld4aWVRWko=", "base64");

/** The plain password, or undefined when `text` is not in sealer's encrypted form. */
export function decryptSealerPasswd(text: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const data = Buffer.from(text, "base64");
  if (data.length === 0 || data.length % 16 !== 0) return undefined;
  try {
    const d = crypto.createDecipheriv("aes-256-cbc", SEALER_AES_KEY, SEALER_AES_KEY.subarray(0, 16));
    return Buffer.concat([d.update(data), d.final()]).toString("utf8");
  } catch {
    // Bad padding: not sealer's form.
    return undefined;
  }
}

/** sealer's encrypted form of `plain` (for tests and for writing files sealer can read). */
export function encryptSealerPasswd(plain: string): string {
  const c = crypto.createCipheriv("aes-256-cbc", SEALER_AES_KEY, SEALER_AES_KEY.subarray(0, 16));
  return Buffer.concat([c.update(plain, "utf8"), c.final()]).toString("base64");
}
