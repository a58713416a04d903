//! Checks of the software kubeadm works with: the container runtime, the kubelet and its
//! service, firewalld, versions, an external etcd, and the IPVS kernel modules.

use kubeadm_errors::Hint;
use std::path::Path;
use std::time::Duration;

use kubeadm_api::version::KubeVersion;
use kubeadm_effects::CommandKind;

use super::read_text;
use crate::{Check, Context, Findings, Problem};

/// Upstream `ContainerRuntimeCheck` (`CRI`): the runtime's socket exists and answers the CRI
/// v1 API (`RuntimeService/Version`, through `kubeadm-cri`) with its `RuntimeReady` condition
/// true (`RuntimeService/Status`; network readiness is not looked at, as upstream).
#[derive(Debug, Clone)]
pub struct Cri {
    /// The CRI endpoint (`unix:///var/run/containerd/containerd.sock`).
    pub socket: String,
    /// How long to wait for each answer.
    pub timeout: Duration,
}

impl Cri {
    /// A check of `socket` with the CRI client's default timeout.
    pub fn new(socket: impl Into<String>) -> Self {
        Cri {
            socket: socket.into(),
            timeout: kubeadm_cri::DEFAULT_TIMEOUT,
        }
    }
}

impl Check for Cri {
    fn name(&self) -> String {
        "CRI".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let ready = connect(ctx, &self.socket, self.timeout).and_then(|c| {
            use kubeadm_cri::Runtime;
            c.is_running()?;
            Ok(c)
        });
        match ready {
            Ok(c) => {
                let (name, version, api) = c.version();
                tracing::debug!(runtime = %name, %version, %api, "CRI answered");
                (vec![], vec![])
            }
            Err(e) => (vec![], vec![runtime_problem(&e)]),
        }
    }
}

/// A CRI error as a finding, with the client's hint as its fix.
fn runtime_problem(e: &kubeadm_cri::CriError) -> Problem {
    Problem::new(e.to_string(), e.hint().unwrap_or_default())
}

/// A client on the host path of `socket` under the checks' root; a missing socket is named.
fn connect(
    ctx: &Context<'_>,
    socket: &str,
    timeout: Duration,
) -> Result<kubeadm_cri::CriClient, kubeadm_cri::CriError> {
    let path = kubeadm_cri::socket_path(socket)?;
    let refused = |message: String| kubeadm_cri::CriError::Connect {
        endpoint: socket.to_string(),
        message,
    };
    if !ctx.fx.exists(Path::new(path)) {
        return Err(refused(format!("{path} does not exist")));
    }
    let real = kubeadm_effects::resolve(ctx.fx.root(), Path::new(path))
        .map_err(|e| refused(e.to_string()))?;
    kubeadm_cri::CriClient::connect_timeout(socket, &real, timeout)
}

/// Upstream `ImagePullCheck` (`ImagePull`), run by init and a control-plane join after the
/// other checks: every image the node's static Pods need is in the runtime, pulled as
/// `nodeRegistration.imagePullPolicy` says (`kubeadm config images pull`'s code). Each image
/// that could not be had is one error naming it, its registry and the socket. Where the version
/// asks for it, a runtime whose sandbox (pause) image is not the one kubeadm uses is a warning,
/// as upstream's check from 1.27 logs it.
#[derive(Debug, Clone)]
pub struct ImagePull {
    /// The CRI endpoint.
    pub socket: String,
    /// The images (`kubeadm config images list`'s list).
    pub images: Vec<String>,
    /// `nodeRegistration.imagePullPolicy`.
    pub policy: kubeadm_cri::PullPolicy,
    /// `nodeRegistration.imagePullSerial`.
    pub serial: bool,
    /// The pause image kubeadm uses, when the runtime's own sandbox image is compared with it.
    pub sandbox_image: Option<String>,
}

impl Check for ImagePull {
    fn name(&self) -> String {
        "ImagePull".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let client = match connect(ctx, &self.socket, kubeadm_cri::DEFAULT_TIMEOUT) {
            Ok(c) => c,
            Err(e) => return (vec![], vec![runtime_problem(&e)]),
        };
        let warnings = self
            .sandbox_image
            .as_deref()
            .and_then(|want| sandbox_mismatch(&client, want))
            .into_iter()
            .collect();
        let errors = kubeadm_cri::ensure_images(&client, &self.images, self.policy, self.serial)
            .into_iter()
            .filter_map(|(image, r)| match r {
                Ok(how) => {
                    tracing::debug!(%image, ?how, "image ready");
                    None
                }
                Err(e) => Some(runtime_problem(&e)),
            })
            .collect();
        (warnings, errors)
    }
}

/// The warning for a runtime whose sandbox image is not `want`. A runtime that does not say
/// which sandbox image it uses is not warned about (upstream only logs that, at a high level).
fn sandbox_mismatch(rt: &dyn kubeadm_cri::Runtime, want: &str) -> Option<Problem> {
    match rt.sandbox_image() {
        Ok(have) if have != want => Some(Problem::new(
            format!(
                "detected that the sandbox image {have:?} of the container runtime is inconsistent with that used by kubeadm. It is recommended to use {want:?} as the CRI sandbox image."
            ),
            format!(
                "set the runtime's sandbox image to {want} (containerd: sandbox_image in the CRI plugin's section of /etc/containerd/config.toml), then restart it"
            ),
        )),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!(error = %e, "the runtime's sandbox image is unknown");
            None
        }
    }
}

/// Parses `kubelet --version` output (`Kubernetes v1.31.2`).
pub fn parse_kubelet_version(output: &str) -> Option<KubeVersion> {
    let v = output.trim().strip_prefix("Kubernetes ")?;
    KubeVersion::parse(v.trim()).ok()
}

/// The oldest kubelet minor kubeadm of `control_plane_minor` supports: three minors older from
/// 1.28 (the kubelet skew policy of KEP-3935), one before.
pub fn min_kubelet_minor(control_plane_minor: u32) -> u32 {
    if control_plane_minor >= 28 {
        control_plane_minor.saturating_sub(3)
    } else {
        control_plane_minor.saturating_sub(1)
    }
}

/// Upstream `KubeletVersionCheck`: the installed kubelet (`kubelet --version`) is supported and
/// not newer than the control plane.
#[derive(Debug, Clone)]
pub struct KubeletVersion {
    /// The control plane's version (`None` on a worker join).
    pub kubernetes_version: Option<KubeVersion>,
}

impl Check for KubeletVersion {
    fn name(&self) -> String {
        "KubeletVersion".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let target = self
            .kubernetes_version
            .clone()
            .unwrap_or_else(crate::kubeadm_version);
        let install = format!(
            "install the kubelet v1.{}.x (the kubelet package) and make sure it is in PATH",
            target.minor
        );
        let Some(path) = ctx.look_path("kubelet") else {
            return (
                vec![],
                vec![Problem::new(
                    "couldn't get kubelet version: kubelet not found in system path",
                    install,
                )],
            );
        };
        let out = match ctx
            .fx
            .run(CommandKind::Query, &ctx.exec_path(&path), &["--version"])
        {
            Ok(o) if o.success() => o,
            Ok(o) => {
                let found = format!(
                    "couldn't get kubelet version: `kubelet --version` failed: {}",
                    o.stderr.trim()
                );
                return (vec![], vec![Problem::new(found, install)]);
            }
            Err(e) => {
                return (
                    vec![],
                    vec![Problem::new(
                        format!("couldn't get kubelet version: {e}"),
                        install,
                    )],
                );
            }
        };
        let text = format!("{}{}", out.stdout, out.stderr);
        let Some(kubelet) = parse_kubelet_version(&text) else {
            return (
                vec![],
                vec![Problem::new(
                    format!("Unable to parse output from Kubelet: {:?}", text.trim()),
                    install,
                )],
            );
        };
        let min = min_kubelet_minor(target.minor);
        if kubelet.major < 1 || (kubelet.major == 1 && kubelet.minor < min) {
            let found = format!(
                "Kubelet version \"{kubelet}\" is lower than kubeadm can support. Please upgrade kubelet"
            );
            return (vec![], vec![Problem::new(found, install)]);
        }
        if let Some(cp) = &self.kubernetes_version
            && (kubelet.major > cp.major || kubelet.minor > cp.minor)
        {
            let found = format!(
                "the kubelet version is higher than the control plane version. This is not a supported version skew and may lead to a malfunctional cluster. Kubelet version: \"{kubelet}\" Control plane version: \"{cp}\""
            );
            return (vec![], vec![Problem::new(found, install)]);
        }
        (vec![], vec![])
    }
}

/// What systemd says about a unit, through `systemctl` found under the root.
struct Systemd {
    program: String,
}

impl Systemd {
    fn find(ctx: &Context<'_>) -> Option<Systemd> {
        ctx.look_path("systemctl").map(|p| Systemd {
            program: ctx.exec_path(&p),
        })
    }

    fn query(&self, ctx: &Context<'_>, args: &[&str]) -> Option<kubeadm_effects::CommandOutput> {
        ctx.fx.run(CommandKind::Query, &self.program, args).ok()
    }

    fn exists(&self, ctx: &Context<'_>, unit: &str) -> bool {
        self.query(ctx, &["status", unit]).is_some_and(|o| {
            !o.stdout.contains("Loaded: not-found") && !o.stderr.contains("could not be found")
        })
    }

    fn enabled(&self, ctx: &Context<'_>, unit: &str) -> bool {
        self.query(ctx, &["is-enabled", unit])
            .is_some_and(|o| o.success())
    }

    fn active(&self, ctx: &Context<'_>, unit: &str) -> bool {
        self.query(ctx, &["is-active", unit])
            .is_some_and(|o| o.success())
    }
}

fn no_init_system() -> Problem {
    Problem::new(
        "no supported init system detected (systemctl not found), skipping checking for services",
        "on a systemd host, make sure systemctl is in PATH",
    )
}

/// Upstream `ServiceCheck` (`Service-Kubelet`): the unit exists and is enabled.
#[derive(Debug, Clone)]
pub struct Service {
    /// The unit name without `.service`.
    pub service: String,
}

impl Check for Service {
    fn name(&self) -> String {
        let mut c = self.service.chars();
        let title: String = c
            .next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default();
        format!("Service-{title}")
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let Some(sd) = Systemd::find(ctx) else {
            return (vec![no_init_system()], vec![]);
        };
        if !sd.exists(ctx, &self.service) {
            let p = Problem::new(
                format!("{} service does not exist", self.service),
                format!("install the {} package", self.service),
            );
            return (vec![p], vec![]);
        }
        if !sd.enabled(ctx, &self.service) {
            let p = Problem::new(
                format!(
                    "{} service is not enabled, please run 'systemctl enable {}.service'",
                    self.service, self.service
                ),
                format!("systemctl enable {}.service", self.service),
            );
            return (vec![p], vec![]);
        }
        (vec![], vec![])
    }
}

/// Upstream `FirewalldCheck`: warns when firewalld is active.
#[derive(Debug, Clone)]
pub struct Firewalld {
    /// Ports that must be open.
    pub ports: Vec<u16>,
}

impl Check for Firewalld {
    fn name(&self) -> String {
        "Firewalld".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let Some(sd) = Systemd::find(ctx) else {
            return (vec![no_init_system()], vec![]);
        };
        if !sd.exists(ctx, "firewalld") || !sd.active(ctx, "firewalld") {
            return (vec![], vec![]);
        }
        let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
        let p = Problem::new(
            format!(
                "firewalld is active, please ensure ports [{}] are open or your cluster may not function correctly",
                ports.join(" ")
            ),
            format!(
                "open them: {} && firewall-cmd --reload",
                self.ports
                    .iter()
                    .map(|p| format!("firewall-cmd --permanent --add-port={p}/tcp"))
                    .collect::<Vec<_>>()
                    .join(" && ")
            ),
        );
        (vec![p], vec![])
    }
}

/// Upstream `KubernetesVersionCheck`: warns when the cluster's version is newer than kubeadm's
/// minor.
#[derive(Debug, Clone)]
pub struct KubernetesVersion {
    /// The cluster's version.
    pub kubernetes: KubeVersion,
    /// kubeadm's own version.
    pub kubeadm: KubeVersion,
}

impl Check for KubernetesVersion {
    fn name(&self) -> String {
        "KubernetesVersion".into()
    }

    fn run(&self, _ctx: &Context<'_>) -> Findings {
        let k = &self.kubernetes;
        if (k.major, k.minor) > (self.kubeadm.major, self.kubeadm.minor) {
            let p = Problem::new(
                format!(
                    "Kubernetes version is greater than kubeadm version. Please consider to upgrade kubeadm. Kubernetes version: {k}. Kubeadm version: {}.{}.x",
                    self.kubeadm.major, self.kubeadm.minor
                ),
                format!("use a kubeadm of v{}.{} or newer", k.major, k.minor),
            );
            return (vec![p], vec![]);
        }
        (vec![], vec![])
    }
}

/// Kernel modules kube-proxy's IPVS mode needs.
pub const IPVS_MODULES: &[&str] = &["ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "nf_conntrack"];

/// Upstream `RequiredIPVSKernelModulesAvailableCheck` (when kube-proxy runs in `ipvs` mode):
/// the IPVS modules are loaded (`/proc/modules`) or built in
/// (`/lib/modules/<release>/modules.builtin`).
#[derive(Debug, Clone, Copy)]
pub struct IpvsModules;

impl Check for IpvsModules {
    fn name(&self) -> String {
        "RequiredIPVSKernelModulesAvailable".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let loaded: Vec<String> = read_text(ctx, "/proc/modules")
            .ok()
            .flatten()
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let release = read_text(ctx, "/proc/sys/kernel/osrelease")
            .ok()
            .flatten()
            .unwrap_or_default();
        let builtin: Vec<String> = read_text(
            ctx,
            &format!("/lib/modules/{}/modules.builtin", release.trim()),
        )
        .ok()
        .flatten()
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    l.rsplit('/')
                        .next()
                        .and_then(|f| f.strip_suffix(".ko"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
        let missing: Vec<&str> = IPVS_MODULES
            .iter()
            .copied()
            .filter(|m| !loaded.iter().chain(&builtin).any(|l| l == m))
            .collect();
        if missing.is_empty() {
            return (vec![], vec![]);
        }
        let p = Problem::new(
            format!(
                "the IPVS proxier will not be used, because the following required kernel modules are not loaded: [{}]",
                missing.join(" ")
            ),
            format!(
                "load them (`modprobe {}`) or run `kubeadm host prepare --kube-proxy-mode ipvs`",
                missing.join(" && modprobe ")
            ),
        );
        (vec![p], vec![])
    }
}
