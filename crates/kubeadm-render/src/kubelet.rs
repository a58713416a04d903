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

/// kubeadm's kubelet flags before `kubeletExtraArgs`. `hostname` is the host's name; the
/// kubelet is told the node name only when it differs.
pub fn default_flags(cfg: &InitConfig, hostname: &str) -> Vec<Arg> {
    let info = cfg.info();
    let nr = &cfg.init.node_registration;
    let mut a = Vec::new();
    if info.kubelet_container_runtime_flag() {
        a.push(arg("container-runtime", "remote"));
    }
    a.push(arg("container-runtime-endpoint", nr.cri_socket.clone()));
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
