import * as assert from "node:assert/strict";
import * as yaml from "js-yaml";
import { initConfigYaml, joinConfigYaml, kubeadmConfig } from "../../provider/core/kube/kubeadm-config";

const imageConfig = `apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
imageRepository: registry.k8s.io
controlPlaneEndpoint: wrong:1
networking: { podSubnet: 1.0.0.0/8, serviceSubnet: 2.0.0.0/16 }
apiServer: { certSANs: [extra.example.com], extraArgs: { audit-log-maxage: "7" } }
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint: { advertiseAddress: 9.9.9.9, bindPort: 6443 }
---
kind: KubeletConfiguration
apiVersion: kubelet.config.k8s.io/v1beta1
cgroupDriver: cgroupfs
maxPods: 50
`;

function byKind(text: string): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const d of yaml.loadAll(text) as Array<Record<string, unknown>>) out[d.kind as string] = d;
  return out;
}

describe("kubeadm config: image + Clusterfile + forced fields", () => {
  const cfg = kubeadmConfig({
    imageConfig,
    clusterDocs: [
      {
        kind: "ClusterConfiguration",
        apiServer: { extraArgs: { "audit-log-maxage": "30" } },
        networking: { podSubnet: "3.0.0.0/8" },
      },
      { kind: "KubeletConfiguration", maxPods: 110 },
      { kind: "SomethingElse", x: 1 },
    ],
    master0: "10.0.0.2",
    masters: ["10.0.0.2", "10.0.0.3"],
    registry: "sea.hub:5000",
    kubeVersion: "v1.28.2",
    env: { SvcCIDR: "10.96.0.0/22", CertSANs: "a.example.com, 1.2.3.4", CgroupDriver: "systemd" },
  });
  const init = byKind(initConfigYaml(cfg));

  it("forces advertiseAddress, controlPlaneEndpoint, imageRepository, version", () => {
    assert.deepEqual(init.InitConfiguration!.localAPIEndpoint, {
      advertiseAddress: "10.0.0.2",
      bindPort: 6443,
    });
    assert.equal(init.ClusterConfiguration!.controlPlaneEndpoint, "apiserver.cluster.local:6443");
    assert.equal(init.ClusterConfiguration!.imageRepository, "sea.hub:5000");
    assert.equal(init.ClusterConfiguration!.kubernetesVersion, "v1.28.2");
  });
  it("Clusterfile docs win over the image, env wins for CIDRs", () => {
    const cc = init.ClusterConfiguration as {
      apiServer: { extraArgs: Record<string, string>; certSANs: string[] };
      networking: Record<string, string>;
    };
    assert.equal(cc.apiServer.extraArgs["audit-log-maxage"], "30");
    assert.deepEqual(cc.networking, { podSubnet: "3.0.0.0/8", serviceSubnet: "10.96.0.0/22" });
    assert.equal((init.KubeletConfiguration as { maxPods: number }).maxPods, 110);
    assert.equal((init.KubeletConfiguration as { cgroupDriver: string }).cgroupDriver, "systemd");
  });
  it("certSANs keep the image's and add the VIP, the masters, the domain and CertSANs", () => {
    const sans = (init.ClusterConfiguration as { apiServer: { certSANs: string[] } }).apiServer.certSANs;
    for (const s of [
      "extra.example.com",
      "10.103.97.2",
      "10.0.0.2",
      "10.0.0.3",
      "apiserver.cluster.local",
      "127.0.0.1",
      "a.example.com",
      "1.2.3.4",
    ])
      assert.ok(sans.includes(s), s);
  });
  it("kube-proxy excludes the VIP; IPvsVIPv4 changes it", () => {
    assert.deepEqual(
      (init.KubeProxyConfiguration as { ipvs: { excludeCIDRs: string[] } }).ipvs.excludeCIDRs,
      ["10.103.97.2/32"],
    );
    const c2 = kubeadmConfig({
      clusterDocs: [],
      master0: "10.0.0.2",
      masters: ["10.0.0.2"],
      registry: "r:5000",
      env: { IPvsVIPv4: "10.1.1.1" },
    });
    assert.equal(c2.vip, "10.1.1.1");
    assert.ok(
      (
        byKind(initConfigYaml(c2)).ClusterConfiguration as { apiServer: { certSANs: string[] } }
      ).apiServer.certSANs.includes("10.1.1.1"),
    );
  });
  it("unknown kinds in the Clusterfile docs are ignored here", () => {
    assert.equal(init.SomethingElse, undefined);
  });
  it("join config: masters get controlPlane + certificate key, workers not", () => {
    const m = byKind(
      joinConfigYaml(
        cfg,
        { ip: "10.0.0.3", master: true, endpoint: "apiserver.cluster.local:6443" },
        { token: "abc.def", caCertHash: "sha256:00", certificateKey: "k" },
      ),
    );
    const j = m.JoinConfiguration as {
      discovery: { bootstrapToken: Record<string, unknown> };
      controlPlane?: { certificateKey: string; localAPIEndpoint: { advertiseAddress: string } };
    };
    assert.deepEqual(j.discovery.bootstrapToken, {
      apiServerEndpoint: "apiserver.cluster.local:6443",
      token: "abc.def",
      caCertHashes: ["sha256:00"],
    });
    assert.equal(j.controlPlane!.certificateKey, "k");
    assert.equal(j.controlPlane!.localAPIEndpoint.advertiseAddress, "10.0.0.3");
    const w = byKind(
      joinConfigYaml(
        cfg,
        { ip: "10.0.0.5", master: false, endpoint: "10.103.97.2:6443" },
        { token: "abc.def", caCertHash: "sha256:00" },
      ),
    );
    assert.equal((w.JoinConfiguration as { controlPlane?: unknown }).controlPlane, undefined);
  });
  it("no image config: built-in defaults", () => {
    const c = byKind(
      initConfigYaml(
        kubeadmConfig({
          clusterDocs: [],
          master0: "10.0.0.2",
          masters: ["10.0.0.2"],
          registry: "sea.hub:5000",
          env: {},
        }),
      ),
    );
    assert.deepEqual(c.ClusterConfiguration!.networking, {
      podSubnet: "100.64.0.0/10",
      serviceSubnet: "10.96.0.0/22",
    });
    assert.equal(c.InitConfiguration!.apiVersion, "kubeadm.k8s.io/v1beta3");
  });
});
