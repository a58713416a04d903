//! The kubelet's files: `/var/lib/kubelet/config.yaml` (the KubeletConfiguration) and
//! `/var/lib/kubelet/kubeadm-flags.env` (upstream `phases/kubelet/flags.go`).

use kubeadm_api::config::InitConfig;
use kubeadm_api::images;
use kubeadm_api::v1beta4::Arg;
use serde_json::Value;

use crate::RenderError;
use crate::args::{self, arg};

/// The kubelet's configuration file.
pub const CONFIG_PATH: &str = "/var/lib/kubelet/config.yaml";
/// The environment file with kubeadm's kubelet flags.
pub const FLAGS_ENV_PATH: &str = "/var/lib/kubelet/kubeadm-flags.env";
/// The resolver list of systemd-resolved (not its 127.0.0.53 stub), which kubeadm gives the
/// kubelet as `resolvConf` when systemd-resolved is active.
pub const RESOLVED_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";
/// The variable the kubelet's systemd drop-in reads.
pub const FLAGS_ENV_VAR: &str = "KUBELET_KUBEADM_ARGS";

/// `config.yaml`: the KubeletConfiguration document (already completed with kubeadm's
/// defaults, possibly patched) as YAML with sorted keys.
pub fn config_yaml(kubelet: &Value) -> Result<String, RenderError> {
    kubeadm_api::encode::to_yaml(kubelet).map_err(|e| RenderError::Encode {
        what: "KubeletConfiguration".into(),
        message: e.to_string(),
    })
}

/// The per-node kubelet settings file (`NodeLocalCRISocket`).
pub const INSTANCE_CONFIG_PATH: &str = "/var/lib/kubelet/instance-config.yaml";

/// Whether kubeadm's `NodeLocalCRISocket` gate is on for this cluster: the version's default,
/// unless `featureGates` says otherwise where the gate is not locked.
pub fn node_local_cri_socket(cfg: &InitConfig) -> bool {
    match cfg.info().node_local_cri_socket_gate() {
        None => false,
        Some((_, true)) => true,
        Some((default, false)) => cfg
            .cluster
            .feature_gates
            .get("NodeLocalCRISocket")
            .copied()
            .unwrap_or(default),
    }
}

/// `instance-config.yaml` (with `NodeLocalCRISocket`): the node's CRI endpoint, which kubeadm
/// also merges into `config.yaml`.
pub fn instance_config(cfg: &InitConfig) -> Option<String> {
    node_local_cri_socket(cfg).then(|| {
        format!(
            "containerRuntimeEndpoint: {}\n",
            go_quote(&cfg.init.node_registration.cri_socket)
        )
    })
}

/// Merges the instance configuration into the KubeletConfiguration, as kubeadm does after
/// applying patches.
pub fn apply_instance_config(cfg: &InitConfig, kubelet: &mut Value) {
    if let (true, Some(obj)) = (node_local_cri_socket(cfg), kubelet.as_object_mut()) {
        obj.insert(
            "containerRuntimeEndpoint".into(),
            cfg.init.node_registration.cri_socket.clone().into(),
        );
    }
}

/// The dockershim socket of kubelets up to 1.23 (`/var/run/dockershim.sock`, with or
/// without `unix://`): naming it as the CRI socket selects the kubelet's built-in Docker runtime.
pub const DOCKERSHIM_SOCKET: &str = "/var/run/dockershim.sock";

/// kubeadm's kubelet flags before `kubeletExtraArgs`. `hostname` is the host's name; the
/// kubelet is told the node name only when it differs.
pub fn default_flags(cfg: &InitConfig, hostname: &str) -> Vec<Arg> {
    let info = cfg.info();
    let nr = &cfg.init.node_registration;
    let mut a = Vec::new();
    if info.has_dockershim() && nr.cri_socket.ends_with(DOCKERSHIM_SOCKET) {
        // The kubelet's built-in Docker runtime: no remote endpoint, the CNI network plugin.
        a.push(arg("network-plugin", "cni"));
    } else {
        if info.kubelet_container_runtime_flag() {
            a.push(arg("container-runtime", "remote"));
        }
        if !node_local_cri_socket(cfg) {
            a.push(arg("container-runtime-endpoint", nr.cri_socket.clone()));
        }
    }
    if info.kubelet_pod_infra_flag() {
        a.push(arg(
            "pod-infra-container-image",
            images::pause_image(&cfg.cluster, info),
        ));
    }
    let hostname = hostname.to_ascii_lowercase();
    let node_name = args::get(&nr.kubelet_extra_args, "hostname-override").unwrap_or(&nr.name);
    if node_name != hostname {
        a.push(arg("hostname-override", node_name));
    }
    a
}

/// `kubeadm-flags.env`: `KUBELET_KUBEADM_ARGS="--flag=value …"` with `kubeletExtraArgs`
/// overriding kubeadm's flags by name, sorted by name.
pub fn flags_env(cfg: &InitConfig, hostname: &str) -> String {
    let flags = args::to_command(
        &default_flags(cfg, hostname),
        &cfg.init.node_registration.kubelet_extra_args,
    );
    format!("{FLAGS_ENV_VAR}={}\n", go_quote(&flags.join(" ")))
}

/// Double-quotes a string as Go's `%q` does for printable text.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
