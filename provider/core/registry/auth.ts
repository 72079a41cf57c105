/**
 * Pure pieces of registry authentication: parsing `WWW-Authenticate` challenges and building
 * token scopes (distribution "token authentication specification").
 */

export type Challenge =
  { scheme: "basic"; realm?: string } | { scheme: "bearer"; realm: string; service?: string; scope?: string };

/**
 * Parses the first usable challenge of a `WWW-Authenticate` header, e.g.
 * `Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a/b:pull"`.
 * Returns undefined for schemes we do not speak.
 */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*([A-Za-z]+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = (m[1] ?? "").toLowerCase();
  const params = parseParams(m[2] ?? "");
  if (scheme === "basic") return { scheme: "basic", ...(params.realm ? { realm: params.realm } : {}) };
  if (scheme === "bearer") {
    if (!params.realm) return undefined;
    return {
      scheme: "bearer",
      realm: params.realm,
      ...(params.service ? { service: params.service } : {}),
      ...(params.scope ? { scope: params.scope } : {}),
    };
  }
  return undefined;
}

/** `k="v", k2=v2` with quoted values that may hold commas and escaped quotes. */
export function parseParams(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    if (m[0] === "") break;
    out[(m[1] ?? "").toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
  }
  return out;
}

/** `repository:team/app:pull,push` */
export function repositoryScope(repo: string, actions: Array<"pull" | "push">): string {
  return `repository:${repo}:${[...new Set(actions)].sort().join(",")}`;
}

/**
 * Merges scopes for one token request: actions of the same resource are unioned, so a mount
 * from A into B asks once for `repository:A:pull repository:B:pull,push`.
 */
export function mergeScopes(scopes: string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const sc of scopes) {
    for (const one of sc.split(" ").filter(Boolean)) {
      const idx = one.lastIndexOf(":");
      if (idx < 0) continue;
      const resource = one.slice(0, idx);
      const set = byResource.get(resource) ?? new Set<string>();
      for (const a of one.slice(idx + 1).split(",")) if (a) set.add(a);
      byResource.set(resource, set);
    }
  }
  return [...byResource.entries()].map(([r, a]) => `${r}:${[...a].sort().join(",")}`).sort();
}
