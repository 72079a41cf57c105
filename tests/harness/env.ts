/**
 * Sets environment variables (undefined unsets one) and returns what puts every one of them back
 * as it was, unset ones unset: tests point SEALER_HOME / DOCKER_CONFIG at their own directories.
 */
export function setEnv(vars: Record<string, string | undefined>): () => void {
  const prev = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const put = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v))
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
  };
  put(vars);
  return () => put(prev);
}
