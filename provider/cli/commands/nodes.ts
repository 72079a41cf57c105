/**
 * `sealer nodes create|delete|list|forget-key`: local nodes (sshd in network namespaces on this
 * machine, root required) for tests, the demo and the Infra `local` provider; and forgetting a
 * pinned host key deliberately.
 */
import type { Command } from "commander";
import { intFlag } from "../int-flag";
import { UserError } from "../../core/errors";
import {
  createLocalNodes,
  deleteLocalNodes,
  listLocalNodes,
  nodeRunning,
  type LocalNode,
} from "../../core/infra/local";
import { dataPaths } from "../../core/paths";
import { forgetHostKey } from "../../core/ssh";
import { printJson, printTable } from "../output";

/** What we print about a node: never its passwords. */
function publicView(n: LocalNode) {
  const running = nodeRunning(n);
  return {
    name: n.name,
    ip: n.ip,
    port: n.port,
    keyPath: n.keyPath,
    user: "root",
    ...(n.sudoUser ? { sudoUser: n.sudoUser.name, sudoNeedsPassword: n.sudoUser.nopasswd === false } : {}),
    sshd: running.sshd ? "running" : "stopped",
    subnet: n.subnet,
    stateDir: n.stateDir,
  };
}

function printNodes(nodes: LocalNode[], json: boolean): void {
  if (json) return printJson(nodes.map(publicView));
  printTable(
    ["NAME", "IP", "SSHD", "SUDO USER", "KEY"],
    nodes.map((n) => {
      const v = publicView(n);
      return [v.name, v.ip, v.sshd, v.sudoUser ?? "-", v.keyPath];
    }),
  );
}

export function register(program: Command): void {
  const nodes = program
    .command("nodes")
    .description(
      "Local nodes on this machine (network namespace + own IP + copy-on-write /etc /usr /var /opt /root + private /tmp + own sshd); needs root",
    );

  nodes
    .command("create")
    .description(
      "Create N local nodes named <name>-1..N; prints their IPs and the SSH key that logs in as root",
    )
    .requiredOption("--count <n>", "number of nodes", intFlag("--count", 1, 200))
    .option("--name <prefix>", "name prefix (also the network namespace names)", "node")
    .option(
      "--subnet <cidr>",
      "a /24 for the nodes, e.g. 10.150.3.0/24 (default: a free one derived from the name)",
    )
    .option("--user <name>", "also create this non-root user with sudo rights (key login with the same key)")
    .option("--sudo", "give --user sudo rights without a password (the default)")
    .option("--password <password>", "password of --user (login and sudo)")
    .option("--sudo-password-required", "sudo asks --user for its password (needs --password)")
    .option("--root-password <password>", "set a root password inside the nodes (password login)")
    .option("--json", "print the nodes as JSON")
    .action(
      async (o: {
        count: number;
        name: string;
        subnet?: string;
        user?: string;
        sudo?: boolean;
        password?: string;
        sudoPasswordRequired?: boolean;
        rootPassword?: string;
        json?: boolean;
      }) => {
        const problems: string[] = [];
        if (o.sudoPasswordRequired && !o.password) problems.push("--sudo-password-required needs --password");
        if ((o.password || o.sudo || o.sudoPasswordRequired) && !o.user)
          problems.push("--password, --sudo and --sudo-password-required apply to --user; give --user NAME");
        if (o.sudo && o.sudoPasswordRequired)
          problems.push("--sudo (no password) and --sudo-password-required contradict each other; pick one");
        if (problems.length)
          throw new UserError(
            `Invalid options for sealer nodes create:\n${problems.map((p) => ` - ${p}`).join("\n")}`,
            { problems },
          );
        const created = await createLocalNodes({
          count: o.count,
          prefix: o.name,
          ...(o.subnet ? { subnet: o.subnet } : {}),
          ...(o.user
            ? {
                sudoUser: {
                  name: o.user,
                  nopasswd: !o.sudoPasswordRequired,
                  ...(o.password !== undefined ? { password: o.password } : {}),
                },
              }
            : {}),
          ...(o.rootPassword !== undefined ? { rootPassword: o.rootPassword } : {}),
        });
        printNodes(created, !!o.json);
      },
    );

  nodes
    .command("delete")
    .description(
      "Delete the local nodes with this name prefix: kills every process in them (sshd, anything started over SSH), removes namespaces, bridge and state",
    )
    .option("--name <prefix>", "name prefix given to create", "node")
    .option("--all", "delete every local node of this data directory")
    .option("--json", "print the deleted node names as JSON")
    .action(async (o: { name: string; all?: boolean; json?: boolean }) => {
      const prefixes = o.all ? [...new Set((await listLocalNodes()).map((n) => n.prefix))] : [o.name];
      const removed: string[] = [];
      for (const p of prefixes) removed.push(...(await deleteLocalNodes(p)));
      if (o.json) printJson(removed);
      else
        process.stdout.write(
          removed.length
            ? `deleted ${removed.join(", ")}\n`
            : `no local nodes named ${o.all ? "*" : o.name}-N\n`,
        );
    });

  nodes
    .command("list")
    .description("List local nodes and whether their sshd runs")
    .option("--name <prefix>", "only nodes with this name prefix")
    .option("--json", "print as JSON")
    .action(async (o: { name?: string; json?: boolean }) => {
      printNodes(await listLocalNodes(o.name), !!o.json);
    });

  nodes
    .command("forget-key")
    .description(
      "Forget the pinned SSH host key of a host (after a deliberate reinstall); the next connection records the new key",
    )
    .argument("<host>", "IP or host name as used in the Clusterfile")
    .option("--port <port>", "SSH port", intFlag("--port", 1, 65535), 22)
    .action(async (host: string, o: { port: number }) => {
      const file = dataPaths.knownHosts();
      const n = await forgetHostKey(file, host, o.port);
      process.stdout.write(
        n
          ? `forgot ${n} key(s) of ${host}${o.port === 22 ? "" : `:${o.port}`} in ${file}\n`
          : `no key of ${host} recorded in ${file}\n`,
      );
    });
}
