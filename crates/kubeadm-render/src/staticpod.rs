//! The shape every kubeadm static Pod shares: metadata, host network, priority class, seccomp
//! profile, host-path volumes sorted by name, and the health probes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, HostPathVolumeSource, Pod,
    PodSecurityContext, PodSpec, Probe, ResourceRequirements, SeccompProfile, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kubeadm_api::v1beta4::{self, HostPathMount};

/// The directory the kubelet reads static Pods from.
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";

/// Where the kubelet finds the manifest of `component` (`/etc/kubernetes/manifests/etcd.yaml`).
pub fn manifest_path(component: &str) -> String {
    format!("{MANIFESTS_DIR}/{component}.yaml")
}

/// What the host offers that the manifests depend on (upstream looks at the host too).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostInfo {
    /// Which of [`ca_cert_extra_dirs`] exist as directories on the host; only those are mounted.
    pub ca_dirs: Vec<String>,
    /// The proxy variables of kubeadm's environment (see [`proxy_env`]), handed on to the
    /// control-plane components.
    pub proxy_env: Vec<(String, String)>,
    /// External-CA mode: `ca.crt` exists without `ca.key`.
    pub external_ca: bool,
}

/// A volume and where the container mounts it.
#[derive(Debug, Clone)]
pub struct HostMount {
    /// The Pod volume.
    pub volume: Volume,
    /// The container's mount of it.
    pub mount: VolumeMount,
}

/// Volumes and mounts by name: a later entry of a name replaces the earlier one, and the Pod
/// lists both sorted by name.
pub type Mounts = BTreeMap<String, HostMount>;

/// A host-path volume mounted at the same path.
pub fn host_mount(name: &str, path: &str, path_type: &str, read_only: bool) -> HostMount {
    host_mount_at(name, path, path, path_type, read_only)
}

/// A host-path volume `host_path` mounted at `mount_path`.
pub fn host_mount_at(
    name: &str,
    host_path: &str,
    mount_path: &str,
    path_type: &str,
    read_only: bool,
) -> HostMount {
    HostMount {
        volume: Volume {
            name: name.to_string(),
            host_path: Some(HostPathVolumeSource {
                path: host_path.to_string(),
                type_: (!path_type.is_empty()).then(|| path_type.to_string()),
            }),
            ..Default::default()
        },
        mount: VolumeMount {
            name: name.to_string(),
            mount_path: mount_path.to_string(),
            read_only: read_only.then_some(true),
            ..Default::default()
        },
    }
}

/// Adds a mount, replacing one of the same name.
pub fn add(mounts: &mut Mounts, m: HostMount) {
    mounts.insert(m.volume.name.clone(), m);
}

/// Adds the operator's `extraVolumes`.
pub fn add_extra(mounts: &mut Mounts, extra: &[HostPathMount]) {
    for e in extra {
        add(
            mounts,
            host_mount_at(
                &e.name,
                &e.host_path,
                &e.mount_path,
                &e.path_type,
                e.read_only,
            ),
        );
    }
}

/// The host's CA bundle directories kubeadm of `minor` mounts into kube-apiserver and
/// kube-controller-manager when they exist (1.31 narrowed `/etc/pki` to its two CA subtrees).
pub fn ca_cert_extra_dirs(minor: u32) -> &'static [&'static str] {
    if minor >= 31 {
        &[
            "/etc/ca-certificates",
            "/etc/pki/ca-trust",
            "/etc/pki/tls/certs",
            "/usr/local/share/ca-certificates",
            "/usr/share/ca-certificates",
        ]
    } else {
        &[
            "/etc/ca-certificates",
            "/etc/pki",
            "/usr/local/share/ca-certificates",
            "/usr/share/ca-certificates",
        ]
    }
}

/// Mounts every CA directory of [`ca_cert_extra_dirs`] the host has, read-only, named after the
/// path (`/usr/share/ca-certificates` → `usr-share-ca-certificates`).
pub fn add_ca_dirs(mounts: &mut Mounts, minor: u32, host: &HostInfo) {
    for dir in ca_cert_extra_dirs(minor) {
        if host.ca_dirs.iter().any(|d| d == dir) {
            let name = dir.trim_start_matches('/').replace('/', "-");
            add(mounts, host_mount(&name, dir, "DirectoryOrCreate", true));
        }
    }
}

/// How a probe reaches the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host (an IP).
    pub host: String,
    /// Port.
    pub port: i32,
    /// `HTTP` or `HTTPS`.
    pub scheme: &'static str,
    /// Probes name the port `probe-port`, declared in the container's ports (1.34 and later).
    pub named: bool,
}

/// The name probes use for their port when [`Endpoint::named`].
pub const PROBE_PORT_NAME: &str = "probe-port";

/// The container's `ports`: the named probe port, when the probes use one.
pub fn probe_ports(ep: &Endpoint) -> Option<Vec<ContainerPort>> {
    ep.named.then(|| {
        vec![ContainerPort {
            container_port: ep.port,
            name: Some(PROBE_PORT_NAME.into()),
            protocol: Some("TCP".into()),
            ..Default::default()
        }]
    })
}

fn http_probe(ep: &Endpoint, path: &str) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            host: Some(ep.host.clone()),
            path: Some(path.to_string()),
            port: if ep.named {
                IntOrString::String(PROBE_PORT_NAME.into())
            } else {
                IntOrString::Int(ep.port)
            },
            scheme: Some(ep.scheme.to_string()),
            ..Default::default()
        }),
        timeout_seconds: Some(15),
        period_seconds: Some(10),
        ..Default::default()
    }
}

/// The liveness probe: after 10 s, every 10 s, 8 failures allowed.
pub fn liveness(ep: &Endpoint, path: &str) -> Probe {
    Probe {
        initial_delay_seconds: Some(10),
        failure_threshold: Some(8),
        ..http_probe(ep, path)
    }
}

/// The readiness probe: every second, 3 failures allowed.
pub fn readiness(ep: &Endpoint, path: &str) -> Probe {
    Probe {
        period_seconds: Some(1),
        failure_threshold: Some(3),
        ..http_probe(ep, path)
    }
}

/// The startup probe: as many 10 s periods as fit in the component health-check timeout.
pub fn startup(ep: &Endpoint, path: &str, timeout: std::time::Duration) -> Probe {
    let periods = timeout.as_secs().div_ceil(10).max(1);
    Probe {
        initial_delay_seconds: Some(10),
        failure_threshold: Some(i32::try_from(periods).unwrap_or(i32::MAX)),
        ..http_probe(ep, path)
    }
}

/// CPU (and optionally memory) requests.
pub fn requests(cpu: &str, memory: Option<&str>) -> ResourceRequirements {
    let mut r = BTreeMap::new();
    r.insert("cpu".to_string(), Quantity(cpu.to_string()));
    if let Some(m) = memory {
        r.insert("memory".to_string(), Quantity(m.to_string()));
    }
    ResourceRequirements {
        requests: Some(r),
        ..Default::default()
    }
}

/// The container environment: the host's proxy variables (`proxy`, control-plane components
/// only), then the operator's `extraEnvs`, a later entry replacing an earlier one of the same
/// name, sorted by name (empty → none).
pub fn env(proxy: &[(String, String)], extra: &[v1beta4::EnvVar]) -> Option<Vec<EnvVar>> {
    let mut merged: BTreeMap<String, EnvVar> = BTreeMap::new();
    for (name, value) in proxy {
        merged.insert(
            name.clone(),
            EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                value_from: None,
            },
        );
    }
    for e in extra {
        let var = EnvVar {
            name: e.name.clone(),
            value: (!e.value.is_empty() || e.value_from.is_none()).then(|| e.value.clone()),
            value_from: e
                .value_from
                .as_ref()
                .and_then(|v| serde_json::from_value::<EnvVarSource>(v.clone()).ok()),
        };
        merged.insert(e.name.clone(), var);
    }
    (!merged.is_empty()).then(|| merged.into_values().collect())
}

/// The proxy settings among environment variables (names ending in `_proxy`, any case, with a
/// value), as upstream passes them on to the control-plane components.
pub fn proxy_env(vars: impl IntoIterator<Item = (String, String)>) -> Vec<(String, String)> {
    vars.into_iter()
        .filter(|(n, v)| n.to_ascii_lowercase().ends_with("_proxy") && !v.is_empty())
        .collect()
}

/// The Pod around one container: kube-system, labels `component`/`tier`, host network,
/// `system-node-critical` (with its numeric `priority` where the version sets it), seccomp
/// `RuntimeDefault`, the volumes sorted by name.
pub fn component_pod(
    mut container: Container,
    mounts: &Mounts,
    annotations: BTreeMap<String, String>,
    priority: Option<i32>,
) -> Pod {
    let name = container.name.clone();
    container.volume_mounts = Some(mounts.values().map(|m| m.mount.clone()).collect());
    let labels = BTreeMap::from([
        ("component".to_string(), name.clone()),
        ("tier".to_string(), "control-plane".to_string()),
    ]);
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some("kube-system".into()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![container],
            host_network: Some(true),
            priority,
            priority_class_name: Some("system-node-critical".into()),
            security_context: Some(PodSecurityContext {
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            volumes: Some(mounts.values().map(|m| m.volume.clone()).collect()),
            ..Default::default()
        }),
        status: None,
    }
}

/// `host` with IPv6 brackets for use in a URL.
pub fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The host and port of a URL such as `http://127.0.0.1:2381` or `https://[::1]:2379`.
pub fn url_host_port(url: &str) -> Option<(String, Option<i32>, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let (h, after) = r.split_once(']')?;
        (
            h.to_string(),
            after.strip_prefix(':').and_then(|p| p.parse().ok()),
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()),
            None => (authority.to_string(), None),
        }
    };
    Some((host, port, scheme.to_ascii_lowercase()))
}
