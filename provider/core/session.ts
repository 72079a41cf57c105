/**
 * The one session API both front doors (the CLI, the Pulumi Cluster resource) and library users
 * call: the planner's input (`Desired`) is assembled here and nowhere else — the Clusterfile,
 * the image's planning facts from the local store, and each host's platform — then planned.
 * An apply (core/apply: the CLI's run/apply, a Pulumi update) assembles its input here too;
 * destroy and rollback plans are re-exported so library users find every plan in one module.
 *
 * Host platforms, best first: probed (`uname -m`, only when the caller allows contacting hosts:
 * an apply, a Pulumi update), recorded in the applied state, a `--platform` override for hosts
 * with none recorded (sealer plan), else the image's default (the distribute reason then says
 * the platform was not probed). A preview never contacts a host.
 */
import { allHosts, whereInClusterfile, type ClusterSpec } from "./clusterfile";
import { ImageNotInStoreError, UserError, wrap } from "./errors";
import { planningFacts, planningFactsByDigest } from "./image/facts";
import type { OciLayout } from "./image/layout";
import { formatPlatform, parsePlatform } from "./image/store";
import { hostsWithoutPlatform } from "./exec/host-platform";
import { planDestroy } from "./plan/destroy";
import { plan as planSteps, type Desired, type PlanOptions } from "./plan/planner";
import { planRollback } from "./plan/rollback";
import type { AppliedState, ImageFacts, Plan } from "./plan/types";

export type { Desired } from "./plan/planner";

export interface ImageLookup {
  /** The manifest digest the caller pinned (Pulumi's imageDigest): a different image is refused. */
  expectDigest?: string;
  /**
   * A Pulumi preview: the ClusterImage built the new image under its preview name only (the tag
   * moves at `up`), so the image is planned by `expectDigest` under the real name.
   */
  previewById?: boolean;
}

/**
 * The image facts every plan and apply uses (the template env map included, so preview = apply).
 * Errors name where the image is written ("Clusterfile:5 spec.image: ...") and say what to do.
 */
export async function planningImage(
  layout: OciLayout,
  ref: string,
  spec: ClusterSpec,
  o: ImageLookup = {},
): Promise<ImageFacts> {
  const where =
    (ref === spec.image ? whereInClusterfile(spec, ["spec", "image"]) : undefined) ?? `image ${ref}`;
  let f: ImageFacts | undefined;
  try {
    f = await planningFacts(layout, ref);
  } catch (err) {
    // A first preview: only the preview build exists, found by its digest below.
    if (!(o.expectDigest && o.previewById)) throw readError(where, ref, err);
  }
  if (o.previewById && o.expectDigest && f?.manifestDigest !== o.expectDigest)
    f = (await planningFactsByDigest(layout, o.expectDigest, f?.reference ?? ref)) ?? f;
  if (!f)
    throw new ImageNotInStoreError(
      ref,
      `${where}: image ${ref} is not in the local store; run sealer pull ${ref} or build it first`,
    );
  if (o.expectDigest && f.manifestDigest !== o.expectDigest)
    throw new UserError(
      `${where}: image ${ref} in the local store is ${f.manifestDigest}, but imageDigest asks for ${o.expectDigest}; rebuild or pull the image`,
    );
  return f;
}

function readError(where: string, ref: string, err: unknown): Error {
  if (err instanceof UserError) return wrap(where, err);
  return new UserError(
    `${where}: image ${ref} cannot be read from the local store: run sealer pull ${ref} or sealer build first`,
    { cause: err },
  );
}

export interface DesiredInput {
  spec: ClusterSpec;
  image: ImageFacts;
  applied: AppliedState;
  /** "os/arch" assumed for hosts with no recorded platform (sealer plan --platform). */
  platform?: string;
  /** Probes hosts with no recorded platform; given only when the caller may contact hosts. */
  probe?: (ips: string[]) => Promise<Record<string, string>>;
}

/** The planner's input: the one place it is assembled. */
export async function assembleDesired(i: DesiredInput): Promise<Desired> {
  const unknown = hostsWithoutPlatform(allHosts(i.spec), i.applied);
  let hostPlatforms: Record<string, string> = {};
  if (i.probe && unknown.length > 0) hostPlatforms = await i.probe(unknown);
  else if (i.platform) {
    const want = formatPlatform(parsePlatform(i.platform));
    for (const ip of unknown) hostPlatforms[ip] = want;
  }
  return { cluster: i.spec, image: i.image, hostPlatforms };
}

/** The steps an install or update runs against the applied state. */
export function planInstall(d: Desired, applied: AppliedState, opts?: PlanOptions): Plan {
  return planSteps(d, applied, opts);
}

// Deleting the whole cluster and rolling back plan from the recorded state the same way.
export { planDestroy, planRollback };
