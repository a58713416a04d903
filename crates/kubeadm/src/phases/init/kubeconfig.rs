//! `init phase kubeconfig …`: admin, super-admin (≥1.29), kubelet, controller-manager and
//! scheduler kubeconfigs with embedded client certificates signed by the cluster CA.

use std::path::{Path, PathBuf};

use kubeadm_effects::Content;
use kubeadm_pki::cert::{self, Authority};
use kubeadm_pki::kubeconfig::{self, KubeconfigData};
use kubeadm_pki::table::{self, KubeconfigSpec};
use kubeadm_pki::{CertInfo, PkiError, PrivateKey};
use kubeadm_workflow::Phase;

use super::InitContext;
use super::certs::{algorithm, cert_path, load_cert, load_key, prefetch_keys, read_text, take_key};
use crate::error::{Error, Result};

/// Where kubeconfig files live.
pub const KUBECONFIG_DIR: &str = "/etc/kubernetes";

/// `/etc/kubernetes/<file>`.
pub fn kubeconfig_path(file: &str) -> PathBuf {
    Path::new(KUBECONFIG_DIR).join(file)
}

fn bad(file: &Path, problem: impl Into<String>) -> Error {
    PkiError::BadFile {
        file: file.display().to_string(),
        problem: problem.into(),
    }
    .into()
}

/// Loads the cluster CA (certificate required, key optional).
pub fn load_ca(ctx: &InitContext) -> Result<(CertInfo, Option<PrivateKey>)> {
    let fx = ctx.fx.as_ref();
    let crt = cert_path(ctx, "ca.crt");
    let ca = load_cert(fx, &crt)?.ok_or_else(|| {
        Error::with_hint(
            format!(
                "the cluster CA certificate {} does not exist",
                crt.display()
            ),
            "run `kubeadm init phase certs ca` first",
        )
    })?;
    let key = load_key(fx, &cert_path(ctx, "ca.key"))?;
    if let Some(k) = &key
        && !ca.matches_key(k)
    {
        return Err(bad(
            &cert_path(ctx, "ca.key"),
            "the CA key does not match the CA certificate",
        ));
    }
    Ok((ca, key))
}

/// Checks an existing kubeconfig against the CA and the expected server: `Ok(true)` to reuse,
/// `Ok(false)` when absent.
fn check_existing(ctx: &InitContext, spec: &KubeconfigSpec, ca: &CertInfo) -> Result<bool> {
    let path = kubeconfig_path(spec.file);
    let Some(text) = read_text(ctx.fx.as_ref(), &path)? else {
        return Ok(false);
    };
    let name = path.display().to_string();
    let parsed = kubeconfig::parse(&name, &text)?;
    let file_ca = CertInfo::from_pem(&name, &parsed.ca_pem)
        .map_err(|_| bad(&path, "holds no valid certificate-authority-data"))?;
    if file_ca.der != ca.der {
        return Err(bad(
            &path,
            "a kubeconfig file exists already but has got the wrong CA cert",
        ));
    }
    let want = kubeadm_pki::kubeconfig_server(spec, &ctx.cfg);
    if parsed.server != want {
        return Err(bad(
            &path,
            format!(
                "a kubeconfig file exists already but has got the wrong API Server URL ({} instead of {want})",
                parsed.server
            ),
        ));
    }
    if !parsed.client_cert_pem.is_empty() {
        let client = CertInfo::from_pem(&name, &parsed.client_cert_pem)?;
        if !client.signed_by(ca) {
            return Err(bad(
                &path,
                "the embedded client certificate is not signed by the cluster CA",
            ));
        }
        let key = PrivateKey::from_pem(&name, &parsed.client_key_pem)?;
        if !client.matches_key(&key) {
            return Err(bad(
                &path,
                "the embedded client key does not match the client certificate",
            ));
        }
    }
    Ok(true)
}

fn active(ctx: &InitContext) -> Vec<&'static KubeconfigSpec> {
    table::KUBECONFIGS
        .iter()
        .filter(|k| k.name != "super-admin" || ctx.cfg.info().has_super_admin())
        .collect()
}

fn prepare(ctx: &mut InitContext) -> Result<()> {
    println!("[kubeconfig] Using kubeconfig folder {KUBECONFIG_DIR:?}");
    let (ca, _) = load_ca(ctx)?;
    let mut missing = 0;
    for spec in active(ctx) {
        let path = format!("kubeconfig/{}", spec.name);
        if ctx
            .cfg
            .init
            .skip_phases
            .iter()
            .any(|s| *s == path || s == "kubeconfig")
        {
            continue;
        }
        if !check_existing(ctx, spec, &ca)? {
            missing += 1;
        }
    }
    prefetch_keys(algorithm(ctx)?, missing)
}

/// Builds the kubeconfig of a row with a new client certificate (pure but for key taking).
pub fn build(
    ctx: &InitContext,
    spec: &KubeconfigSpec,
    ca: &CertInfo,
    ca_key: &PrivateKey,
) -> Result<(String, String)> {
    let req = kubeadm_pki::kubeconfig_request(spec, &ctx.cfg);
    let key = take_key(algorithm(ctx)?)?;
    let issued = cert::sign(
        &req,
        &key,
        &Authority {
            cert_der: &ca.der,
            key: ca_key,
        },
        jiff::Timestamp::now(),
    )?;
    let data = KubeconfigData {
        cluster: ctx.cfg.cluster.cluster_name.clone(),
        server: kubeadm_pki::kubeconfig_server(spec, &ctx.cfg),
        ca_pem: kubeadm_pki::keys::pem_encode("CERTIFICATE", ca.der.clone()),
        user: req.cn.clone(),
        client_cert_pem: issued.pem,
        client_key_pem: key.pem.clone(),
    };
    Ok(kubeconfig::build(&data)?)
}

/// Creates or reuses one kubeconfig file.
pub fn run_kubeconfig(ctx: &mut InitContext, name: &str) -> Result<()> {
    let spec = table::find_kubeconfig(name)
        .ok_or_else(|| Error::msg(format!("unknown kubeconfig {name}")))?;
    let (ca, ca_key) = load_ca(ctx)?;
    let path = kubeconfig_path(spec.file);
    if check_existing(ctx, spec, &ca)? {
        println!(
            "[kubeconfig] Using existing kubeconfig file: {:?}",
            path.display().to_string()
        );
        return Ok(());
    }
    let ca_key = ca_key.ok_or_else(|| {
        Error::with_hint(
            format!(
                "external CA mode: {} is missing and cannot be created because {} is absent",
                path.display(),
                cert_path(ctx, "ca.key").display()
            ),
            "provide the kubeconfig files signed by your external CA, or put the CA key in place",
        )
    })?;
    let (yaml, shown) = build(ctx, spec, &ca, &ca_key)?;
    println!("[kubeconfig] Writing {:?} kubeconfig file", spec.file);
    ctx.fx.write_file(
        &path,
        Content::Redacted {
            data: yaml.into_bytes(),
            shown,
        },
        0o600,
    )?;
    Ok(())
}

fn has_super_admin(ctx: &InitContext) -> bool {
    ctx.cfg.info().has_super_admin()
}

/// Flags of every kubeconfig phase (upstream's `getKubeConfigPhaseFlags`).
const KUBECONFIG_FLAGS: &[&str] = &[
    "apiserver-advertise-address",
    "control-plane-endpoint",
    "apiserver-bind-port",
    "cert-dir",
    "config",
    "kubernetes-version",
    "dry-run",
];

/// The `kubeconfig` phase group, in upstream order: one leaf per row of the kubeconfig
/// table (super-admin only from 1.29). The group's own step checks the existing files first.
pub fn phase() -> Phase<InitContext, Error> {
    let children = table::KUBECONFIGS
        .iter()
        .map(|spec| {
            let name = spec.name;
            let leaf = Phase::leaf(name, spec.help, move |ctx: &mut InitContext| {
                run_kubeconfig(ctx, name)
            })
            .long(format!(
                "{}, and save it to the {} file.",
                spec.help, spec.file
            ));
            let leaf = if name == "kubelet" {
                leaf.flags(&[KUBECONFIG_FLAGS, &["node-name"]].concat())
            } else {
                leaf.flags(KUBECONFIG_FLAGS)
            };
            if name == "super-admin" {
                leaf.when(has_super_admin)
            } else {
                leaf
            }
        })
        .collect();
    Phase::group(
        "kubeconfig",
        "Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file",
        children,
    )
    .with_run(prepare)
}
