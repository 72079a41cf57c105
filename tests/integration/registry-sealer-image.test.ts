/**
 * An image in sealer's documented format (OCI manifest + `sealer.image.extension` and
 * `sealer.image.container.images` annotations, base-image rootfs layout with a `registry/`
 * layer) — assembled here by hand, not by our builder — is pushed with skopeo,
 * pulled with our client, and understood as a cluster image by imageFacts.
 */
import * as assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { imageFacts } from "../../provider/core/image/facts";
import { OciLayout } from "../../provider/core/image/layout";
import { Descriptor, Manifest, MediaTypes } from "../../provider/core/image/types";
import { pullImage } from "../../provider/core/registry/pull";
import { TestRegistry, skopeo, startRegistry, tarOf, useWorkDir } from "../harness/registry";

describe("images built by sealer (documented format) pull and read as cluster images", function () {
  this.timeout(120_000);
  const work = useWorkDir("sealerimg");
  let reg: TestRegistry;

  before(async () => {
    reg = await startRegistry();
  });
  after(async () => {
    await reg?.stop();
  });

  it("skopeo-pushed sealer image -> our pull -> imageFacts", async () => {
    // The image layout written by hand: sealer/buildah produce exactly this shape.
    const layout = work("sealer-layout");
    fs.mkdirSync(path.join(layout, "blobs", "sha256"), { recursive: true });
    fs.writeFileSync(path.join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
    const blob = (data: Buffer, mediaType: string): Descriptor => {
      const hex = crypto.createHash("sha256").update(data).digest("hex");
      fs.writeFileSync(path.join(layout, "blobs", "sha256", hex), data);
      return { mediaType, digest: `sha256:${hex}`, size: data.length };
    };
    const regLink = "sha256:" + "ab".repeat(32);
    const layerFiles: Array<Record<string, string>> = [
      {
        "bin/kubeadm": "#!/bin/sh\n",
        "bin/kubectl": "#!/bin/sh\n",
        "etc/kubeadm.yml.tmpl":
          'apiVersion: kubeadm.k8s.io/v1beta2\nimageRepository: {{or .RegistryURL "sea.hub:5000"}}\n',
        "scripts/init-kube.sh": "#!/bin/bash\n",
        "cri/containerd.tar.gz": "not really a tarball",
      },
      { "application/apps/dashboard/dashboard.yaml": "kind: Deployment\n" },
      {
        [`registry/docker/registry/v2/repositories/library/nginx/_manifests/tags/1.25/current/link`]: regLink,
      },
    ];
    const diffIds: string[] = [];
    const layers = layerFiles.map((files) => {
      const tar = tarOf(files);
      diffIds.push("sha256:" + crypto.createHash("sha256").update(tar).digest("hex"));
      return blob(zlib.gzipSync(tar), MediaTypes.layerGzip);
    });
    const config = blob(
      Buffer.from(
        JSON.stringify({
          created: "2023-01-01T00:00:00Z",
          architecture: "amd64",
          os: "linux",
          config: {
            Env: ["PodCIDR=100.64.0.0/10"],
            Labels: {
              "cluster.alpha.sealer.io/cluster-runtime-type": "kubernetes",
              "cluster.alpha.sealer.io/cluster-runtime-version": "v1.22.15",
              "cluster.alpha.sealer.io/container-runtime-type": "containerd",
              "cluster.alpha.sealer.io/container-runtime-version": "1.6.4",
            },
          },
          rootfs: { type: "layers", diff_ids: diffIds },
          history: [
            { created_by: "COPY . ." },
            { created_by: "APP dashboard local://dashboard.yaml" },
            { created_by: "registry" },
          ],
        }),
      ),
      MediaTypes.config,
    );
    const extension = {
      buildClient: { sealerVersion: "v0.9.3", buildahVersion: "v1.27.1" },
      type: "kube-installer",
      applications: [{ name: "dashboard", type: "kube", files: ["dashboard.yaml"], version: "" }],
      launch: { app_names: ["dashboard"] },
      env: { SvcCIDR: "10.96.0.0/16" },
    };
    const containerImages = [
      {
        image: "docker.io/library/nginx:1.25",
        appName: "dashboard",
        platform: { os: "linux", architecture: "amd64" },
      },
    ];
    const manifestBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.manifest,
        config,
        layers,
        annotations: {
          "sealer.image.extension": JSON.stringify(extension),
          "sealer.image.container.images": JSON.stringify(containerImages),
        },
      }),
    );
    const manifest = blob(manifestBytes, MediaTypes.manifest);
    fs.writeFileSync(
      path.join(layout, "index.json"),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ ...manifest, annotations: { "org.opencontainers.image.ref.name": "v1.22.15" } }],
      }),
    );

    const ref = `${reg.host}/sealerio/kubernetes:v1.22.15`;
    skopeo(["copy", "--dest-tls-verify=false", `oci:${layout}:v1.22.15`, `docker://${ref}`]);
    const store = new OciLayout(work("store"));
    const pulled = await pullImage(ref, { store, home: work("home") });
    assert.equal(pulled.digest, manifest.digest);

    const facts = await imageFacts(store, ref);
    assert.equal(facts.reference, ref);
    assert.equal(facts.manifestDigest, manifest.digest);
    assert.equal(facts.imageType, "kube-installer");
    assert.equal(facts.kubeVersion, "v1.22.15");
    assert.equal(facts.containerRuntime, "containerd");
    assert.deepEqual(facts.apps, [{ name: "dashboard", type: "kube", files: ["dashboard.yaml"] }]);
    assert.deepEqual(facts.launch, { appNames: ["dashboard"] });
    assert.deepEqual(facts.env, { PodCIDR: "100.64.0.0/10", SvcCIDR: "10.96.0.0/16" });
    assert.deepEqual(
      facts.layers.map((l) => l.digest),
      layers.map((l) => l.digest),
    );
    // Without our path annotation the paths come from the layer tars themselves.
    assert.ok(
      facts.layers[0]!.paths.some((p) => p.startsWith("bin/")),
      JSON.stringify(facts.layers[0]!.paths),
    );
    assert.ok(
      facts.layers[1]!.paths.some((p) => p.startsWith("application/apps/dashboard")),
      JSON.stringify(facts.layers[1]!.paths),
    );
    assert.ok(
      facts.layers[2]!.paths.some((p) => p.startsWith("registry/")),
      JSON.stringify(facts.layers[2]!.paths),
    );
    // The container-image list survives byte for byte.
    const m = await store.readJson<Manifest>(manifest.digest);
    assert.deepEqual(JSON.parse(m.annotations!["sealer.image.container.images"]!), containerImages);
  });
});
