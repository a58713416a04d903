//! kubeadm's pre-flight checks, as values behind the [`Check`] trait, with upstream's names and
//! error-versus-warning classes, so existing `--ignore-preflight-errors` lists keep working.
//!
//! Every host read goes through [`kubeadm_effects::Effects`] (rooted: `/proc/sys/...`,
//! `/proc/swaps`, `/proc/meminfo`, `/proc/cpuinfo`, `/sys/fs/cgroup`, `/etc/...`, binaries in the
//! `PATH` directories *under the root*), so each check is tested against fixture trees. Ports are
//! checked by binding them. All checks run, every failure is collected, then everything is
//! reported together with the fix and the `--ignore-preflight-errors=<Name>` that skips it
//! (see [`report`]). [`prepare`] is `kubeadm host prepare`, which fixes what the kernel, sysctl
//! and swap checks find.
//!
//! # Which command runs which check
//!
//! `E` = error (stops the command unless ignored), `W` = warning. Init = `kubeadm init`,
//! Join = `kubeadm join` (worker), JoinCP = `kubeadm join --control-plane`, Reset = `kubeadm reset`.
//! "≥1.NN"/"<1.NN" is the cluster's Kubernetes version (as upstream kubeadm of that minor).
//!
//! | check name | class | Init | Join | JoinCP | Reset | when |
//! |---|---|---|---|---|---|---|
//! | IsPrivilegedUser | E | ✓ | ✓ | ✓ | ✓ | always, first and alone (fail fast) |
//! | NumCPU (≥ 2) | E | ✓ | | ✓ | | |
//! | Mem (≥ 1700 MB) | E | ✓ | | ✓ | | |
//! | KubernetesVersion | W | ✓ | | ✓ | | |
//! | Firewalld | W | ✓ | | ✓ | | when systemd knows a `firewalld` unit |
//! | `Port-<bindPort>` (6443), Port-10259, Port-10257 | E | ✓ | | ✓ | | |
//! | FileAvailable--etc-kubernetes-manifests-{kube-apiserver,kube-controller-manager,kube-scheduler,etcd}.yaml | E | ✓ | | ✓ | | |
//! | HTTPProxy | W | ✓ | ✓ | ✓ | | init: advertise address; join: discovery endpoint host |
//! | HTTPProxyCIDR | W | ✓ | | ✓ | | each service and pod subnet |
//! | FileAvailable--etc-kubernetes-kubelet.conf, …-bootstrap-kubelet.conf | E | | ✓ | ✓ | | |
//! | FileAvailable--etc-kubernetes-pki-ca.crt | E | | ✓ | | | worker join only |
//! | CRI | E | ✓ | ✓ | ✓ | | socket answers the CRI v1 `RuntimeService/Version` call and `Status` says `RuntimeReady` |
//! | Swap | W | ✓ | ✓ | ✓ | | |
//! | FileExisting-crictl | E | ✓ | ✓ | ✓ | | < 1.31 |
//! | FileExisting-conntrack | E | ✓ | ✓ | ✓ | | < 1.32 |
//! | FileExisting-ip, -iptables, -mount, -nsenter | E | ✓ | ✓ | ✓ | | |
//! | FileExisting-ebtables, -ethtool, -socat, -tc, -touch | W | ✓ | ✓ | ✓ | | |
//! | SystemVerification | E (W for cgroups v1) | ✓ | ✓ | ✓ | | kernel ≥ 3.10, cgroups v1/v2 with the required controllers |
//! | Hostname | W | ✓ | ✓ | ✓ | | |
//! | KubeletVersion | E | ✓ | ✓ | ✓ | | |
//! | Service-Kubelet | W | ✓ | ✓ | ✓ | | |
//! | Port-10250 | E | ✓ | ✓ | ✓ | | |
//! | FileContent--proc-sys-net-bridge-bridge-nf-call-iptables | E | ✓ | ✓ | ✓ | | IPv4, < 1.30 (upstream dropped it in 1.30) |
//! | FileContent--proc-sys-net-ipv4-ip_forward | E | ✓ | ✓ | ✓ | | IPv4 |
//! | FileContent--proc-sys-net-bridge-bridge-nf-call-ip6tables | E | ✓ | ✓ | ✓ | | IPv6, < 1.30 |
//! | FileContent--proc-sys-net-ipv6-conf-default-forwarding | E | ✓ | ✓ | ✓ | | IPv6 |
//! | RequiredIPVSKernelModulesAvailable | W | ✓ | ✓ | ✓ | | kube-proxy mode `ipvs` |
//! | ExternalEtcdVersion | E | ✓ | | | | external etcd |
//! | ExternalEtcdClientCertificates | E | ✓ | | ✓ | | external etcd (JoinCP: unless the certificates are downloaded) |
//! | Port-2379, Port-2380, DirAvailable--var-lib-etcd | E | ✓ | | ✓ | | local etcd (name follows the data dir) |
//!
//! Init picks the IP family from the advertise address and the service/pod subnets, a join from
//! the discovery endpoint. As upstream, a control-plane join runs the worker checks and then the
//! control-plane checks (without the node checks a worker join already ran). `Role::Reset` runs
//! IsPrivilegedUser only.

mod checks;
pub mod fixture;
mod grpc;
pub mod prepare;
pub mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kubeadm_api::v1beta4::ExternalEtcd;
use kubeadm_api::version::KubeVersion;
use kubeadm_effects::Effects;

pub use checks::*;
pub use report::{IgnoreSet, PreflightError, Report, run_checks, run_more_checks};

/// One problem a check found: what it saw, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// What was found, e.g. "/proc/sys/net/ipv4/ip_forward contents are not set to 1".
    pub found: String,
    /// What to do about it, if there is something specific.
    pub fix: Option<String>,
}

impl Problem {
    /// A problem with a fix.
    pub fn new(found: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            found: found.into(),
            fix: Some(fix.into()),
        }
    }

    /// A problem without a specific fix.
    pub fn bare(found: impl Into<String>) -> Self {
        Problem {
            found: found.into(),
            fix: None,
        }
    }
}

/// What a check returns: `(warnings, errors)`, as upstream's `Checker.Check()`.
pub type Findings = (Vec<Problem>, Vec<Problem>);

/// A pre-flight check.
pub trait Check {
    /// The name `--ignore-preflight-errors` matches (case-insensitively), e.g. `Port-6443`.
    fn name(&self) -> String;
    /// Runs the check: `(warnings, errors)`.
    fn run(&self, ctx: &Context<'_>) -> Findings;
}

/// Which command runs the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `kubeadm init`.
    Init,
    /// `kubeadm join` of a worker.
    Join,
    /// `kubeadm join --control-plane`.
    JoinControlPlane,
    /// `kubeadm reset`.
    Reset,
}

/// What the checks need to know about the host beyond files: the effective user id, the
/// environment (proxy variables, `PATH`). Files are read through `fx`.
pub struct Context<'a> {
    /// Every host read goes through here.
    pub fx: &'a dyn Effects,
    /// The effective user id.
    pub uid: u32,
    /// Environment variables the checks consult (`PATH`, `HTTPS_PROXY`, `NO_PROXY`, …).
    pub env: BTreeMap<String, String>,
}

/// In debug builds (tests), `KUBEADM_TEST_UID` replaces the real user id, so that tests running
/// as root can see the non-root path. Release builds ignore it.
pub const TEST_UID_VAR: &str = "KUBEADM_TEST_UID";

impl<'a> Context<'a> {
    /// The real host: the effective user id (see [`TEST_UID_VAR`]) and this process's environment.
    pub fn from_host(fx: &'a dyn Effects) -> Self {
        let mut uid = rustix::process::geteuid().as_raw();
        if cfg!(debug_assertions)
            && let Some(v) = std::env::var(TEST_UID_VAR)
                .ok()
                .and_then(|v| v.parse().ok())
        {
            uid = v;
        }
        Context {
            fx,
            uid,
            env: std::env::vars().collect(),
        }
    }

    /// An environment variable, trying the upper-case then the lower-case name (as Go's proxy
    /// lookup does).
    pub fn env_any(&self, name: &str) -> Option<&str> {
        self.env
            .get(&name.to_uppercase())
            .or_else(|| self.env.get(&name.to_lowercase()))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The `PATH` directories (absolute ones only), searched under the root.
    pub fn path_dirs(&self) -> Vec<PathBuf> {
        let path = self.env.get("PATH").cloned().unwrap_or_else(|| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(PathBuf::from)
            .collect()
    }

    /// Finds a program in the `PATH` directories under the root; the host path (`/usr/bin/x`).
    pub fn look_path(&self, program: &str) -> Option<PathBuf> {
        self.path_dirs()
            .into_iter()
            .map(|d| d.join(program))
            .find(|p| self.fx.exists(p))
    }

    /// The path to execute a host path found by [`Context::look_path`]: under the root.
    pub fn exec_path(&self, host_path: &Path) -> String {
        kubeadm_effects::resolve(self.fx.root(), host_path)
            .unwrap_or_else(|_| host_path.to_path_buf())
            .display()
            .to_string()
    }
}

/// What decides which checks run: the resolved configuration of the command, reduced to what
/// the checks need (so init, join and reset can all build it).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The cluster's Kubernetes version (`None` for a worker join, as upstream).
    pub version: Option<KubeVersion>,
    /// The node name.
    pub node_name: String,
    /// The CRI socket (`unix:///var/run/containerd/containerd.sock`).
    pub cri_socket: String,
    /// The API server's bind port on this node.
    pub bind_port: u16,
    /// The address this node's API server advertises (init / control-plane join).
    pub advertise_address: String,
    /// Service subnet(s), comma-separated.
    pub service_subnet: String,
    /// Pod subnet(s), comma-separated (may be empty).
    pub pod_subnet: String,
    /// The local etcd data directory, when etcd runs locally.
    pub local_etcd_data_dir: Option<String>,
    /// The external etcd, when one is used.
    pub external_etcd: Option<ExternalEtcd>,
    /// kube-proxy runs in `ipvs` mode.
    pub kube_proxy_ipvs: bool,
    /// The bootstrap-token discovery endpoint (`host:port`) of a join.
    pub discovery_endpoint: Option<String>,
    /// The CA certificate path of a join (`/etc/kubernetes/pki/ca.crt`).
    pub ca_cert_path: String,
    /// A control-plane join downloads the certificates (`--certificate-key`).
    pub download_certs: bool,
    /// controlPlaneMode: systemd: the binaries the units run, with the version each must report.
    pub service_binaries: Vec<ServiceBinary>,
}

impl Inputs {
    /// What a join knows before it talks to the cluster: node name, CRI socket, discovery
    /// endpoint, CA path and, for a control-plane join, the local API endpoint and whether the
    /// certificates are downloaded. A control-plane join fills in `version`, the subnets and
    /// the etcd fields from the cluster's ClusterConfiguration before the control-plane checks.
    pub fn from_join(join: &kubeadm_api::v1beta4::JoinConfiguration) -> Self {
        let cp = join.control_plane.as_ref();
        Inputs {
            node_name: join.node_registration.name.clone(),
            cri_socket: join.node_registration.cri_socket.clone(),
            discovery_endpoint: join
                .discovery
                .bootstrap_token
                .as_ref()
                .map(|b| b.api_server_endpoint.clone()),
            ca_cert_path: join.ca_cert_path.clone(),
            bind_port: cp
                .and_then(|c| u16::try_from(c.local_api_endpoint.bind_port).ok())
                .unwrap_or(6443),
            advertise_address: cp
                .map(|c| c.local_api_endpoint.advertise_address.clone())
                .unwrap_or_default(),
            download_certs: cp.is_some_and(|c| !c.certificate_key.is_empty()),
            ..Default::default()
        }
    }

    /// The role of a join: `JoinControlPlane` with `controlPlane` set, else `Join`.
    pub fn join_role(join: &kubeadm_api::v1beta4::JoinConfiguration) -> Role {
        if join.control_plane.is_some() {
            Role::JoinControlPlane
        } else {
            Role::Join
        }
    }
}

/// The kubeadm version this binary behaves as (the newest minor it deploys).
pub fn kubeadm_version() -> KubeVersion {
    let newest = kubeadm_api::version::newest();
    KubeVersion {
        major: 1,
        minor: newest.minor,
        patch: 0,
        pre: String::new(),
    }
}

const KUBERNETES_DIR: &str = "/etc/kubernetes";
const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
/// kube-scheduler's secure port (the manifests' owner, `kubeadm-render`, holds the fact).
pub const KUBE_SCHEDULER_PORT: u16 = kubeadm_render::controlplane::SCHEDULER_PORT as u16;
/// kube-controller-manager's secure port (held by `kubeadm-render`).
pub const KUBE_CONTROLLER_MANAGER_PORT: u16 =
    kubeadm_render::controlplane::CONTROLLER_MANAGER_PORT as u16;
/// The kubelet's port.
pub const KUBELET_PORT: u16 = 10250;
/// etcd's client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer port.
pub const ETCD_PEER_PORT: u16 = 2380;
/// Minimum CPUs of a control-plane node.
pub const CONTROL_PLANE_NUM_CPU: usize = 2;
/// Minimum memory of a control-plane node, in MB.
pub const CONTROL_PLANE_MEM_MB: u64 = 1700;

fn minor_below(inputs: &Inputs, minor: u32) -> bool {
    inputs.version.as_ref().is_some_and(|v| v.minor < minor)
}

fn families(list: &str) -> (bool, bool) {
    let nets = kubeadm_api::net::parse_subnets(list);
    (
        nets.iter().any(|n| matches!(n, ipnet::IpNet::V4(_))),
        nets.iter().any(|n| matches!(n, ipnet::IpNet::V6(_))),
    )
}

fn add_ip_family_checks(checks: &mut Vec<Box<dyn Check>>, v4: bool, v6: bool, inputs: &Inputs) {
    // Upstream dropped the bridge-nf-call checks in 1.30 (kubernetes/kubernetes#123464).
    let bridge = minor_below(inputs, 30);
    if v4 {
        if bridge {
            checks.push(Box::new(FileContent::one(
                "/proc/sys/net/bridge/bridge-nf-call-iptables",
            )));
        }
        checks.push(Box::new(FileContent::one("/proc/sys/net/ipv4/ip_forward")));
    }
    if v6 {
        if bridge {
            checks.push(Box::new(FileContent::one(
                "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
            )));
        }
        checks.push(Box::new(FileContent::one(
            "/proc/sys/net/ipv6/conf/default/forwarding",
        )));
    }
}

/// Checks common to init and join: runtime, swap, binaries, system, hostname, kubelet, 10250.
fn add_node_checks(checks: &mut Vec<Box<dyn Check>>, inputs: &Inputs) {
    checks.push(Box::new(Cri::new(inputs.cri_socket.clone())));
    checks.push(Box::new(Swap));
    if minor_below(inputs, 31) {
        checks.push(Box::new(InPath::mandatory("crictl")));
    }
    if minor_below(inputs, 32) {
        checks.push(Box::new(InPath::mandatory("conntrack")));
    }
    for b in ["ip", "iptables", "mount", "nsenter"] {
        checks.push(Box::new(InPath::mandatory(b)));
    }
    for b in ["ebtables", "ethtool", "socat", "tc", "touch"] {
        checks.push(Box::new(InPath::optional(b)));
    }
    checks.push(Box::new(SystemVerification));
    checks.push(Box::new(Hostname {
        node_name: inputs.node_name.clone(),
    }));
    checks.push(Box::new(KubeletVersion {
        kubernetes_version: inputs.version.clone(),
    }));
    checks.push(Box::new(Service {
        service: "kubelet".into(),
    }));
    checks.push(Box::new(Port::new(KUBELET_PORT)));
}

/// The control-plane checks of init (`secondary` = a control-plane join).
fn add_control_plane_checks(checks: &mut Vec<Box<dyn Check>>, inputs: &Inputs, secondary: bool) {
    checks.push(Box::new(NumCpu {
        min: CONTROL_PLANE_NUM_CPU,
    }));
    checks.push(Box::new(Mem {
        min_mb: CONTROL_PLANE_MEM_MB,
    }));
    if let Some(v) = &inputs.version {
        checks.push(Box::new(KubernetesVersion {
            kubernetes: v.clone(),
            kubeadm: kubeadm_version(),
        }));
    }
    checks.push(Box::new(Firewalld {
        ports: vec![inputs.bind_port, KUBELET_PORT],
    }));
    checks.push(Box::new(Port::new(inputs.bind_port)));
    checks.push(Box::new(Port::new(KUBE_SCHEDULER_PORT)));
    checks.push(Box::new(Port::new(KUBE_CONTROLLER_MANAGER_PORT)));
    for c in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
    ] {
        checks.push(Box::new(FileAvailable::new(format!(
            "{MANIFESTS_DIR}/{c}.yaml"
        ))));
    }
    for b in &inputs.service_binaries {
        checks.push(Box::new(b.clone()));
    }
    checks.push(Box::new(HttpProxy {
        host: inputs.advertise_address.clone(),
    }));
    let (mut v4, mut v6) = (false, false);
    for list in [&inputs.service_subnet, &inputs.pod_subnet] {
        for cidr in list.split(',') {
            checks.push(Box::new(HttpProxyCidr {
                cidr: cidr.trim().to_string(),
            }));
        }
        let (a, b) = families(list);
        v4 |= a;
        v6 |= b;
    }
    if !secondary {
        add_node_checks(checks, inputs);
        if let Ok(ip) = inputs.advertise_address.parse::<std::net::IpAddr>() {
            v4 |= ip.is_ipv4();
            v6 |= ip.is_ipv6();
        }
        add_ip_family_checks(checks, v4, v6, inputs);
        if inputs.external_etcd.is_some() {
            checks.push(Box::new(ExternalEtcdVersion {
                etcd: inputs.external_etcd.clone().unwrap_or_default(),
            }));
        }
    }
    if inputs.kube_proxy_ipvs && !secondary {
        checks.push(Box::new(IpvsModules));
    }
    if let Some(dir) = &inputs.local_etcd_data_dir {
        checks.push(Box::new(Port::new(ETCD_CLIENT_PORT)));
        checks.push(Box::new(Port::new(ETCD_PEER_PORT)));
        checks.push(Box::new(DirAvailable::new(dir.clone())));
    }
    if let Some(ext) = &inputs.external_etcd
        && !(secondary && inputs.download_certs)
    {
        for f in [&ext.ca_file, &ext.cert_file, &ext.key_file] {
            if !f.is_empty() {
                checks.push(Box::new(FileExisting::labelled(
                    f.clone(),
                    "ExternalEtcdClientCertificates",
                )));
            }
        }
    }
}

/// The checks a role runs, in upstream's order, without IsPrivilegedUser (which
/// [`run_checks`] runs first, alone).
pub fn checks_for(role: Role, inputs: &Inputs) -> Vec<Box<dyn Check>> {
    let mut checks: Vec<Box<dyn Check>> = Vec::new();
    match role {
        Role::Init => add_control_plane_checks(&mut checks, inputs, false),
        Role::Join | Role::JoinControlPlane => {
            checks.push(Box::new(FileAvailable::new(format!(
                "{KUBERNETES_DIR}/kubelet.conf"
            ))));
            checks.push(Box::new(FileAvailable::new(format!(
                "{KUBERNETES_DIR}/bootstrap-kubelet.conf"
            ))));
            add_node_checks(&mut checks, inputs);
            if role == Role::Join {
                let ca = if inputs.ca_cert_path.is_empty() {
                    "/etc/kubernetes/pki/ca.crt"
                } else {
                    &inputs.ca_cert_path
                };
                checks.push(Box::new(FileAvailable::new(ca.to_string())));
            }
            if let Some(ep) = &inputs.discovery_endpoint
                && let Ok((host, _)) = kubeadm_api::validate::host_port(ep)
            {
                checks.push(Box::new(HttpProxy { host: host.clone() }));
                if let Ok(ip) = host.parse::<std::net::IpAddr>() {
                    add_ip_family_checks(&mut checks, ip.is_ipv4(), ip.is_ipv6(), inputs);
                }
            }
            if inputs.kube_proxy_ipvs {
                checks.push(Box::new(IpvsModules));
            }
            if role == Role::JoinControlPlane {
                add_control_plane_checks(&mut checks, inputs, true);
            }
        }
        Role::Reset => {}
    }
    checks
}

#[cfg(test)]
mod tests;
