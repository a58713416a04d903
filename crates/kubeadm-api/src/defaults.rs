//! Upstream's defaults, static (what `config print` shows) and dynamic (what depends on the host:
//! node name, advertise address, CRI socket, the resolved version, generated tokens).
//!
//! The dynamic half takes the host's answers as a plain [`HostFacts`] value so that this crate
//! stays free of I/O; the binary gathers the facts through its effects layer.

use crate::duration::Duration;
use crate::token::BootstrapTokenString;
use crate::v1beta4::*;
use crate::version;

/// `registry.k8s.io`.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";
/// `10.96.0.0/12`.
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/12";
/// `cluster.local`.
pub const DEFAULT_DNS_DOMAIN: &str = "cluster.local";
/// `/etc/kubernetes/pki`.
pub const DEFAULT_CERTIFICATES_DIR: &str = "/etc/kubernetes/pki";
/// `/var/lib/etcd`.
pub const DEFAULT_ETCD_DATA_DIR: &str = "/var/lib/etcd";
/// `kubernetes`.
pub const DEFAULT_CLUSTER_NAME: &str = "kubernetes";
/// 6443.
pub const DEFAULT_BIND_PORT: i32 = 6443;
/// The containerd socket, upstream's default CRI endpoint on Linux.
pub const DEFAULT_CRI_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";
/// CRI endpoints kubeadm looks for, in upstream's order.
pub const KNOWN_CRI_SOCKETS: &[&str] = &[
    "unix:///var/run/containerd/containerd.sock",
    "unix:///var/run/crio/crio.sock",
    "unix:///var/run/cri-dockerd.sock",
];
/// `IfNotPresent`.
pub const DEFAULT_IMAGE_PULL_POLICY: &str = "IfNotPresent";
/// `RSA-2048`.
pub const DEFAULT_ENCRYPTION_ALGORITHM: &str = "RSA-2048";
/// `/etc/kubernetes/pki/ca.crt`, where join writes the cluster CA.
pub const DEFAULT_CA_CERT_PATH: &str = "/etc/kubernetes/pki/ca.crt";
/// Group of the default node bootstrap token.
pub const DEFAULT_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// Usages of the default token.
pub const DEFAULT_TOKEN_USAGES: &[&str] = &["signing", "authentication"];
/// The placeholder token `config print` shows.
pub const PLACEHOLDER_TOKEN: &str = "abcdef.0123456789abcdef";
/// Node name `config print` shows.
pub const PLACEHOLDER_NODE_NAME: &str = "node";
/// Advertise address `config print` shows.
pub const PLACEHOLDER_ADVERTISE_ADDRESS: &str = "1.2.3.4";
/// API server endpoint `config print join-defaults` shows.
pub const PLACEHOLDER_API_SERVER_ENDPOINT: &str = "kube-apiserver:6443";

/// The default timeouts of v1beta4 (all seven are printed by `config print`).
pub fn default_timeouts() -> Timeouts {
    Timeouts {
        control_plane_component_health_check: Some(Duration::from_mins(4)),
        kubelet_health_check: Some(Duration::from_mins(4)),
        kubernetes_api_call: Some(Duration::from_mins(1)),
        etcd_api_call: Some(Duration::from_mins(2)),
        tls_bootstrap: Some(Duration::from_mins(5)),
        discovery: Some(Duration::from_mins(5)),
        upgrade_manifests: Some(Duration::from_mins(5)),
    }
}

/// One timeout, resolved once for every command: the configured value of a (possibly absent)
/// `timeouts` block, else upstream's default from [`default_timeouts`].
pub fn timeout(
    t: Option<&Timeouts>,
    pick: fn(&Timeouts) -> Option<Duration>,
) -> std::time::Duration {
    t.and_then(pick)
        .or_else(|| pick(&default_timeouts()))
        .map(|d| d.to_std())
        .unwrap_or_default()
}

fn default_timeouts_into(t: &mut Option<Timeouts>) {
    let d = default_timeouts();
    let t = t.get_or_insert_with(Timeouts::default);
    macro_rules! fill {
        ($($f:ident),*) => { $( if t.$f.is_none() { t.$f = d.$f; } )* };
    }
    fill!(
        control_plane_component_health_check,
        kubelet_health_check,
        kubernetes_api_call,
        etcd_api_call,
        tls_bootstrap,
        discovery,
        upgrade_manifests
    );
}

fn set_if_empty(field: &mut String, value: &str) {
    if field.is_empty() {
        *field = value.to_string();
    }
}

/// Static defaults of a ClusterConfiguration (upstream `SetDefaults_ClusterConfiguration`).
pub fn cluster(c: &mut ClusterConfiguration) {
    c.api_version = API_VERSION.into();
    c.kind = "ClusterConfiguration".into();
    set_if_empty(&mut c.kubernetes_version, &default_version_text());
    set_if_empty(&mut c.networking.service_subnet, DEFAULT_SERVICE_SUBNET);
    set_if_empty(&mut c.networking.dns_domain, DEFAULT_DNS_DOMAIN);
    set_if_empty(&mut c.certificates_dir, DEFAULT_CERTIFICATES_DIR);
    set_if_empty(&mut c.image_repository, DEFAULT_IMAGE_REPOSITORY);
    set_if_empty(&mut c.cluster_name, DEFAULT_CLUSTER_NAME);
    set_if_empty(&mut c.encryption_algorithm, DEFAULT_ENCRYPTION_ALGORITHM);
    if c.etcd.external.is_none() {
        let local = c.etcd.local.get_or_insert_with(LocalEtcd::default);
        set_if_empty(&mut local.data_dir, DEFAULT_ETCD_DATA_DIR);
    }
    if c.certificate_validity_period.is_none() {
        c.certificate_validity_period = Some(Duration::from_hours(24 * 365));
    }
    if c.ca_certificate_validity_period.is_none() {
        c.ca_certificate_validity_period = Some(Duration::from_hours(24 * 365 * 10));
    }
}

/// The newest known release without the `v` (`1.37.1`): what `init` deploys when no version is
/// given (upstream's `stable-1`, resolved offline) and what `config print` shows.
pub fn default_version_text() -> String {
    let v = version::default_version();
    format!("{}.{}.{}", v.major, v.minor, v.patch)
}

fn node_registration(n: &mut NodeRegistrationOptions) {
    set_if_empty(&mut n.cri_socket, DEFAULT_CRI_SOCKET);
    set_if_empty(&mut n.image_pull_policy, DEFAULT_IMAGE_PULL_POLICY);
    if n.image_pull_serial.is_none() {
        n.image_pull_serial = Some(true);
    }
}

/// Static defaults of one bootstrap token.
pub fn bootstrap_token(t: &mut BootstrapToken) {
    if t.ttl.is_none() && t.expires.is_none() {
        t.ttl = Some(Duration::from_hours(24));
    }
    if t.usages.is_empty() {
        t.usages = DEFAULT_TOKEN_USAGES.iter().map(|s| s.to_string()).collect();
    }
    if t.groups.is_empty() {
        t.groups = vec![DEFAULT_TOKEN_GROUP.to_string()];
    }
}

/// Static defaults of an InitConfiguration. A missing token list gets one token whose value is
/// left empty here (generated by [`dynamic_init`]) unless `placeholder` asks for upstream's
/// printed placeholder.
pub fn init(c: &mut InitConfiguration, placeholder: bool) {
    c.api_version = API_VERSION.into();
    c.kind = "InitConfiguration".into();
    if c.bootstrap_tokens.is_empty() {
        c.bootstrap_tokens.push(BootstrapToken {
            token: if placeholder {
                BootstrapTokenString::parse(PLACEHOLDER_TOKEN).unwrap_or_default()
            } else {
                BootstrapTokenString::default()
            },
            ..Default::default()
        });
    }
    c.bootstrap_tokens.iter_mut().for_each(bootstrap_token);
    if c.local_api_endpoint.bind_port == 0 {
        c.local_api_endpoint.bind_port = DEFAULT_BIND_PORT;
    }
    node_registration(&mut c.node_registration);
    default_timeouts_into(&mut c.timeouts);
}

/// Static defaults of a JoinConfiguration.
pub fn join(c: &mut JoinConfiguration) {
    c.api_version = API_VERSION.into();
    c.kind = "JoinConfiguration".into();
    set_if_empty(&mut c.ca_cert_path, DEFAULT_CA_CERT_PATH);
    if c.discovery.tls_bootstrap_token.is_empty()
        && let Some(bt) = &c.discovery.bootstrap_token
    {
        c.discovery.tls_bootstrap_token = bt.token.clone();
    }
    if let Some(cp) = &mut c.control_plane
        && cp.local_api_endpoint.bind_port == 0
    {
        cp.local_api_endpoint.bind_port = DEFAULT_BIND_PORT;
    }
    node_registration(&mut c.node_registration);
    default_timeouts_into(&mut c.timeouts);
}

/// Static defaults of a ResetConfiguration.
pub fn reset(c: &mut ResetConfiguration) {
    c.api_version = API_VERSION.into();
    c.kind = "ResetConfiguration".into();
    set_if_empty(&mut c.certificates_dir, DEFAULT_CERTIFICATES_DIR);
    set_if_empty(&mut c.cri_socket, DEFAULT_CRI_SOCKET);
    default_timeouts_into(&mut c.timeouts);
}

/// Static defaults of an UpgradeConfiguration.
pub fn upgrade(c: &mut UpgradeConfiguration) {
    c.api_version = API_VERSION.into();
    c.kind = "UpgradeConfiguration".into();
    for (renew, etcd, policy, serial) in [
        (
            &mut c.apply.certificate_renewal,
            &mut c.apply.etcd_upgrade,
            &mut c.apply.image_pull_policy,
            &mut c.apply.image_pull_serial,
        ),
        (
            &mut c.node.certificate_renewal,
            &mut c.node.etcd_upgrade,
            &mut c.node.image_pull_policy,
            &mut c.node.image_pull_serial,
        ),
    ] {
        renew.get_or_insert(true);
        etcd.get_or_insert(true);
        set_if_empty(policy, DEFAULT_IMAGE_PULL_POLICY);
        serial.get_or_insert(true);
    }
    default_timeouts_into(&mut c.timeouts);
}

/// What the host says, for dynamic defaulting. Gathered by the caller through its effects layer.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// The kernel hostname (`os.Hostname()` upstream).
    pub hostname: String,
    /// The IP of the interface holding the default route, if any.
    pub default_ip: Option<std::net::IpAddr>,
    /// Which of [`KNOWN_CRI_SOCKETS`] exist on the host.
    pub cri_sockets_found: Vec<String>,
}

/// Errors of dynamic defaulting, each with what to set instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DynamicDefaultError {
    /// More than one CRI socket is present.
    #[error(
        "found multiple CRI endpoints on the host ({0}); set nodeRegistration.criSocket in the config or pass --cri-socket to choose one"
    )]
    MultipleCriSockets(String),
    /// No address to advertise.
    #[error(
        "unable to choose an advertise address: no network interface holds a default route; set localAPIEndpoint.advertiseAddress in the config or pass --apiserver-advertise-address"
    )]
    NoAdvertiseAddress,
    /// The hostname cannot be a node name.
    #[error(
        "the hostname {0:?} is not a valid node name; pass --node-name or set nodeRegistration.name"
    )]
    BadHostname(String),
    /// A random token could not be generated.
    #[error("{0}")]
    Random(String),
}

/// Fills in the node name from the hostname, lowercased as upstream does.
pub fn node_name(
    n: &mut NodeRegistrationOptions,
    facts: &HostFacts,
) -> Result<(), DynamicDefaultError> {
    if n.name.is_empty() {
        let name = facts.hostname.trim().to_lowercase();
        if crate::validate::dns1123_subdomain(&name).is_err() {
            return Err(DynamicDefaultError::BadHostname(facts.hostname.clone()));
        }
        n.name = name;
    }
    Ok(())
}

/// Chooses the CRI socket when none was given: the one found, or the default when none is.
pub fn cri_socket(
    n: &mut NodeRegistrationOptions,
    given: bool,
    facts: &HostFacts,
) -> Result<(), DynamicDefaultError> {
    if given {
        return Ok(());
    }
    match facts.cri_sockets_found.as_slice() {
        [] => n.cri_socket = DEFAULT_CRI_SOCKET.into(),
        [one] => n.cri_socket = one.clone(),
        many => return Err(DynamicDefaultError::MultipleCriSockets(many.join(", "))),
    }
    Ok(())
}

/// Dynamic defaults of init: node name, CRI socket, advertise address, generated tokens.
/// `cri_given` says whether the operator chose the CRI socket (flag or config).
pub fn dynamic_init(
    c: &mut InitConfiguration,
    cri_given: bool,
    facts: &HostFacts,
) -> Result<(), DynamicDefaultError> {
    node_name(&mut c.node_registration, facts)?;
    cri_socket(&mut c.node_registration, cri_given, facts)?;
    if c.local_api_endpoint.advertise_address.is_empty() {
        let ip = facts
            .default_ip
            .ok_or(DynamicDefaultError::NoAdvertiseAddress)?;
        c.local_api_endpoint.advertise_address = ip.to_string();
    }
    for t in &mut c.bootstrap_tokens {
        if t.token.is_empty() {
            t.token = BootstrapTokenString::generate().map_err(DynamicDefaultError::Random)?;
        }
    }
    Ok(())
}

/// Dynamic defaults of join: node name, CRI socket, and for control-plane joins the advertise
/// address.
pub fn dynamic_join(
    c: &mut JoinConfiguration,
    cri_given: bool,
    facts: &HostFacts,
) -> Result<(), DynamicDefaultError> {
    node_name(&mut c.node_registration, facts)?;
    cri_socket(&mut c.node_registration, cri_given, facts)?;
    if let Some(cp) = &mut c.control_plane
        && cp.local_api_endpoint.advertise_address.is_empty()
    {
        let ip = facts
            .default_ip
            .ok_or(DynamicDefaultError::NoAdvertiseAddress)?;
        cp.local_api_endpoint.advertise_address = ip.to_string();
    }
    Ok(())
}
