//! The command-line tree, upstream's commands, flags and help. `init phase …` sub-commands are
//! generated from the phase tree at start-up (see [`crate::phases`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// kubeadm: easily bootstrap a secure Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(
    name = "kubeadm",
    about = "kubeadm: easily bootstrap a secure Kubernetes cluster",
    long_about = "kubeadm: easily bootstrap a secure Kubernetes cluster.\n\nA drop-in Rust implementation of upstream kubeadm: same commands, phases, flags and configuration API (kubeadm.k8s.io/v1beta3 and v1beta4).\n\nExample usage:\n\n    Create a two-machine cluster with one control-plane node and one worker node:\n\n    On the first machine:  kubeadm init\n    On the second machine: kubeadm join <arguments-returned-from-init>",
    disable_version_flag = true
)]
pub struct Cli {
    /// [EXPERIMENTAL] The path to the 'real' host root filesystem. Every host path is resolved under it.
    #[arg(long, global = true, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Number for the log level verbosity.
    #[arg(
        short = 'v',
        long = "v",
        global = true,
        value_name = "LEVEL",
        default_value_t = 0
    )]
    pub verbosity: u8,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run this command in order to set up the Kubernetes control plane.
    Init(Box<InitArgs>),
    /// Run this on any machine you wish to join an existing cluster.
    Join(Box<JoinArgs>),
    /// Performs a best effort revert of changes made to this host by 'kubeadm init' or 'kubeadm join'.
    Reset(ResetArgs),
    /// Manage configuration for a kubeadm cluster.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage bootstrap tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Commands related to handling Kubernetes certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Snapshots, restore and membership of the local etcd cluster (beyond upstream).
    #[command(subcommand)]
    Etcd(crate::commands::etcd::EtcdCommand),
    /// Prepare this host for Kubernetes (beyond upstream): kernel modules, sysctls, swap.
    #[command(subcommand)]
    Host(HostCommand),
    /// The built-in control-plane endpoint (beyond upstream): keepalived VIP and haproxy.
    #[command(subcommand)]
    Ha(HaCommand),
    /// Kubeconfig file utilities.
    #[command(subcommand)]
    Kubeconfig(KubeconfigCommand),
    /// Upgrade your cluster smoothly to a newer version with this command.
    #[command(subcommand)]
    Upgrade(UpgradeCommand),
    /// Print the version of kubeadm.
    Version(VersionArgs),
    /// Output shell completion code for the specified shell (bash, zsh or fish).
    Completion(CompletionArgs),
}

/// Flags of `kubeadm init` and its phases.
#[derive(Debug, Clone, Default, Args)]
pub struct InitArgs {
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The IP address the API Server will advertise it's listening on. If not set the default network interface will be used.
    #[arg(long, value_name = "IP")]
    pub apiserver_advertise_address: Option<String>,
    /// Port for the API Server to bind to (default 6443).
    #[arg(long, value_name = "PORT")]
    pub apiserver_bind_port: Option<i32>,
    /// Optional extra Subject Alternative Names (SANs) to use for the API Server serving certificate. Can be both IP addresses and DNS names.
    #[arg(long, value_delimiter = ',', value_name = "SANS")]
    pub apiserver_cert_extra_sans: Vec<String>,
    /// The path where to save and store the certificates (default "/etc/kubernetes/pki").
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<String>,
    /// Key used to encrypt the control-plane certificates in the kubeadm-certs Secret. The certificate key is a hex encoded string that is an AES key of size 32 bytes.
    #[arg(long, value_name = "KEY")]
    pub certificate_key: Option<String>,
    /// Specify a stable IP address or DNS name for the control plane.
    #[arg(long, value_name = "ENDPOINT")]
    pub control_plane_endpoint: Option<String>,
    /// How this node runs its control plane: "staticPod" (the kubelet runs static Pods, the default) or "systemd" (one systemd service per component, run from ControlPlaneConfiguration.binaryDir). kubeadm-rs only.
    #[arg(long, value_name = "MODE")]
    pub control_plane_mode: Option<String>,
    /// Path to the CRI socket to connect. If empty kubeadm will try to auto-detect this value; use this option only if you have more than one CRI installed or if you have non-standard CRI socket.
    #[arg(long, value_name = "SOCKET")]
    pub cri_socket: Option<String>,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// A set of key=value pairs that describe feature gates for various features.
    #[arg(long, value_name = "GATES")]
    pub feature_gates: Option<String>,
    /// A list of checks whose errors will be shown as warnings. Example: 'IsPrivilegedUser,Swap'. Value 'all' ignores errors from all checks.
    #[arg(long, value_delimiter = ',', value_name = "CHECKS")]
    pub ignore_preflight_errors: Vec<String>,
    /// Choose a container registry to pull control plane images from (default "registry.k8s.io").
    #[arg(long, value_name = "REPO")]
    pub image_repository: Option<String>,
    /// Choose a specific Kubernetes version for the control plane (default "stable-1").
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// Specify the node name.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Path to a directory that contains files named "target[suffix][+patchtype].extension".
    #[arg(long, value_name = "DIR")]
    pub patches: Option<String>,
    /// Specify range of IP addresses for the pod network. If set, the control plane will automatically allocate CIDRs for every node.
    #[arg(long, value_name = "CIDR")]
    pub pod_network_cidr: Option<String>,
    /// Use alternative range of IP address for service VIPs (default "10.96.0.0/12").
    #[arg(long, value_name = "CIDR")]
    pub service_cidr: Option<String>,
    /// Use alternative domain for services, e.g. "myorg.internal" (default "cluster.local").
    #[arg(long, value_name = "DOMAIN")]
    pub service_dns_domain: Option<String>,
    /// Don't print the key used to encrypt the control-plane certificates.
    #[arg(long)]
    pub skip_certificate_key_print: bool,
    /// List of phases to be skipped.
    #[arg(long, value_delimiter = ',', value_name = "PHASES")]
    pub skip_phases: Vec<String>,
    /// Skip printing of the default bootstrap token generated by 'kubeadm init'.
    #[arg(long)]
    pub skip_token_print: bool,
    /// The token to use for establishing bidirectional trust between nodes and control-plane nodes. The format is [a-z0-9]{6}\.[a-z0-9]{16} - e.g. abcdef.0123456789abcdef
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// The duration before the token is automatically deleted (e.g. 1s, 2m, 3h). If set to '0', the token will never expire (default 24h0m0s).
    #[arg(long, value_name = "DURATION")]
    pub token_ttl: Option<String>,
    /// Upload control-plane certificates to the kubeadm-certs Secret.
    #[arg(long)]
    pub upload_certs: bool,
}

/// Flags of `kubeadm join` and its phases.
#[derive(Debug, Clone, Default, Args)]
pub struct JoinArgs {
    /// The API server endpoint (`host:port`) for token discovery.
    #[arg(value_name = "API-SERVER-ENDPOINT")]
    pub api_server_endpoint: Option<String>,
    /// If the node should host a new control plane instance, the IP address the API Server will advertise it's listening on. If not set the default network interface will be used.
    #[arg(long, value_name = "IP")]
    pub apiserver_advertise_address: Option<String>,
    /// If the node should host a new control plane instance, the port for the API Server to bind to.
    #[arg(long, value_name = "PORT")]
    pub apiserver_bind_port: Option<i32>,
    /// Use this key to decrypt the certificate secrets uploaded by init. The certificate key is a hex encoded string that is an AES key of size 32 bytes.
    #[arg(long, value_name = "KEY")]
    pub certificate_key: Option<String>,
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Create a new control plane instance on this node.
    #[arg(long)]
    pub control_plane: bool,
    /// How this node runs its control plane: "staticPod" (the kubelet runs static Pods, the default) or "systemd" (one systemd service per component, run from ControlPlaneConfiguration.binaryDir). kubeadm-rs only.
    #[arg(long, value_name = "MODE")]
    pub control_plane_mode: Option<String>,
    /// Path to the CRI socket to connect.
    #[arg(long, value_name = "SOCKET")]
    pub cri_socket: Option<String>,
    /// For file-based discovery, a file or URL from which to load cluster information.
    #[arg(long, value_name = "FILE")]
    pub discovery_file: Option<String>,
    /// For token-based discovery, the token used to validate cluster information fetched from the API server.
    #[arg(long, value_name = "TOKEN")]
    pub discovery_token: Option<String>,
    /// For token-based discovery, validate that the root CA public key matches this hash (format: "<type>:<value>").
    #[arg(long, value_delimiter = ',', value_name = "HASH")]
    pub discovery_token_ca_cert_hash: Vec<String>,
    /// For token-based discovery, allow joining without --discovery-token-ca-cert-hash pinning.
    #[arg(long)]
    pub discovery_token_unsafe_skip_ca_verification: bool,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// A list of checks whose errors will be shown as warnings. Example: 'IsPrivilegedUser,Swap'. Value 'all' ignores errors from all checks.
    #[arg(long, value_delimiter = ',', value_name = "CHECKS")]
    pub ignore_preflight_errors: Vec<String>,
    /// Specify the node name.
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Path to a directory that contains files named "target[suffix][+patchtype].extension".
    #[arg(long, value_name = "DIR")]
    pub patches: Option<String>,
    /// List of phases to be skipped.
    #[arg(long, value_delimiter = ',', value_name = "PHASES")]
    pub skip_phases: Vec<String>,
    /// Specify the token used to temporarily authenticate with the Kubernetes Control Plane while joining the node.
    #[arg(long, value_name = "TOKEN")]
    pub tls_bootstrap_token: Option<String>,
    /// Use this token for both discovery-token and tls-bootstrap-token when those values are not provided.
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Flags of `kubeadm reset`.
#[derive(Debug, Clone, Default, Args)]
pub struct ResetArgs {
    /// The path to the directory where the certificates are stored. If specified, clean this directory (default "/etc/kubernetes/pki").
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<String>,
    /// Cleanup the "/etc/kubernetes/tmp" directory.
    #[arg(long)]
    pub cleanup_tmp_dir: bool,
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Path to the CRI socket to connect.
    #[arg(long, value_name = "SOCKET")]
    pub cri_socket: Option<String>,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// Reset the node without prompting for confirmation.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// A list of checks whose errors will be shown as warnings.
    #[arg(long, value_delimiter = ',', value_name = "CHECKS")]
    pub ignore_preflight_errors: Vec<String>,
    /// The kubeconfig file to use when talking to the cluster.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/kubernetes/admin.conf"
    )]
    pub kubeconfig: String,
    /// List of phases to be skipped.
    #[arg(long, value_delimiter = ',', value_name = "PHASES")]
    pub skip_phases: Vec<String>,
    /// Also remove the CNI configuration in /etc/cni/net.d (beyond upstream).
    #[arg(long)]
    pub cleanup_cni: bool,
    /// Also flush iptables rules and IPVS tables (beyond upstream; live host only).
    #[arg(long)]
    pub cleanup_iptables: bool,
}

/// `kubeadm config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print configuration.
    #[command(subcommand)]
    Print(PrintCommand),
    /// Read an older version of the kubeadm configuration API types from a file, and output the similar config object for the newer version.
    Migrate(MigrateArgs),
    /// Read a file containing the kubeadm configuration API and report any validation problems.
    Validate(ValidateArgs),
    /// Interact with container images used by kubeadm.
    #[command(subcommand)]
    Images(ImagesCommand),
}

/// `kubeadm config print …`.
// The variant names are upstream's sub-command names (`init-defaults`, …).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Subcommand)]
pub enum PrintCommand {
    /// Print default init configuration, that can be used for 'kubeadm init'.
    InitDefaults(PrintArgs),
    /// Print default join configuration, that can be used for 'kubeadm join'.
    JoinDefaults(PrintArgs),
    /// Print default reset configuration, that can be used for 'kubeadm reset'.
    ResetDefaults(PrintArgs),
    /// Print default upgrade configuration, that can be used for 'kubeadm upgrade'.
    UpgradeDefaults(PrintArgs),
}

/// Flags of `config print`.
#[derive(Debug, Args)]
pub struct PrintArgs {
    /// A comma-separated list for component config API objects to print the default values for. Available values: [KubeProxyConfiguration KubeletConfiguration].
    #[arg(long, value_delimiter = ',', value_name = "KINDS")]
    pub component_configs: Vec<String>,
}

/// Flags of `config migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Path to the kubeadm config file that is using an old API version and should be converted. This flag is mandatory.
    #[arg(long, value_name = "FILE")]
    pub old_config: Option<PathBuf>,
    /// Path to the resulting equivalent kubeadm config file using the new API version. Optional, if not specified output will be sent to STDOUT.
    #[arg(long, value_name = "FILE")]
    pub new_config: Option<PathBuf>,
    /// Allow experimental and deprecated API versions (accepted for compatibility).
    #[arg(long)]
    pub allow_experimental_api: bool,
}

/// Flags of `config validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Allow validation of experimental, unreleased APIs (accepted for compatibility).
    #[arg(long)]
    pub allow_experimental_api: bool,
}

/// `kubeadm config images …`.
#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Print a list of images kubeadm will use. The configuration file is used in case any images or image repositories are customized.
    List(ImagesListArgs),
    /// Pull images used by kubeadm (through the container runtime's CRI; parallel unless imagePullSerial, as imagePullPolicy says).
    Pull(ImagesPullArgs),
    /// Pull the images kubeadm uses and write them into one OCI archive, for hosts without a registry (beyond upstream; containerd).
    Export(ImagesExportArgs),
    /// Check an archive written by `config images export` and load it into the container runtime's k8s.io namespace (beyond upstream; containerd).
    Import(ImagesImportArgs),
}

/// The flags choosing the images and the runtime, shared by `config images pull` and `export`.
#[derive(Debug, Args)]
pub struct ImagesRuntimeArgs {
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Choose a specific Kubernetes version for the control plane.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// Choose a container registry to pull control plane images from.
    #[arg(long, value_name = "REPO")]
    pub image_repository: Option<String>,
    /// A set of key=value pairs that describe feature gates for various features.
    #[arg(long, value_name = "GATES")]
    pub feature_gates: Option<String>,
    /// Path to the CRI socket to connect. If empty kubeadm will try to auto-detect this value; use this option only if you have more than one CRI installed or if you have non-standard CRI socket.
    #[arg(long, value_name = "SOCKET")]
    pub cri_socket: Option<String>,
    /// Don't change anything; print what would be pulled (beyond upstream).
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `config images pull`.
#[derive(Debug, Args)]
pub struct ImagesPullArgs {
    /// Images and runtime.
    #[command(flatten)]
    pub common: ImagesRuntimeArgs,
}

/// Flags of `config images export`.
#[derive(Debug, Args)]
pub struct ImagesExportArgs {
    /// Images and runtime.
    #[command(flatten)]
    pub common: ImagesRuntimeArgs,
    /// The archive to write (an OCI image layout in one tar).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// The containerd client used to write the archive.
    #[arg(long, value_name = "PATH", default_value = "ctr")]
    pub ctr: String,
}

/// Flags of `config images import`.
#[derive(Debug, Args)]
pub struct ImagesImportArgs {
    /// The archive written by `kubeadm config images export`.
    pub bundle: PathBuf,
    /// Path to the CRI socket to connect. If empty kubeadm will try to auto-detect this value.
    #[arg(long, value_name = "SOCKET")]
    pub cri_socket: Option<String>,
    /// The containerd client used to load the archive.
    #[arg(long, value_name = "PATH", default_value = "ctr")]
    pub ctr: String,
    /// Check the archive and print what would be loaded, without loading it.
    #[arg(long)]
    pub dry_run: bool,
}

/// Output formats of listing commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// One item per line.
    #[default]
    Text,
    /// JSON object.
    Json,
    /// YAML object.
    Yaml,
}

/// Flags of `config images list`.
#[derive(Debug, Args)]
pub struct ImagesListArgs {
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Choose a specific Kubernetes version for the control plane.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<String>,
    /// Choose a container registry to pull control plane images from.
    #[arg(long, value_name = "REPO")]
    pub image_repository: Option<String>,
    /// A set of key=value pairs that describe feature gates for various features.
    #[arg(long, value_name = "GATES")]
    pub feature_gates: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
    /// Allow missing keys in templates (accepted for compatibility).
    #[arg(long, default_value_t = true, hide = true)]
    pub allow_missing_template_keys: bool,
}

/// `kubeadm token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Generate and print a bootstrap token, but do not create it on the server.
    Generate,
    /// Create bootstrap tokens on the server.
    Create(crate::commands::token::CreateArgs),
    /// List bootstrap tokens on the server.
    List(crate::commands::token::ListArgs),
    /// Delete bootstrap tokens on the server.
    Delete(crate::commands::token::DeleteArgs),
}

/// `kubeadm certs …`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate certificate keys.
    CertificateKey,
    /// Check certificates expiration for a Kubernetes cluster.
    CheckExpiration(CheckExpirationArgs),
    /// Renew certificates for a Kubernetes cluster (a certificate name, a kubeconfig file name, or `all`).
    Renew(RenewArgs),
    /// Generate keys and certificate signing requests.
    GenerateCsr(GenerateCsrArgs),
}

/// Flags of `certs check-expiration`.
#[derive(Debug, Args)]
pub struct CheckExpirationArgs {
    /// The path where to save the certificates.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<String>,
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The path where to find kubeconfig files.
    #[arg(long, value_name = "DIR", default_value = "/etc/kubernetes")]
    pub kubeconfig_dir: String,
    /// Output format. One of: text|json|yaml.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

/// Flags of `certs renew`.
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// What to renew: `all`, a certificate (`apiserver`, `etcd-server`, …) or a kubeconfig (`admin.conf`, …); `schedule` installs a systemd timer running `certs renew --auto`.
    pub name: Option<String>,
    /// Renew only what expires within --within (leaf certificates and kubeconfigs' client certificates, never the CAs), then restart the static Pods using them.
    #[arg(long)]
    pub auto: bool,
    /// With --auto and schedule: the renewal window (`30d`, `720h`).
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub within: String,
    /// With --auto: how long a static Pod's manifest stays out of the manifests directory (the kubelet looks every fileCheckFrequency, 20s by default).
    #[arg(long, value_name = "DURATION", default_value = "20s")]
    pub restart_wait: String,
    /// With schedule: time between two checks.
    #[arg(long, value_name = "INTERVAL", default_value = "24h")]
    pub every: String,
    /// With schedule: remove the timer and its service instead.
    #[arg(long)]
    pub disable: bool,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// The path where to save the certificates.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<String>,
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The path where to find kubeconfig files.
    #[arg(long, value_name = "DIR", default_value = "/etc/kubernetes")]
    pub kubeconfig_dir: String,
}

/// Flags of `certs generate-csr`.
#[derive(Debug, Args)]
pub struct GenerateCsrArgs {
    /// The path where to save the certificates.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<String>,
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The path where to save the kubeconfig files.
    #[arg(long, value_name = "DIR", default_value = "/etc/kubernetes")]
    pub kubeconfig_dir: String,
}

/// `kubeadm kubeconfig …`.
#[derive(Debug, Subcommand)]
pub enum KubeconfigCommand {
    /// Output a kubeconfig file for an additional user.
    User(KubeconfigUserArgs),
}

/// Flags of `kubeconfig user`.
#[derive(Debug, Args)]
pub struct KubeconfigUserArgs {
    /// The name of user. It will be used as the CN if client certificates are created.
    #[arg(long, value_name = "NAME", required = true)]
    pub client_name: String,
    /// The organizations of the client certificate. It will be used as the O if client certificates are created.
    #[arg(long, value_name = "ORG", value_delimiter = ',')]
    pub org: Vec<String>,
    /// The validity period of the client certificate. It is an offset from the current time.
    #[arg(long, value_name = "DURATION")]
    pub validity_period: Option<String>,
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Output formats of `kubeadm version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionFormat {
    /// `v1.37.0`.
    Short,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Flags of `kubeadm version`.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Output format; available options are 'yaml', 'json' and 'short'.
    #[arg(short = 'o', long = "output", value_enum)]
    pub output: Option<VersionFormat>,
}

/// Shells `completion` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Flags of `kubeadm completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    pub shell: Shell,
}

/// `kubeadm host …` (beyond upstream).
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Fix what the pre-flight checks find in the kernel and swap: load and persist the kernel modules (br_netfilter, overlay; IPVS ones for --kube-proxy-mode ipvs) in /etc/modules-load.d/k8s.conf, set and persist the sysctls (bridge-nf-call-iptables/ip6tables, ip_forward) in /etc/sysctl.d/k8s.conf, turn swap off and comment out the swap lines of /etc/fstab (backup: /etc/fstab.kubeadm-bak). Idempotent. Under --rootfs other than / the files are written and the live kernel is left alone.
    Prepare(HostPrepareArgs),
}

/// `kubeadm ha …` (beyond upstream).
#[derive(Debug, Subcommand)]
pub enum HaCommand {
    /// Print this node's keepalived.conf, its health check, haproxy.cfg and their static Pod manifests, from the HighAvailabilityConfiguration document (kubeadm-rs.io/v1alpha1) of --config, for operators who run the daemons themselves. Writes nothing.
    Render(HaRenderArgs),
    /// Show this node's part of the built-in endpoint: whether it holds the VIP, whether VIP:port (or 127.0.0.1:port) answers, and every API server backend's /readyz, from the files under /etc/kubernetes/ha.
    Status(HaStatusArgs),
}

/// Flags of `ha status`.
#[derive(Debug, Args)]
pub struct HaStatusArgs {
    /// Output format. One of: text|json|yaml.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

/// Flags of `ha render`.
#[derive(Debug, Args)]
pub struct HaRenderArgs {
    /// The configuration file holding the HighAvailabilityConfiguration (and optionally this node's InitConfiguration or JoinConfiguration).
    #[arg(long, value_name = "FILE")]
    pub config: std::path::PathBuf,
    /// This node's name (default: the InitConfiguration's, else the hostname).
    #[arg(long)]
    pub node_name: Option<String>,
    /// This node's address (default: the InitConfiguration's advertise address, else the default-route address).
    #[arg(long)]
    pub advertise_address: Option<String>,
}

/// kube-proxy modes `host prepare` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProxyMode {
    /// iptables (the default).
    Iptables,
    /// IPVS: also load the IPVS kernel modules.
    Ipvs,
    /// nftables.
    Nftables,
}

/// Flags of `host prepare`.
#[derive(Debug, Args)]
pub struct HostPrepareArgs {
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// The kube-proxy mode the node will run (ipvs loads the IPVS kernel modules too).
    #[arg(long, value_enum, default_value_t = ProxyMode::Iptables)]
    pub kube_proxy_mode: ProxyMode,
}

/// `kubeadm upgrade …`.
#[derive(Debug, Subcommand)]
pub enum UpgradeCommand {
    /// Check which versions are available to upgrade to and validate whether your current cluster is upgradeable.
    Plan(UpgradePlanArgs),
    /// Upgrade your Kubernetes cluster to the specified version.
    Apply(Box<UpgradeApplyArgs>),
    /// Show what differences would be applied to existing static pod manifests. See also: kubeadm upgrade apply --dry-run
    Diff(UpgradeDiffArgs),
    /// Upgrade commands for a node in the cluster.
    Node(Box<UpgradeNodeArgs>),
}

/// Flags every `upgrade` sub-command has.
#[derive(Debug, Clone, Default, Args)]
pub struct UpgradeCommonArgs {
    /// Path to a kubeadm configuration file (an UpgradeConfiguration, v1beta4).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The kubeconfig file to use when talking to the cluster.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/kubernetes/admin.conf"
    )]
    pub kubeconfig: String,
    /// A list of checks whose errors will be shown as warnings. Example: 'IsPrivilegedUser,Swap'. Value 'all' ignores errors from all checks.
    #[arg(long, value_delimiter = ',', value_name = "CHECKS")]
    pub ignore_preflight_errors: Vec<String>,
}

/// Flags of `upgrade apply` and `upgrade node`.
#[derive(Debug, Clone, Default, Args)]
pub struct UpgradeChangeArgs {
    /// Do not change any state, just output what actions would be performed.
    #[arg(long)]
    pub dry_run: bool,
    /// Perform the upgrade of etcd.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub etcd_upgrade: Option<bool>,
    /// Perform the renewal of certificates used by component changed during upgrades.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub certificate_renewal: Option<bool>,
    /// Path to a directory that contains files named "target[suffix][+patchtype].extension".
    #[arg(long, value_name = "DIR")]
    pub patches: Option<String>,
    /// List of phases to be skipped.
    #[arg(long, value_delimiter = ',', value_name = "PHASES")]
    pub skip_phases: Vec<String>,
    /// The etcdutl program that restores etcd's data from the upgrade's snapshot when the previous etcd does not come back after a failed etcd upgrade (default: etcdutl on PATH).
    #[arg(long, value_name = "PATH")]
    pub etcdutl: Option<String>,
}

/// Flags of `upgrade plan`.
#[derive(Debug, Clone, Default, Args)]
pub struct UpgradePlanArgs {
    /// The version to plan for (default: what the version table offers).
    pub version: Option<String>,
    /// Common flags.
    #[command(flatten)]
    pub common: UpgradeCommonArgs,
    /// Show unstable versions of Kubernetes as an upgrade alternative and allow upgrading to an alpha/beta/release candidate versions of Kubernetes.
    #[arg(long)]
    pub allow_experimental_upgrades: bool,
    /// Show release candidate versions of Kubernetes as an upgrade alternative and allow upgrading to a release candidate versions of Kubernetes.
    #[arg(long)]
    pub allow_release_candidate_upgrades: bool,
    /// Output format. One of: text|json|yaml.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ListFormat::Text)]
    pub output: ListFormat,
}

/// Flags of `upgrade apply` and its phases.
#[derive(Debug, Clone, Default, Args)]
pub struct UpgradeApplyArgs {
    /// The version to upgrade to.
    pub version: Option<String>,
    /// Common flags.
    #[command(flatten)]
    pub common: UpgradeCommonArgs,
    /// Flags of the commands that change the node.
    #[command(flatten)]
    pub change: UpgradeChangeArgs,
    /// Perform the upgrade and do not prompt for confirmation (non-interactive mode).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Force upgrading although some requirements might not be met. This also implies non-interactive mode.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Show unstable versions of Kubernetes as an upgrade alternative and allow upgrading to an alpha/beta/release candidate versions of Kubernetes.
    #[arg(long)]
    pub allow_experimental_upgrades: bool,
    /// Show release candidate versions of Kubernetes as an upgrade alternative and allow upgrading to a release candidate versions of Kubernetes.
    #[arg(long)]
    pub allow_release_candidate_upgrades: bool,
}

/// Flags of `upgrade diff`.
#[derive(Debug, Clone, Default, Args)]
pub struct UpgradeDiffArgs {
    /// The version to diff against (default: the cluster's).
    pub version: Option<String>,
    /// Common flags.
    #[command(flatten)]
    pub common: UpgradeCommonArgs,
    /// How many lines of context in the diff.
    #[arg(short = 'c', long, value_name = "N")]
    pub context_lines: Option<usize>,
}

/// Flags of `upgrade node` and its phases.
#[derive(Debug, Clone, Default, Args)]
pub struct UpgradeNodeArgs {
    /// Common flags.
    #[command(flatten)]
    pub common: UpgradeCommonArgs,
    /// Flags of the commands that change the node.
    #[command(flatten)]
    pub change: UpgradeChangeArgs,
}
