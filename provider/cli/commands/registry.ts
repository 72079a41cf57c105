import type { Command } from "commander";
import { UserError } from "../../core/errors";
import { readUserFile } from "../../core/limits";
import { OciLayout } from "../../core/image/layout";
import { withLease } from "../../core/image/store";
import { formatBytes, log, registerSecret } from "../../core/log";
import { dataPaths } from "../../core/paths";
import { RegistryClient } from "../../core/registry/client";
import {
  RegistrySettings,
  loadSettings,
  normalizeRegistryHost,
  removeCredentials,
  saveCredentials,
  saveSettings,
} from "../../core/registry/credentials";
import { pullImage } from "../../core/registry/pull";
import { toRegistryError } from "../../core/registry/registry-error";
import { pushImage } from "../../core/registry/push";
import { printJson } from "../output";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

export function register(program: Command): void {
  program
    .command("push")
    .description(
      "Push an image from the local store to its registry (blobs the registry has are not sent again)",
    )
    .argument("<image>", "image reference, e.g. registry.example.com/team/app:1.0")
    .option("--source <local>", "push this local image under <image> instead of the image of that name")
    .option("--json", "print the result as JSON")
    .action(async (image: string, o: { source?: string; json?: boolean }) => {
      const store = new OciLayout(dataPaths.store());
      const r = await pushImage(image, { store, ...(o.source ? { source: o.source } : {}) });
      if (o.json) printJson(r);
      else
        process.stdout.write(
          `${image}: digest ${r.digest} (${r.blobsUploaded} blobs uploaded, ${formatBytes(r.bytesUploaded)}; ${r.blobsSkipped} present; ${r.blobsMounted} mounted)\n`,
        );
    });

  program
    .command("pull")
    .description("Pull an image (or a multi-platform index) into the local store, verifying every blob")
    .argument("<image>", "image reference")
    .option("--platform <os/arch>", "for a multi-platform image, store only this platform (default: all)")
    .option("--json", "print the result as JSON")
    .action(async (image: string, o: { platform?: string; json?: boolean }) => {
      // Under a lease, as a build is: until the reference is set, nothing else keeps the blobs
      // this pull stores or finds stored from a concurrent `sealer prune`.
      const r = await withLease(new OciLayout(dataPaths.store()), (store) =>
        pullImage(image, { store, ...(o.platform ? { platform: o.platform } : {}) }),
      );
      if (o.json) printJson(r);
      else
        process.stdout.write(
          `${image}: digest ${r.digest}${r.platforms.length ? ` [${r.platforms.join(", ")}]` : ""} (${r.blobsDownloaded} blobs downloaded, ${formatBytes(r.bytesDownloaded)}; ${r.blobsSkipped} already stored)\n`,
        );
    });

  program
    .command("login")
    .description("Check credentials against a registry and store them (docker-style, mode 0600)")
    .argument("<registry>", "registry host[:port]")
    .option("-u, --username <user>", "user name")
    .option("-p, --password <password>", "password (prefer --password-stdin)")
    .option("--password-stdin", "read the password from stdin")
    .option("--ca-file <file>", "trust this CA (PEM) for this registry")
    .option("--insecure", "plain HTTP or unverified TLS for this registry only")
    .action(
      async (
        registry: string,
        o: {
          username?: string;
          password?: string;
          passwordStdin?: boolean;
          caFile?: string;
          insecure?: boolean;
        },
      ) => {
        const host = normalizeRegistryHost(registry);
        if (o.password && o.passwordStdin)
          throw new UserError("use either -p/--password or --password-stdin, not both");
        const password = o.passwordStdin ? await readStdin() : o.password;
        if (o.passwordStdin && !password)
          throw new UserError("--password-stdin read no password: pipe it in");
        registerSecret(password);
        const patch: RegistrySettings = {};
        if (o.caFile) {
          const pem = readUserFile(
            o.caFile,
            "--ca-file",
            1 << 20,
            "give the registry's CA certificate (PEM)",
          );
          if (!pem.includes("-----BEGIN CERTIFICATE-----"))
            throw new UserError(`--ca-file ${o.caFile} holds no PEM certificate`);
          patch.ca = pem;
        }
        if (o.insecure) patch.insecure = true;
        const settings = { ...(await loadSettings(host)), ...patch };
        const creds = o.username && password !== undefined ? { username: o.username, password } : undefined;
        if (o.username && password === undefined)
          throw new UserError(`a password is needed for ${o.username}: pass -p or --password-stdin`);
        const client = await RegistryClient.open(host, { settings, credentials: creds ?? null });
        try {
          await client.verifyLogin();
        } catch (err) {
          // Socket errors in words ("the connection was refused ..."), as pull and push give them.
          throw toRegistryError(err, { registry: host, object: "login" });
        } finally {
          client.close();
        }
        if (patch.ca !== undefined || patch.insecure !== undefined) await saveSettings(host, patch);
        if (creds) await saveCredentials(host, creds);
        log.info(
          creds
            ? `login succeeded: credentials for ${host} saved in ${dataPaths.auth()}`
            : `${host} is reachable; settings saved`,
        );
      },
    );

  program
    .command("logout")
    .description("Remove stored credentials for a registry")
    .argument("<registry>", "registry host[:port]")
    .action(async (registry: string) => {
      const host = normalizeRegistryHost(registry);
      const had = await removeCredentials(host);
      log.info(had ? `removed credentials for ${host}` : `no stored credentials for ${host}`);
    });
}
