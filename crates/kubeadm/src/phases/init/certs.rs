//! `init phase certs …`: the cluster CAs, every leaf certificate of the table and the
//! service-account key pair. Existing valid files are reused; invalid ones are errors, checked
//! before anything is written.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use kubeadm_effects::{Content, Effects};
use kubeadm_pki::cert::{self, Authority};
use kubeadm_pki::table::{self, CertSpec};
use kubeadm_pki::{CertInfo, KeyAlgorithm, KeySupply, PkiError, PrivateKey};
use kubeadm_workflow::Phase;

use super::InitContext;
use crate::error::{Error, Result};

/// Keys being generated in the background for the leaves of the running group phase.
static KEY_SUPPLY: Mutex<Option<KeySupply>> = Mutex::new(None);

/// Starts generating `n` keys in the background (on every core); leaves take them with
/// [`take_key`] as they become ready, so signing and writing overlap with key generation.
pub fn prefetch_keys(alg: KeyAlgorithm, n: usize) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    if let Ok(mut slot) = KEY_SUPPLY.lock() {
        match slot.as_ref() {
            // `init` runs certs then kubeconfig in one process: the key a worker was racing
            // for at the end of the first group serves the second.
            Some(s) if s.algorithm() == alg => s.extend(n),
            _ => *slot = Some(KeySupply::start(alg, n)),
        }
    }
    Ok(())
}

/// A key of `alg`: from the background supply when one is running for `alg`, freshly
/// generated otherwise.
pub fn take_key(alg: KeyAlgorithm) -> Result<PrivateKey> {
    // Clone the handle so the global lock is not held while waiting for a key.
    let supply = KEY_SUPPLY
        .lock()
        .ok()
        .and_then(|s| s.clone())
        .filter(|s| s.algorithm() == alg);
    Ok(match supply {
        Some(s) => s.take()?,
        None => PrivateKey::generate(alg)?,
    })
}

/// The configured key algorithm (`encryptionAlgorithm`, or the older `PublicKeysECDSA` gate).
pub fn algorithm(ctx: &InitContext) -> Result<KeyAlgorithm> {
    Ok(KeyAlgorithm::for_cluster(&ctx.cfg.cluster)?)
}

/// `<certificatesDir>/<rel>`.
pub fn cert_path(ctx: &InitContext, rel: &str) -> PathBuf {
    Path::new(&ctx.cfg.cluster.certificates_dir).join(rel)
}

/// Reads a text file through the effects layer.
pub fn read_text(fx: &dyn Effects, path: &Path) -> Result<Option<String>> {
    Ok(fx.read_to_string(path)?)
}

/// Loads a certificate file if present.
pub fn load_cert(fx: &dyn Effects, path: &Path) -> Result<Option<CertInfo>> {
    match read_text(fx, path)? {
        None => Ok(None),
        Some(t) => Ok(Some(CertInfo::from_pem(&path.display().to_string(), &t)?)),
    }
}

/// Loads a key file if present.
pub fn load_key(fx: &dyn Effects, path: &Path) -> Result<Option<PrivateKey>> {
    match read_text(fx, path)? {
        None => Ok(None),
        Some(t) => Ok(Some(PrivateKey::from_pem(&path.display().to_string(), &t)?)),
    }
}

/// Writes a certificate (0644) and its key (0600).
pub fn write_pair(
    fx: &dyn Effects,
    crt: &Path,
    key_path: &Path,
    cert_pem: &str,
    key: &PrivateKey,
) -> Result<()> {
    fx.write_file(
        key_path,
        Content::Secret {
            data: key.pem.clone().into_bytes(),
            what: key.describe(),
        },
        0o600,
    )?;
    fx.write_file(crt, Content::Plain(cert_pem.as_bytes().to_vec()), 0o644)?;
    Ok(())
}

fn bad(file: &Path, problem: impl Into<String>) -> Error {
    PkiError::BadFile {
        file: file.display().to_string(),
        problem: problem.into(),
    }
    .into()
}

fn skipped(ctx: &InitContext, path: &str) -> bool {
    ctx.cfg
        .init
        .skip_phases
        .iter()
        .any(|s| s == "certs" || s == path)
}

/// The table rows this run manages (etcd rows only with local etcd).
pub fn active_specs(ctx: &InitContext) -> Vec<&'static CertSpec> {
    table::CERTS
        .iter()
        .filter(|c| !c.local_etcd || ctx.cfg.local_etcd().is_some())
        .collect()
}

/// Checks one row's existing files without writing: `Ok(true)` when they exist and can be
/// reused, `Ok(false)` when they are missing, an error naming the file otherwise.
fn check_row(ctx: &InitContext, spec: &CertSpec) -> Result<bool> {
    let fx = ctx.fx.as_ref();
    let crt_path = cert_path(ctx, &spec.cert_file());
    let key_path = cert_path(ctx, &spec.key_file());
    let Some(crt) = load_cert(fx, &crt_path)? else {
        if fx.exists(&key_path) {
            // Never generate over a key: for a CA that would silently replace the cluster's
            // root of trust (upstream refuses this state too).
            let hint = if spec.is_ca() {
                format!(
                    "restore {} from a backup; or, to start a new CA, move {} away (every certificate the old CA signed must then be issued again)",
                    crt_path.display(),
                    key_path.display()
                )
            } else {
                format!(
                    "restore {}, or remove {} to let kubeadm generate both",
                    crt_path.display(),
                    key_path.display()
                )
            };
            return Err(Error::with_hint(
                format!(
                    "{} exists but its certificate {} is missing",
                    key_path.display(),
                    crt_path.display()
                ),
                hint,
            ));
        }
        return Ok(false);
    };
    let key = load_key(fx, &key_path)?;
    let want = kubeadm_pki::request_for(spec, &ctx.cfg)?;
    let ca = table::ca_of(spec);
    let ca_cert = if spec.is_ca() {
        None
    } else {
        let ca_path = cert_path(ctx, &ca.cert_file());
        Some(load_cert(fx, &ca_path)?.ok_or_else(|| {
            bad(
                &crt_path,
                format!(
                    "the certificate exists but its CA {} does not",
                    ca_path.display()
                ),
            )
        })?)
    };
    if key.is_none() && !spec.is_ca() {
        return Err(bad(
            &key_path,
            "the certificate exists but its private key is missing",
        ));
    }
    if let Some(ca_cert) = &ca_cert {
        // A leaf is only as good as its CA: the CA rule first, naming the CA and its dates.
        cert::check_ca(
            &cert_path(ctx, &ca.cert_file()).display().to_string(),
            ca_cert,
            kubeadm_api::dates::now_unix(),
        )?;
    }
    cert::check_existing(
        &crt_path.display().to_string(),
        &crt,
        key.as_ref(),
        ca_cert.as_ref(),
        &want,
    )?;
    Ok(true)
}

/// Group step: report the folder, check every existing file, external etcd's files, and
/// generate the missing keys in parallel.
fn prepare(ctx: &mut InitContext) -> Result<()> {
    println!(
        "[certs] Using certificateDir folder {:?}",
        ctx.cfg.cluster.certificates_dir
    );
    if let Some(ext) = &ctx.cfg.cluster.etcd.external {
        for (what, f) in [
            ("caFile", &ext.ca_file),
            ("certFile", &ext.cert_file),
            ("keyFile", &ext.key_file),
        ] {
            if !f.is_empty() && !ctx.fx.exists(Path::new(f)) {
                return Err(Error::with_hint(
                    format!("external etcd {what} {f} does not exist"),
                    "copy the external etcd client files to this host, or fix ClusterConfiguration.etcd.external",
                ));
            }
        }
    }
    let mut missing = 0;
    for spec in active_specs(ctx) {
        if skipped(ctx, &format!("certs/{}", spec.name)) {
            continue;
        }
        if !check_row(ctx, spec)? {
            missing += 1;
        }
    }
    if !skipped(ctx, "certs/sa") && !check_sa(ctx)? {
        missing += 1;
    }
    prefetch_keys(algorithm(ctx)?, missing)
}

/// Creates or reuses one certificate of the table.
pub fn run_cert(ctx: &mut InitContext, name: &str) -> Result<()> {
    let spec =
        table::find(name).ok_or_else(|| Error::msg(format!("unknown certificate {name}")))?;
    let fx = ctx.fx.as_ref();
    let crt_path = cert_path(ctx, &spec.cert_file());
    let key_path = cert_path(ctx, &spec.key_file());
    if spec.is_ca() {
        if check_row(ctx, spec)? {
            if fx.exists(&key_path) {
                println!("[certs] Using existing {} certificate authority", spec.base);
            } else {
                println!(
                    "[certs] Using existing {} keyless certificate authority",
                    spec.base
                );
            }
            return Ok(());
        }
        let req = kubeadm_pki::request_for(spec, &ctx.cfg)?;
        println!("[certs] Generating {:?} certificate and key", spec.base);
        let key = take_key(algorithm(ctx)?)?;
        let issued = cert::self_signed(&req, &key, jiff::Timestamp::now())?;
        return write_pair(fx, &crt_path, &key_path, &issued.pem, &key);
    }
    if check_row(ctx, spec)? {
        println!(
            "[certs] Using existing {} certificate and key on disk",
            spec.base
        );
        return Ok(());
    }
    let ca = table::ca_of(spec);
    let ca_crt_path = cert_path(ctx, &ca.cert_file());
    let ca_key_path = cert_path(ctx, &ca.key_file());
    let ca_cert = load_cert(fx, &ca_crt_path)?.ok_or_else(|| {
        Error::with_hint(
            format!(
                "cannot create {}: its CA certificate {} does not exist",
                crt_path.display(),
                ca_crt_path.display()
            ),
            format!("run `kubeadm init phase certs {}` first", ca.name),
        )
    })?;
    let ca_key = load_key(fx, &ca_key_path)?.ok_or_else(|| {
        Error::with_hint(
            format!(
                "external CA mode: {} is missing and cannot be signed because {} is absent",
                crt_path.display(),
                ca_key_path.display()
            ),
            "provide every certificate signed by your external CA, or put the CA key in place",
        )
    })?;
    if !ca_cert.matches_key(&ca_key) {
        return Err(bad(
            &ca_key_path,
            "the CA key does not match the CA certificate",
        ));
    }
    let req = kubeadm_pki::request_for(spec, &ctx.cfg)?;
    println!("[certs] Generating {:?} certificate and key", spec.base);
    if !req.alt.is_empty() {
        println!(
            "[certs] {} serving cert is signed for DNS names [{}] and IPs [{}]",
            spec.base,
            req.alt.dns.join(" "),
            req.alt
                .ips
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let key = take_key(algorithm(ctx)?)?;
    let issued = cert::sign(
        &req,
        &key,
        &Authority {
            cert_der: &ca_cert.der,
            key: &ca_key,
        },
        jiff::Timestamp::now(),
    )?;
    write_pair(fx, &crt_path, &key_path, &issued.pem, &key)
}

/// Checks the existing service-account key pair without writing: `Ok(true)` when the key
/// exists and parses (and sa.pub, if present, is its public half), `Ok(false)` when absent.
fn check_sa(ctx: &InitContext) -> Result<bool> {
    let fx = ctx.fx.as_ref();
    let pub_path = cert_path(ctx, "sa.pub");
    let Some(key) = load_key(fx, &cert_path(ctx, "sa.key"))? else {
        return Ok(false);
    };
    match read_text(fx, &pub_path)? {
        Some(p) if public_der(&p) != public_der(&key.public_pem()) => {
            Err(bad(&pub_path, "does not hold the public half of sa.key"))
        }
        _ => Ok(true),
    }
}

/// Creates or reuses the service-account key pair.
fn run_sa(ctx: &mut InitContext) -> Result<()> {
    let fx = ctx.fx.as_ref();
    let key_path = cert_path(ctx, "sa.key");
    let pub_path = cert_path(ctx, "sa.pub");
    if check_sa(ctx)?
        && let Some(key) = load_key(fx, &key_path)?
    {
        if read_text(fx, &pub_path)?.is_none() {
            fx.write_file(
                &pub_path,
                Content::Plain(key.public_pem().into_bytes()),
                kubeadm_pki::table::file_mode("sa.pub"),
            )?;
        }
        println!("[certs] Using the existing \"sa\" key");
        return Ok(());
    }
    println!("[certs] Generating \"sa\" key and public key");
    let key = take_key(algorithm(ctx)?)?;
    fx.write_file(
        &key_path,
        Content::Secret {
            data: key.pem.clone().into_bytes(),
            what: key.describe(),
        },
        0o600,
    )?;
    fx.write_file(
        &pub_path,
        Content::Plain(key.public_pem().into_bytes()),
        kubeadm_pki::table::file_mode("sa.pub"),
    )?;
    Ok(())
}

fn public_der(pem_text: &str) -> Option<Vec<u8>> {
    pem::parse(pem_text).ok().map(|p| p.contents().to_vec())
}

fn local_etcd(ctx: &InitContext) -> bool {
    ctx.cfg.local_etcd().is_some()
}

/// Flags of every certificate phase (upstream's `getCertPhaseFlags`).
const CERT_FLAGS: &[&str] = &["cert-dir", "config", "kubernetes-version", "dry-run"];
/// What the apiserver certificate's SANs also depend on.
const APISERVER_CERT_FLAGS: &[&str] = &[
    "cert-dir",
    "config",
    "kubernetes-version",
    "dry-run",
    "apiserver-advertise-address",
    "control-plane-endpoint",
    "apiserver-cert-extra-sans",
    "service-dns-domain",
    "service-cidr",
];

/// The `certs` phase group, in upstream order: one leaf per row of the certificate table,
/// then `sa`. The group's own step checks every existing file before the first is written.
pub fn phase() -> Phase<InitContext, Error> {
    let mut children: Vec<Phase<InitContext, Error>> = table::CERTS
        .iter()
        .map(|spec| {
            let name = spec.name;
            let leaf = Phase::leaf(name, spec.help, move |ctx: &mut InitContext| {
                run_cert(ctx, name)
            })
            .long(format!(
                "{}, and save them into {}.crt and {}.key files.\n\nIf both files already exist, kubeadm skips the generation step and existing files will be used.",
                spec.help, spec.base, spec.base
            ))
            .flags(if name == "apiserver" {
                APISERVER_CERT_FLAGS
            } else {
                CERT_FLAGS
            });
            if spec.local_etcd {
                leaf.when(local_etcd)
            } else {
                leaf
            }
        })
        .collect();
    children.push(
        Phase::leaf(
            "sa",
            "Generate a private key for signing service account tokens along with its public key",
            run_sa,
        )
        .flags(&["cert-dir", "config", "dry-run"]),
    );
    Phase::group("certs", "Certificate generation", children).with_run(prepare)
}
