//! The one init configuration of the tests that run init's phases against the test API server
//! and health stand-ins: InitConfiguration (node cp-1 on 127.0.0.1, the wait timeouts),
//! ClusterConfiguration (the version, the controller-manager's and scheduler's secure ports)
//! and KubeletConfiguration (the kubelet's healthz port), each part set by a builder method.

// Each test crate that includes this file uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The bootstrap token of the configurations that carry one.
pub const TOKEN: &str = "abcdef.0123456789abcdef";

/// An init configuration to write for one run; [`InitConfig::new`] then the parts that differ.
#[derive(Clone, Debug)]
pub struct InitConfig {
    version: String,
    api_port: u16,
    kubelet_port: u16,
    kcm_port: u16,
    sched_port: u16,
    token: Option<String>,
    cri_socket: Option<String>,
    health_timeout: String,
    feature_gates: Vec<(String, bool)>,
}

impl InitConfig {
    /// `version` served on 127.0.0.1:`api_port`; the health ports are the defaults of a real
    /// node (kubelet 10248, controller-manager 10257, scheduler 10259) until
    /// [`InitConfig::health_ports`], the health checks wait 30 s, no token, no CRI socket.
    pub fn new(version: &str, api_port: u16) -> Self {
        InitConfig {
            version: version.to_string(),
            api_port,
            kubelet_port: kubeadm_api::component::KUBELET_HEALTHZ_PORT,
            kcm_port: kubeadm_render::controlplane::CONTROLLER_MANAGER_PORT as u16,
            sched_port: kubeadm_render::controlplane::SCHEDULER_PORT as u16,
            token: None,
            cri_socket: None,
            health_timeout: "30s".into(),
            feature_gates: Vec::new(),
        }
    }

    /// The health ports of the kubelet's healthz, the controller-manager and the scheduler
    /// (their stand-ins').
    pub fn health_ports(mut self, kubelet: u16, kcm: u16, sched: u16) -> Self {
        (self.kubelet_port, self.kcm_port, self.sched_port) = (kubelet, kcm, sched);
        self
    }

    /// The bootstrap token init creates ([`TOKEN`]).
    pub fn with_token(mut self) -> Self {
        self.token = Some(TOKEN.into());
        self
    }

    /// The node's CRI socket (`nodeRegistration.criSocket`), named in the wait's hints.
    pub fn cri_socket(mut self, socket: &str) -> Self {
        self.cri_socket = Some(socket.into());
        self
    }

    /// `timeouts.controlPlaneComponentHealthCheck` and `timeouts.kubeletHealthCheck` (a
    /// duration such as `1s` or `2m0s`).
    pub fn health_timeout(mut self, timeout: &str) -> Self {
        self.health_timeout = timeout.into();
        self
    }

    /// A feature gate of ClusterConfiguration.
    pub fn feature_gate(mut self, name: &str, on: bool) -> Self {
        self.feature_gates.push((name.into(), on));
        self
    }

    /// The configuration's three documents.
    pub fn yaml(&self) -> String {
        let token = self
            .token
            .as_ref()
            .map(|t| format!("bootstrapTokens:\n- token: {t}\n"))
            .unwrap_or_default();
        let cri = self
            .cri_socket
            .as_ref()
            .map(|s| format!("  criSocket: {s}\n"))
            .unwrap_or_default();
        let gates = if self.feature_gates.is_empty() {
            String::new()
        } else {
            let mut g = "featureGates:\n".to_string();
            for (name, on) in &self.feature_gates {
                g.push_str(&format!("  {name}: {on}\n"));
            }
            g
        };
        format!(
            r#"apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
{token}localAPIEndpoint:
  advertiseAddress: 127.0.0.1
  bindPort: {api}
nodeRegistration:
  name: cp-1
{cri}timeouts:
  controlPlaneComponentHealthCheck: {timeout}
  kubeletHealthCheck: {timeout}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: {version}
{gates}controllerManager:
  extraArgs:
  - name: secure-port
    value: "{kcm}"
scheduler:
  extraArgs:
  - name: secure-port
    value: "{sched}"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
healthzPort: {kubelet}
"#,
            api = self.api_port,
            timeout = self.health_timeout,
            version = self.version,
            kcm = self.kcm_port,
            sched = self.sched_port,
            kubelet = self.kubelet_port,
        )
    }

    /// Writes the configuration to `path` and returns it.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.yaml()).unwrap();
        path.to_path_buf()
    }
}
