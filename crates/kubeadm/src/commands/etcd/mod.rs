//! `kubeadm etcd snapshot save|status|restore|schedule` and `kubeadm etcd member list|remove`
//! (beyond upstream): backups and disaster recovery for stacked etcd, and its membership.

mod bundle;
mod member;
mod snapshot;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use kubeadm_effects::Effects;
use kubeadm_etcd::{EtcdClient, restore};

use crate::error::{Error, Result};

/// `kubeadm etcd …`.
#[derive(Debug, Subcommand)]
pub enum EtcdCommand {
    /// Save, check, restore and schedule snapshots of the local etcd cluster.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// List or remove etcd members.
    #[command(subcommand)]
    Member(MemberCommand),
}

/// `kubeadm etcd snapshot …`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stream a consistent snapshot from etcd to FILE (default /var/lib/kubeadm/backups/etcd-snapshot-<time>.db), with its SHA-256, revision and key count recorded next to it.
    Save(SaveArgs),
    /// Check a snapshot (etcd's appended hash, the database pages, the recorded checksum) and print its revision, keys and size.
    Status(StatusArgs),
    /// Restore a snapshot on this control-plane node as a new single-member etcd cluster.
    Restore(RestoreArgs),
    /// Take snapshots periodically with a systemd timer (or remove the timer with --disable).
    Schedule(ScheduleArgs),
}

/// `kubeadm etcd member …`.
#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List the members of the etcd cluster.
    List(MemberListArgs),
    /// Remove a member (by hexadecimal id or by name).
    Remove(MemberRemoveArgs),
}

/// How to reach etcd.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// etcd client URLs, comma-separated (default: this node's member from its etcd manifest, else https://127.0.0.1:2379).
    #[arg(long, value_delimiter = ',', value_name = "URLS")]
    pub endpoints: Vec<String>,
    /// The directory holding etcd/ca.crt and the client certificate (etcd/healthcheck-client, else apiserver-etcd-client).
    #[arg(long, value_name = "DIR", default_value = "/etc/kubernetes/pki")]
    pub cert_dir: PathBuf,
    /// How long one call to etcd may take.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub etcd_timeout: String,
}

/// Output formats of the etcd commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable.
    Text,
    /// JSON.
    Json,
}

/// Flags of `etcd snapshot save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Where to write the snapshot.
    pub file: Option<PathBuf>,
    #[command(flatten)]
    /// How to reach etcd.
    pub connection: Connection,
    /// After saving, delete all but the newest N snapshots kubeadm wrote in that directory (files it did not write are never deleted).
    #[arg(long, value_name = "N")]
    pub keep: Option<usize>,
    /// Also write FILE.bundle: the PKI directory and kubeadm-config, encrypted (AES-256-GCM) with the 64-hex-character key in this file (`kubeadm certs certificate-key > FILE`).
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `etcd snapshot status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// Also open FILE.bundle with the key in this file and list what it holds.
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Flags of `etcd snapshot restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The snapshot file.
    pub file: PathBuf,
    /// This node's etcd manifest; when it is in the manifests directory, the etcd static Pod is stopped first by moving it out.
    #[arg(long, value_name = "FILE", default_value = restore::MANIFEST)]
    pub manifest: PathBuf,
    /// The etcdutl program that builds the new data directory.
    #[arg(long, value_name = "PATH", default_value = "etcdutl")]
    pub etcdutl: String,
    /// Also put back the PKI files of FILE.bundle that are missing on this node (existing ones are kept), opened with the key in this file.
    #[arg(long, value_name = "FILE")]
    pub encryption_key_file: Option<PathBuf>,
    /// How long to wait for the etcd static Pod to stop after its manifest was moved out.
    #[arg(long, value_name = "DURATION", default_value = "2m")]
    pub stop_timeout: String,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `etcd snapshot schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Time between snapshots (`12h`, `30m`, `1d`).
    #[arg(long, value_name = "INTERVAL", default_value = "12h")]
    pub every: String,
    /// How many of kubeadm's snapshots to keep.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub keep: usize,
    /// Remove the timer and its service instead (snapshots already taken stay).
    #[arg(long)]
    pub disable: bool,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `etcd member list`.
#[derive(Debug, Args)]
pub struct MemberListArgs {
    #[command(flatten)]
    /// How to reach etcd.
    pub connection: Connection,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// Flags of `etcd member remove`.
#[derive(Debug, Args)]
pub struct MemberRemoveArgs {
    /// The member: its hexadecimal id (as `member list` prints it) or its name.
    pub member: String,
    #[command(flatten)]
    /// How to reach etcd.
    pub connection: Connection,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs `kubeadm etcd …`.
pub fn run(root: &Path, cmd: EtcdCommand) -> Result<()> {
    match cmd {
        EtcdCommand::Snapshot(SnapshotCommand::Save(a)) => snapshot::save(root, a),
        EtcdCommand::Snapshot(SnapshotCommand::Status(a)) => snapshot::status(root, a),
        EtcdCommand::Snapshot(SnapshotCommand::Restore(a)) => snapshot::restore(root, a),
        EtcdCommand::Snapshot(SnapshotCommand::Schedule(a)) => snapshot::schedule(root, a),
        EtcdCommand::Member(MemberCommand::List(a)) => member::list(root, a),
        EtcdCommand::Member(MemberCommand::Remove(a)) => member::remove(root, a),
    }
}

/// A path typed on the command line as a host path: absolute as given, relative ones taken
/// from the current directory (then resolved under `--rootfs` like every host path).
fn host_path(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir()
        .map_err(|e| Error::msg(format!("cannot read the current directory: {e}")))?;
    Ok(cwd.join(p))
}

fn duration_flag(flag: &str, value: &str) -> Result<Duration> {
    kubeadm_render::systemd::parse_interval(value).map_err(|e| super::flag_error(flag, value, &e))
}

/// A connected client and what it connects with, for messages.
pub(crate) struct Connected {
    /// The client.
    pub(crate) client: EtcdClient,
    /// Its endpoints and certificate.
    pub(crate) about: Described,
}

/// The endpoints and certificate of a connection, for messages.
pub(crate) struct Described {
    endpoints: Vec<String>,
    cert: PathBuf,
}

impl Described {
    /// Adds which endpoints and certificate were used to an etcd error.
    pub(crate) fn err(&self, e: impl std::fmt::Display) -> Error {
        Error::with_hint(
            format!(
                "etcd at {} (client certificate {}): {e}",
                self.endpoints.join(","),
                self.cert.display()
            ),
            "check that etcd runs (`crictl ps --name etcd`) and that the certificate is signed by etcd/ca.crt; name other members with --endpoints",
        )
    }
}

/// The endpoints to use: the flag, else this node's member from its manifest, else the
/// default local client URL.
fn endpoints(fx: &dyn Effects, flag: &[String]) -> Vec<String> {
    if !flag.is_empty() {
        return flag.to_vec();
    }
    let manifest = Path::new(restore::MANIFEST);
    if let Ok(Some(text)) = fx.read_to_string(manifest)
        && let Ok((m, _)) = restore::local_member(manifest, &text)
        && !m.client_urls.is_empty()
    {
        return m.client_urls;
    }
    vec!["https://127.0.0.1:2379".into()]
}

/// Connects with the etcd CA and the node's healthcheck-client certificate (or the API
/// server's etcd client certificate), as upstream's etcd client does.
fn connect(fx: &dyn Effects, c: &Connection) -> Result<Connected> {
    let timeout = duration_flag("etcd-timeout", &c.etcd_timeout)?;
    connect_to(fx, endpoints(fx, &c.endpoints), &c.cert_dir, timeout)
}

/// Connects to `endpoints` with the etcd CA and a client certificate of `dir` (the node's
/// healthcheck-client certificate, else the API server's etcd client certificate); `timeout`
/// bounds each call.
pub(crate) fn connect_to(
    fx: &dyn Effects,
    endpoints: Vec<String>,
    dir: &Path,
    timeout: Duration,
) -> Result<Connected> {
    let (cert, tls) = crate::etcd_membership::load_tls_from(
        fx,
        dir,
        &crate::etcd_membership::CLIENT_PAIRS,
        "run this on a control-plane node, or pass --cert-dir; a missing client certificate is created by `kubeadm init phase certs etcd-healthcheck-client`",
    )?;
    let client = EtcdClient::new(&endpoints, Some(&tls), timeout).map_err(|e| {
        Error::with_hint(
            format!("etcd client with {}: {e}", cert.display()),
            "check the certificate, its key and etcd/ca.crt (PEM)",
        )
    })?;
    Ok(Connected {
        client,
        about: Described { endpoints, cert },
    })
}
