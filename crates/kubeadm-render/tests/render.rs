//! Snapshot tests of every file the render crate builds, per supported-version milestone, and
//! tests of extraArgs/extraVolumes/extraEnvs, external etcd and patches.

#![allow(clippy::unwrap_used)]

use k8s_openapi::api::core::v1::Pod;
use kubeadm_api::config::InitConfig;
use kubeadm_api::decode;
use kubeadm_api::defaults::HostFacts;
use kubeadm_render::patches::PatchSet;
use kubeadm_render::staticpod::HostInfo;
use kubeadm_render::{controlplane, etcd, kubelet, pod_yaml};

fn config(yaml: &str) -> InitConfig {
    let docs = decode::decode("test.yaml", yaml).unwrap();
    let (init, cluster, kubelet, proxy) = InitConfig::start(docs);
    let facts = HostFacts {
        hostname: "node-1".into(),
        default_ip: Some("192.168.56.10".parse().unwrap()),
        cri_sockets_found: vec![],
    };
    InitConfig::complete(init, cluster, kubelet, proxy, &facts, true, "test.yaml").unwrap()
}

fn basic(version: &str) -> String {
    format!(
        r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 192.168.56.10
nodeRegistration:
  name: node-1
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
networking:
  podSubnet: 10.244.0.0/16
"#
    )
}

const DUAL_STACK: &str = r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: fd00:56::10
  bindPort: 6443
nodeRegistration:
  name: node-6
  criSocket: unix:///run/crio/crio.sock
  kubeletExtraArgs:
  - name: node-ip
    value: fd00:56::10,192.168.56.10
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.2
controlPlaneEndpoint: "[fd00:56::100]:6443"
networking:
  podSubnet: fd00:10:244::/56,10.244.0.0/16
  serviceSubnet: fd00:10:96::/112,10.96.0.0/16
"#;

fn host(cfg: &InitConfig) -> HostInfo {
    let wanted = [
        "/etc/ca-certificates",
        "/usr/local/share/ca-certificates",
        "/usr/share/ca-certificates",
    ];
    HostInfo {
        ca_dirs: kubeadm_render::staticpod::ca_cert_extra_dirs(cfg.info().minor)
            .iter()
            .filter(|d| wanted.contains(d))
            .map(|d| d.to_string())
            .collect(),
        proxy_env: vec![],
        external_ca: false,
    }
}

/// Parses a manifest back strictly: the YAML must decode as a Pod that re-encodes to exactly the
/// same document (nothing unknown, nothing lost).
fn parse_back(yaml: &str) -> Pod {
    let pod: Pod = serde_saphyr::from_str(yaml).unwrap();
    let as_value: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
    assert_eq!(
        serde_json::to_value(&pod).unwrap(),
        as_value,
        "manifest does not round-trip as a Pod"
    );
    pod
}

fn all_files(cfg: &InitConfig) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(local) = cfg.local_etcd() {
        out.push((etcd::pod(cfg, local, &[]), "etcd".to_string()));
    }
    for c in controlplane::COMPONENTS {
        out.push((
            controlplane::pod(cfg, c, &host(cfg)).unwrap(),
            c.to_string(),
        ));
    }
    let mut files: Vec<(String, String)> = out
        .into_iter()
        .map(|(pod, name)| {
            let y = pod_yaml(&pod).unwrap();
            assert_eq!(parse_back(&y), pod);
            (kubeadm_render::staticpod::manifest_path(&name), y)
        })
        .collect();
    let mut kubelet_config = cfg.kubelet.clone();
    kubelet::apply_instance_config(cfg, &mut kubelet_config);
    let kc = kubelet::config_yaml(&kubelet_config).unwrap();
    let _: serde_json::Value = serde_saphyr::from_str(&kc).unwrap();
    files.push((kubelet::CONFIG_PATH.into(), kc));
    files.push((
        kubelet::FLAGS_ENV_PATH.into(),
        kubelet::flags_env(cfg, "node-1"),
    ));
    if let Some(instance) = kubelet::instance_config(cfg) {
        let _: serde_json::Value = serde_saphyr::from_str(&instance).unwrap();
        files.push((kubelet::INSTANCE_CONFIG_PATH.into(), instance));
    }
    files
}

fn render_all(cfg: &InitConfig) -> String {
    all_files(cfg)
        .into_iter()
        .map(|(p, y)| format!("# ==== {p}\n{y}"))
        .collect::<Vec<_>>()
        .join("")
}

#[test]
fn v1_22() {
    insta::assert_snapshot!(render_all(&config(&basic("v1.22.17"))));
}

#[test]
fn v1_23() {
    insta::assert_snapshot!(render_all(&config(&basic("v1.23.17"))));
}

/// What 1.22 and 1.23 render differently from 1.24: `--port=0` on the controller-manager and
/// the scheduler (1.22 only), and dockershim's kubelet flags when the Docker socket is the CRI.
#[test]
fn insecure_port_and_dockershim_follow_the_minor() {
    for (version, port_zero) in [("v1.22.17", true), ("v1.23.17", false), ("v1.24.17", false)] {
        let cfg = config(&basic(version));
        for c in ["kube-controller-manager", "kube-scheduler"] {
            let pod = controlplane::pod(&cfg, c, &host(&cfg)).unwrap();
            assert_eq!(
                command(&pod).contains(&"--port=0".to_string()),
                port_zero,
                "{c} {version}"
            );
        }
    }
    let docker = |version: &str| {
        let yaml = basic(version).replace(
            "unix:///var/run/containerd/containerd.sock",
            "unix:///var/run/dockershim.sock",
        );
        kubelet::flags_env(&config(&yaml), "node-1")
    };
    for version in ["v1.22.17", "v1.23.17"] {
        let env = docker(version);
        assert!(env.contains("--network-plugin=cni"), "{env}");
        assert!(!env.contains("--container-runtime"), "{env}");
        assert!(
            env.contains("--pod-infra-container-image=registry.k8s.io/pause:"),
            "{env}"
        );
    }
    // Without dockershim the socket is a remote runtime like any other.
    let env = docker("v1.24.17");
    assert!(!env.contains("--network-plugin"), "{env}");
    assert!(
        env.contains("--container-runtime-endpoint=unix:///var/run/dockershim.sock"),
        "{env}"
    );
    // containerd on 1.22: the remote runtime flags, as upstream 1.22 wrote them.
    let env = kubelet::flags_env(&config(&basic("v1.22.17")), "node-1");
    assert!(
        env.contains("--container-runtime=remote --container-runtime-endpoint=unix:///var/run/containerd/containerd.sock --pod-infra-container-image=registry.k8s.io/pause:3.5"),
        "{env}"
    );
}

#[test]
fn v1_24() {
    insta::assert_snapshot!(render_all(&config(&basic("v1.24.17"))));
}

#[test]
fn v1_29() {
    insta::assert_snapshot!(render_all(&config(&basic("v1.29.15"))));
}

#[test]
fn v1_31() {
    insta::assert_snapshot!(render_all(&config(&basic("v1.31.14"))));
}

#[test]
fn v1_37() {
    insta::assert_snapshot!(render_all(&config(&basic("v1.37.0"))));
}

#[test]
fn dual_stack() {
    insta::assert_snapshot!(render_all(&config(DUAL_STACK)));
}

#[test]
fn output_is_deterministic() {
    let a = render_all(&config(&basic("v1.31.14")));
    let b = render_all(&config(&basic("v1.31.14")));
    assert_eq!(a, b);
}

fn command(pod: &Pod) -> Vec<String> {
    pod.spec.as_ref().unwrap().containers[0]
        .command
        .clone()
        .unwrap()
}

#[test]
fn extra_args_override_by_name_and_extras_are_added() {
    let cfg = config(
        r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5}
nodeRegistration: {name: cp, criSocket: "unix:///var/run/containerd/containerd.sock"}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.0
apiServer:
  extraArgs:
  - {name: authorization-mode, value: "Node,RBAC,Webhook"}
  - {name: tls-cipher-suites, value: B}
  - {name: tls-cipher-suites, value: A}
  extraVolumes:
  - {name: audit, hostPath: /var/log/kubernetes, mountPath: /var/log/kubernetes, pathType: DirectoryOrCreate}
  extraEnvs:
  - {name: GODEBUG, value: "x509sha1=1"}
controllerManager:
  extraArgs:
  - {name: secure-port, value: "20257"}
  - {name: flex-volume-plugin-dir, value: /opt/flex}
etcd:
  local:
    extraArgs:
    - {name: listen-metrics-urls, value: "http://127.0.0.1:22381"}
"#,
    );
    let proxied = HostInfo {
        proxy_env: kubeadm_render::staticpod::proxy_env([
            ("HTTPS_PROXY".to_string(), "http://proxy:3128".to_string()),
            ("no_proxy".to_string(), "10.0.0.0/8".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
            ("http_proxy".to_string(), String::new()),
        ]),
        ..HostInfo::default()
    };
    let api = controlplane::pod(&cfg, "kube-apiserver", &proxied).unwrap();
    let cmd = command(&api);
    assert!(cmd.contains(&"--authorization-mode=Node,RBAC,Webhook".to_string()));
    assert!(!cmd.contains(&"--authorization-mode=Node,RBAC".to_string()));
    let i = cmd
        .iter()
        .position(|c| c == "--tls-cipher-suites=A")
        .unwrap();
    assert_eq!(cmd[i + 1], "--tls-cipher-suites=B");
    let mut sorted = cmd[1..].to_vec();
    sorted.sort();
    assert_eq!(sorted, cmd[1..], "flags are sorted");
    let spec = api.spec.unwrap();
    assert!(spec.volumes.unwrap().iter().any(|v| v.name == "audit"));
    let c = &spec.containers[0];
    assert!(
        c.volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.name == "audit" && m.mount_path == "/var/log/kubernetes")
    );
    let env: Vec<(String, Option<String>)> = c
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    let want = [
        ("GODEBUG", "x509sha1=1"),
        ("HTTPS_PROXY", "http://proxy:3128"),
        ("no_proxy", "10.0.0.0/8"),
    ];
    assert_eq!(env, want.map(|(n, v)| (n.to_string(), Some(v.to_string()))));

    let cm = controlplane::pod(&cfg, "kube-controller-manager", &HostInfo::default()).unwrap();
    let c = &cm.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        c.liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(20257)
    );
    assert!(
        c.volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.name == "flexvolume-dir" && m.mount_path == "/opt/flex")
    );

    let e = etcd::pod(&cfg, cfg.local_etcd().unwrap(), &[]);
    let c = &e.spec.as_ref().unwrap().containers[0];
    assert!(command(&e).contains(&"--listen-metrics-urls=http://127.0.0.1:22381".to_string()));
    assert_eq!(
        c.liveness_probe
            .as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(22381)
    );
}

#[test]
fn external_etcd_is_wired_into_the_apiserver() {
    let cfg = config(
        r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5}
nodeRegistration: {name: cp, criSocket: "unix:///var/run/containerd/containerd.sock"}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.0
etcd:
  external:
    endpoints: ["https://10.0.0.7:2379", "https://10.0.0.8:2379"]
    caFile: /etc/etcd/pki/ca.crt
    certFile: /etc/etcd/pki/client.crt
    keyFile: /etc/etcd/pki/client.key
"#,
    );
    assert!(cfg.local_etcd().is_none());
    let api = controlplane::pod(&cfg, "kube-apiserver", &HostInfo::default()).unwrap();
    let cmd = command(&api);
    for f in [
        "--etcd-servers=https://10.0.0.7:2379,https://10.0.0.8:2379",
        "--etcd-cafile=/etc/etcd/pki/ca.crt",
        "--etcd-certfile=/etc/etcd/pki/client.crt",
        "--etcd-keyfile=/etc/etcd/pki/client.key",
    ] {
        assert!(cmd.contains(&f.to_string()), "{f} missing from {cmd:?}");
    }
    let vols = api.spec.unwrap().volumes.unwrap();
    assert!(
        vols.iter()
            .any(|v| v.name == "etcd-certs-0"
                && v.host_path.as_ref().unwrap().path == "/etc/etcd/pki")
    );
}

#[test]
fn hostname_override_only_when_names_differ() {
    let cfg = config(&basic("v1.31.0"));
    assert!(!kubelet::flags_env(&cfg, "node-1").contains("hostname-override"));
    assert!(!kubelet::flags_env(&cfg, "NODE-1").contains("hostname-override"));
    assert!(kubelet::flags_env(&cfg, "other").contains("--hostname-override=node-1"));
}

fn patch_set(files: &[(&str, &str)]) -> Result<PatchSet, kubeadm_render::RenderError> {
    PatchSet::parse(
        "/patches",
        files
            .iter()
            .map(|(n, c)| (n.to_string(), c.as_bytes().to_vec()))
            .collect(),
    )
}

/// Applies patches to a Pod and returns (before, after) as JSON values.
fn patched(target: &str, files: &[(&str, &str)]) -> (serde_json::Value, serde_json::Value) {
    let cfg = config(&basic("v1.31.0"));
    let pod = if target == "etcd" {
        etcd::pod(&cfg, cfg.local_etcd().unwrap(), &[])
    } else {
        controlplane::pod(&cfg, target, &HostInfo::default()).unwrap()
    };
    let before = serde_json::to_value(&pod).unwrap();
    let set = patch_set(files).unwrap();
    let (after, applied) = set.apply_pod(target, pod).unwrap();
    assert!(!applied.is_empty());
    (before, serde_json::to_value(&after).unwrap())
}

#[test]
fn strategic_patch_changes_exactly_what_it_says() {
    let (before, after) = patched(
        "kube-apiserver",
        &[(
            "kube-apiserver0+strategic.yaml",
            "spec:\n  containers:\n  - name: kube-apiserver\n    resources:\n      requests:\n        cpu: 500m\n    env:\n    - name: FOO\n      value: bar\n",
        )],
    );
    let mut expected = before.clone();
    let c = &mut expected["spec"]["containers"][0];
    c["resources"]["requests"]["cpu"] = "500m".into();
    c["env"] = serde_json::json!([{"name": "FOO", "value": "bar"}]);
    assert_eq!(after, expected);
}

#[test]
fn merge_patch_changes_exactly_what_it_says() {
    let (before, after) = patched(
        "kube-scheduler",
        &[(
            "kube-scheduler+merge.json",
            r#"{"metadata": {"labels": {"tier": null, "extra": "yes"}}, "spec": {"priorityClassName": "custom"}}"#,
        )],
    );
    let mut expected = before.clone();
    expected["metadata"]["labels"] =
        serde_json::json!({"component": "kube-scheduler", "extra": "yes"});
    expected["spec"]["priorityClassName"] = "custom".into();
    assert_eq!(after, expected);
}

#[test]
fn json_patch_changes_exactly_what_it_says() {
    let (before, after) = patched(
        "etcd",
        &[(
            "etcd+json.yaml",
            "- op: replace\n  path: /spec/containers/0/image\n  value: example.org/etcd:custom\n- op: add\n  path: /spec/containers/0/command/-\n  value: --quota-backend-bytes=8589934592\n",
        )],
    );
    let mut expected = before.clone();
    expected["spec"]["containers"][0]["image"] = "example.org/etcd:custom".into();
    expected["spec"]["containers"][0]["command"]
        .as_array_mut()
        .unwrap()
        .push("--quota-backend-bytes=8589934592".into());
    assert_eq!(after, expected);
}

#[test]
fn kubelet_configuration_patch() {
    let cfg = config(&basic("v1.31.0"));
    let mut v = cfg.kubelet.clone();
    let before = v.clone();
    let set = patch_set(&[
        ("kubeletconfiguration.yaml", "maxPods: 42\n"),
        ("README.txt", "not a patch"),
    ])
    .unwrap();
    assert_eq!(set.ignored, ["README.txt"]);
    set.apply("kubeletconfiguration", &mut v).unwrap();
    let mut expected = before;
    expected["maxPods"] = 42.into();
    assert_eq!(v, expected);
}

#[test]
fn malformed_patches_are_errors_naming_the_file() {
    for (name, content) in [
        ("kube-apiserver.yaml", "spec: [unclosed"),
        ("etcd+json.json", r#"{"op": "replace"}"#),
        ("etcd1+json.yaml", "- op: frobnicate\n  path: /x\n"),
        ("kube-scheduler+merge.yaml", "- a\n- b\n"),
        ("etcd+bogus.yaml", "a: b\n"),
    ] {
        let err = patch_set(&[(name, content)]).unwrap_err().to_string();
        assert!(err.contains(&format!("/patches/{name}")), "{err}");
    }
    // Well-formed but impossible to apply: also an error naming the file.
    let set = patch_set(&[(
        "etcd+json.yaml",
        "- op: remove\n  path: /spec/nothing/here\n",
    )])
    .unwrap();
    let cfg = config(&basic("v1.31.0"));
    let err = set
        .apply_pod("etcd", etcd::pod(&cfg, cfg.local_etcd().unwrap(), &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/patches/etcd+json.yaml"), "{err}");
}

#[test]
fn upstream_special_cases() {
    let cfg = config(
        r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5}
nodeRegistration: {name: cp, criSocket: "unix:///var/run/containerd/containerd.sock"}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.0
apiServer:
  extraArgs:
  - {name: authorization-config, value: /etc/kubernetes/authz.yaml}
etcd:
  local:
    extraArgs:
    - {name: advertise-client-urls, value: "https://10.0.0.5:12379"}
"#,
    );
    let api = command(&controlplane::pod(&cfg, "kube-apiserver", &HostInfo::default()).unwrap());
    assert!(
        !api.iter().any(|a| a.starts_with("--authorization-mode=")),
        "{api:?}"
    );
    assert!(
        api.contains(&"--etcd-servers=https://10.0.0.5:12379".to_string()),
        "{api:?}"
    );

    let external_ca = HostInfo {
        external_ca: true,
        ..HostInfo::default()
    };
    let cm = command(&controlplane::pod(&cfg, "kube-controller-manager", &external_ca).unwrap());
    assert!(
        cm.contains(&"--cluster-signing-cert-file=".to_string()),
        "{cm:?}"
    );
    assert!(
        cm.contains(&"--cluster-signing-key-file=".to_string()),
        "{cm:?}"
    );

    // External etcd with a certificate but no key: no client pair at all.
    let cfg = config(
        r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5}
nodeRegistration: {name: cp, criSocket: "unix:///var/run/containerd/containerd.sock"}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.33.0
etcd:
  external:
    endpoints: ["http://10.0.0.7:2379"]
"#,
    );
    let api = command(&controlplane::pod(&cfg, "kube-apiserver", &HostInfo::default()).unwrap());
    assert!(
        !api.iter()
            .any(|a| a.starts_with("--etcd-certfile") || a.starts_with("--etcd-cafile")),
        "{api:?}"
    );
}

#[test]
fn external_etcd_cert_dirs_are_mounted_once() {
    let cfg = config(
        r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5}
nodeRegistration: {name: cp, criSocket: "unix:///var/run/containerd/containerd.sock"}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.31.0
etcd:
  external:
    endpoints: ["https://10.0.0.7:2379"]
    caFile: /etc/kubernetes/pki/etcd/ca.crt
    certFile: /srv/etcd/pki/client.crt
    keyFile: /srv/etcd/client.key
"#,
    );
    let api = controlplane::pod(&cfg, "kube-apiserver", &HostInfo::default()).unwrap();
    let etcd_vols: Vec<(String, String)> = api
        .spec
        .unwrap()
        .volumes
        .unwrap()
        .into_iter()
        .filter(|v| v.name.starts_with("etcd-certs"))
        .map(|v| (v.name, v.host_path.unwrap().path))
        .collect();
    assert_eq!(
        etcd_vols,
        [("etcd-certs-0".to_string(), "/srv/etcd".to_string())]
    );
}

#[test]
fn v1beta3_extra_args_map_renders_like_the_v1beta4_list() {
    let v1beta3 = config(
        r#"apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5}
nodeRegistration:
  name: cp
  criSocket: "unix:///var/run/containerd/containerd.sock"
  kubeletExtraArgs: {max-pods: "50"}
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.24.17
apiServer:
  extraArgs: {audit-log-maxage: "7", authorization-mode: "Node,RBAC,Webhook"}
etcd:
  local:
    extraArgs: {quota-backend-bytes: "8589934592"}
"#,
    );
    let v1beta4 = config(
        r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5}
nodeRegistration:
  name: cp
  criSocket: "unix:///var/run/containerd/containerd.sock"
  kubeletExtraArgs: [{name: max-pods, value: "50"}]
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.24.17
apiServer:
  extraArgs: [{name: authorization-mode, value: "Node,RBAC,Webhook"}, {name: audit-log-maxage, value: "7"}]
etcd:
  local:
    extraArgs: [{name: quota-backend-bytes, value: "8589934592"}]
"#,
    );
    let a = render_all(&v1beta3);
    assert_eq!(a, render_all(&v1beta4));
    for flag in [
        "--audit-log-maxage=7",
        "--authorization-mode=Node,RBAC,Webhook",
        "--quota-backend-bytes=8589934592",
        "--max-pods=50",
    ] {
        assert!(a.contains(flag), "{flag} missing");
    }
}

#[test]
fn node_local_cri_socket_follows_feature_gates_until_locked() {
    let with_gate = |version: &str, gate: Option<bool>| {
        let gates = gate
            .map(|g| format!("featureGates: {{NodeLocalCRISocket: {g}}}\n"))
            .unwrap_or_default();
        config(&format!("{}{gates}", basic(version)))
    };
    let cases = [
        ("v1.31.0", None, false),
        ("v1.33.0", None, false),
        ("v1.33.0", Some(true), true),
        ("v1.35.0", None, true),
        ("v1.35.0", Some(false), false),
        ("v1.37.0", None, true),
    ];
    for (version, gate, on) in cases {
        let cfg = with_gate(version, gate);
        assert_eq!(
            kubelet::node_local_cri_socket(&cfg),
            on,
            "{version} {gate:?}"
        );
        assert_eq!(
            kubelet::instance_config(&cfg).is_some(),
            on,
            "{version} {gate:?}"
        );
        assert_eq!(
            !kubelet::flags_env(&cfg, "node-1").contains("--container-runtime-endpoint="),
            on
        );
    }
}

#[test]
fn startup_probes_cover_the_control_plane_timeout() {
    let cfg = config(
        r#"apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: 10.0.0.5}
nodeRegistration: {name: cp, criSocket: "unix:///var/run/containerd/containerd.sock"}
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.24.17
apiServer:
  timeoutForControlPlane: 10m5s
"#,
    );
    for c in controlplane::COMPONENTS {
        let pod = controlplane::pod(&cfg, c, &HostInfo::default()).unwrap();
        let startup = pod.spec.unwrap().containers[0]
            .startup_probe
            .clone()
            .unwrap();
        assert_eq!(startup.failure_threshold, Some(61), "{c}");
    }
}

#[test]
fn every_supported_minor_renders_valid_pods() {
    for minor in kubeadm_api::version::MIN_MINOR..=kubeadm_api::version::MAX_MINOR {
        let cfg = config(&basic(&format!("v1.{minor}.0")));
        // all_files parses every manifest back strictly and every kubelet file as YAML.
        let files = all_files(&cfg);
        assert!(files.len() >= 6, "v1.{minor}");
        let env = &files
            .iter()
            .find(|(p, _)| p == kubelet::FLAGS_ENV_PATH)
            .unwrap()
            .1;
        assert!(
            env.starts_with("KUBELET_KUBEADM_ARGS=\"") && env.ends_with("\"\n"),
            "{env}"
        );
    }
}
