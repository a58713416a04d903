//! `kubeadm certs check-expiration|renew|generate-csr|certificate-key`.

use std::path::{Path, PathBuf};

use kubeadm_api::defaults;
use kubeadm_api::v1beta4::ClusterConfiguration;
use kubeadm_effects::{Content, Effects};
use kubeadm_pki::cert::{self, Authority};
use kubeadm_pki::kubeconfig::{self, KubeconfigData};
use kubeadm_pki::table::{self, CertSpec};
use kubeadm_pki::{CertInfo, KeyAlgorithm, PrivateKey};
use serde_json::json;

use super::read_config;
use crate::cli::{CertsCommand, CheckExpirationArgs, GenerateCsrArgs, ListFormat, RenewArgs};
use crate::error::{Error, Result};
use crate::phases::init::certs::{load_cert, load_key, read_text, write_pair};

/// Kubeconfig files whose embedded certificates `certs renew` and `check-expiration` handle
/// (kubelet.conf is rotated by the kubelet itself).
const RENEWABLE_KUBECONFIGS: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

/// The ClusterConfiguration from `--config` (defaulted), with `--cert-dir` applied.
pub(crate) fn cluster_config(
    config: Option<&Path>,
    cert_dir: Option<&str>,
) -> Result<(
    ClusterConfiguration,
    kubeadm_api::v1beta4::InitConfiguration,
)> {
    let docs = match config {
        Some(p) => read_config(p)?,
        None => Default::default(),
    };
    let mut cluster = docs.cluster.unwrap_or_default();
    let init = docs.init.unwrap_or_default();
    if let Some(d) = cert_dir {
        cluster.certificates_dir = d.to_string();
    }
    defaults::cluster(&mut cluster);
    Ok((cluster, init))
}

/// One row of the expiration report.
struct Row {
    name: String,
    ca: Option<String>,
    cert: Option<CertInfo>,
    external: bool,
}

/// Time left as check-expiration prints it (`364d`, `5h`, `<invalid>` when past).
pub(crate) fn residual(secs: i64) -> String {
    if secs < 0 {
        return "<invalid>".into();
    }
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 60 {
        format!("{secs}s")
    } else if m < 60 {
        format!("{m}m")
    } else if h < 24 {
        format!("{h}h")
    } else if d < 365 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

/// An expiry time as check-expiration prints it (`Jan 02, 2027 03:04 UTC`).
pub(crate) fn expires(ts: i64) -> String {
    kubeadm_api::dates::expiry(ts).unwrap_or_else(|| "?".into())
}

fn kubeconfig_cert(fx: &dyn Effects, path: &Path) -> Result<Option<CertInfo>> {
    let Some(text) = read_text(fx, path)? else {
        return Ok(None);
    };
    let name = path.display().to_string();
    let parsed = kubeconfig::parse(&name, &text)?;
    if parsed.client_cert_pem.is_empty() {
        return Ok(None);
    }
    Ok(Some(CertInfo::from_pem(&name, &parsed.client_cert_pem)?))
}

fn renewable_certs() -> impl Iterator<Item = &'static CertSpec> {
    table::CERTS.iter().filter(|c| !c.is_ca())
}

/// Runs a `kubeadm certs` sub-command.
pub fn run(root: &Path, cmd: CertsCommand) -> Result<()> {
    match cmd {
        CertsCommand::CheckExpiration(a) => check_expiration(root, a),
        CertsCommand::Renew(a) => renew(root, a),
        CertsCommand::GenerateCsr(a) => generate_csr(root, a),
        CertsCommand::CertificateKey => {
            println!(
                "{}",
                kubeadm_api::token::generate_certificate_key().map_err(Error::msg)?
            );
            Ok(())
        }
    }
}

/// `kubeadm certs check-expiration`.
pub fn check_expiration(root: &Path, args: CheckExpirationArgs) -> Result<()> {
    let fx = crate::commands::init::effects(root, true);
    let fx = fx.as_ref();
    let (cluster, _) = cluster_config(args.config.as_deref(), args.cert_dir.as_deref())?;
    let dir = PathBuf::from(&cluster.certificates_dir);
    let kdir = PathBuf::from(&args.kubeconfig_dir);
    let external = |ca: &str| -> bool {
        let spec = table::find(ca).unwrap_or(&table::CERTS[0]);
        fx.exists(&dir.join(spec.cert_file())) && !fx.exists(&dir.join(spec.key_file()))
    };
    let mut rows = Vec::new();
    for f in RENEWABLE_KUBECONFIGS {
        let cert = kubeconfig_cert(fx, &kdir.join(f))?;
        rows.push(Row {
            name: f.to_string(),
            ca: Some("ca".into()),
            cert,
            external: external("ca"),
        });
    }
    for spec in renewable_certs() {
        if spec.local_etcd && cluster.etcd.external.is_some() {
            continue;
        }
        let ca = spec.ca.unwrap_or("ca");
        rows.push(Row {
            name: spec.name.to_string(),
            ca: Some(ca.to_string()),
            cert: load_cert(fx, &dir.join(spec.cert_file()))?,
            external: external(ca),
        });
    }
    rows.retain(|r| r.cert.is_some() || !r.name.starts_with("super-admin"));
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let mut cas = Vec::new();
    for spec in table::CERTS.iter().filter(|c| c.is_ca()) {
        if spec.local_etcd && cluster.etcd.external.is_some() {
            continue;
        }
        cas.push(Row {
            name: spec.name.to_string(),
            ca: None,
            cert: load_cert(fx, &dir.join(spec.cert_file()))?,
            external: external(spec.name),
        });
    }
    cas.sort_by(|a, b| a.name.cmp(&b.name));
    let now = kubeadm_api::dates::now_unix();
    if !super::certs_auto::scheduled(fx) {
        // On stderr, so the json/yaml forms stay machine-readable.
        eprintln!(
            "[check-expiration] WARNING: no automatic renewal is scheduled: `kubeadm certs renew schedule` installs a systemd timer running `kubeadm certs renew --auto`"
        );
    }
    match args.output {
        ListFormat::Text => {
            println!("[check-expiration] Reading configuration from the files on disk...");
            println!();
            println!(
                "{:<26} {:<24} {:<15} {:<23} EXTERNALLY MANAGED",
                "CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY"
            );
            for r in &rows {
                let ext = if r.external { "yes" } else { "no" };
                match &r.cert {
                    Some(c) => println!(
                        "{:<26} {:<24} {:<15} {:<23} {ext}",
                        r.name,
                        expires(c.not_after),
                        residual(c.not_after - now),
                        r.ca.as_deref().unwrap_or("")
                    ),
                    None => println!("!MISSING! {}", r.name),
                }
            }
            println!();
            println!(
                "{:<23} {:<24} {:<15} EXTERNALLY MANAGED",
                "CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME"
            );
            for r in &cas {
                let ext = if r.external { "yes" } else { "no" };
                match &r.cert {
                    Some(c) => println!(
                        "{:<23} {:<24} {:<15} {ext}",
                        r.name,
                        expires(c.not_after),
                        residual(c.not_after - now)
                    ),
                    None => println!("!MISSING! {}", r.name),
                }
            }
        }
        fmt => {
            let item = |r: &Row| {
                let mut v = json!({"name": r.name, "externallyManaged": r.external});
                if let Some(ca) = &r.ca {
                    v["caName"] = json!(ca);
                }
                match &r.cert {
                    Some(c) => {
                        v["expirationDate"] =
                            json!(kubeadm_api::dates::rfc3339(c.not_after).unwrap_or_default());
                        v["residualTime"] =
                            json!((c.not_after - now).saturating_mul(1_000_000_000));
                    }
                    None => v["missing"] = json!(true),
                }
                v
            };
            let doc = json!({
                "kind": "CertificateExpirationInfo",
                "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
                "certificates": rows.iter().map(item).collect::<Vec<_>>(),
                "certificateAuthorities": cas.iter().map(item).collect::<Vec<_>>(),
            });
            if fmt == ListFormat::Json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&doc).map_err(|e| Error::msg(e.to_string()))?
                );
            } else {
                print!("{}", kubeadm_api::encode::to_yaml(&doc)?);
            }
        }
    }
    Ok(())
}

/// One prepared renewal: what to write where.
enum Renewal {
    Cert {
        crt: PathBuf,
        key_path: PathBuf,
        pem: String,
        key: PrivateKey,
    },
    Kubeconfig {
        path: PathBuf,
        yaml: String,
        shown: String,
    },
}

/// `kubeadm certs renew <name>|all|schedule`, `kubeadm certs renew --auto`.
pub fn renew(root: &Path, args: RenewArgs) -> Result<()> {
    if args.auto || args.name.as_deref() == Some("schedule") {
        return super::certs_auto::run(root, args);
    }
    let Some(name) = args.name.clone() else {
        return Err(Error::with_hint(
            "certs renew needs what to renew",
            "name a certificate, a kubeconfig file or `all`; or pass --auto to renew what expires soon",
        ));
    };
    let fx = crate::commands::init::effects(root, args.dry_run);
    let fx = fx.as_ref();
    let (cluster, _) = cluster_config(args.config.as_deref(), args.cert_dir.as_deref())?;
    let renewed = renew_names(fx, &cluster, Path::new(&args.kubeconfig_dir), &name)?;
    if renewed.is_empty() {
        // Every file was absent: say so, rather than end as if something had been renewed.
        println!(
            "[renew] Nothing was renewed: none of the certificates or kubeconfig files exist under {} and {}",
            cluster.certificates_dir, args.kubeconfig_dir
        );
    } else {
        println!();
        println!(
            "Done renewing certificates. You must restart the kube-apiserver, kube-controller-manager, kube-scheduler and etcd, so that they can use the new certificates."
        );
    }
    Ok(())
}

/// Every name `certs renew` accepts besides `all`: leaf certificates, then kubeconfig files.
pub(crate) fn renewable_names() -> Vec<String> {
    renewable_certs()
        .map(|c| c.name.to_string())
        .chain(RENEWABLE_KUBECONFIGS.iter().map(|s| s.to_string()))
        .collect()
}

/// When a leaf certificate or a kubeconfig's embedded certificate expires (Unix seconds);
/// `None` when the file is absent.
pub(crate) fn not_after(
    fx: &dyn Effects,
    cluster: &ClusterConfiguration,
    kubeconfig_dir: &Path,
    name: &str,
) -> Result<Option<i64>> {
    let info = match table::find(name) {
        Some(spec) => load_cert(
            fx,
            &Path::new(&cluster.certificates_dir).join(spec.cert_file()),
        )?,
        None => kubeconfig_cert(fx, &kubeconfig_dir.join(name))?,
    };
    Ok(info.map(|c| c.not_after))
}

/// True when the CA that signs `name` has its key here (not an external CA).
pub(crate) fn signable(fx: &dyn Effects, cluster: &ClusterConfiguration, name: &str) -> bool {
    let ca = table::find(name).and_then(|s| s.ca).unwrap_or("ca");
    let spec = table::find(ca).unwrap_or(&table::CERTS[0]);
    fx.exists(&Path::new(&cluster.certificates_dir).join(spec.key_file()))
}

/// Renews `which` (`all`, one name, or a comma-separated list of names) and returns the names
/// renewed. Everything is prepared before the first file is written.
pub(crate) fn renew_names(
    fx: &dyn Effects,
    cluster: &ClusterConfiguration,
    kdir: &Path,
    which: &str,
) -> Result<Vec<String>> {
    let alg = KeyAlgorithm::for_cluster(cluster)?;
    let validity = cluster
        .certificate_validity_period
        .map(|d| d.to_std())
        .unwrap_or(std::time::Duration::from_secs(365 * 86400));
    let dir = PathBuf::from(&cluster.certificates_dir);
    let valid = renewable_names();
    let all = which == "all";
    let wanted: Vec<&str> = which.split(',').collect();
    if let Some(bad) = wanted
        .iter()
        .find(|w| !all && !valid.iter().any(|v| v == *w))
    {
        return Err(Error::with_hint(
            format!("unknown certificate {bad:?}"),
            format!("valid names: all, {}", valid.join(", ")),
        ));
    }
    let selected: Vec<&String> = valid
        .iter()
        .filter(|n| all || wanted.contains(&n.as_str()))
        .collect();
    let load_ca = |name: &str| -> Result<(CertInfo, PrivateKey)> {
        let spec = table::find(name).unwrap_or(&table::CERTS[0]);
        let crt = dir.join(spec.cert_file());
        let key = dir.join(spec.key_file());
        let ca = load_cert(fx, &crt)?.ok_or_else(|| {
            Error::msg(format!(
                "the CA certificate {} does not exist",
                crt.display()
            ))
        })?;
        let k = load_key(fx, &key)?.ok_or_else(|| {
            Error::with_hint(
                format!("cannot renew certificates signed by {name}: {} is absent (external CA mode)", key.display()),
                "renew these certificates with your external CA; kubeadm cannot sign without the CA key",
            )
        })?;
        Ok((ca, k))
    };
    // Prepare everything first; write only when every renewal could be built.
    let mut todo: Vec<(String, String, Renewal)> = Vec::new();
    let mut keys = PrivateKey::generate_many(alg, selected.len())?;
    let now = jiff::Timestamp::now();
    for name in selected {
        if let Some(spec) = table::find(name) {
            if spec.local_etcd && cluster.etcd.external.is_some() {
                continue;
            }
            let crt = dir.join(spec.cert_file());
            let Some(old) = load_cert(fx, &crt)? else {
                if all {
                    println!("[renew] {} does not exist, skipping", crt.display());
                    continue;
                }
                return Err(Error::msg(format!("{} does not exist", crt.display())));
            };
            let (ca, ca_key) = load_ca(spec.ca.unwrap_or("ca"))?;
            let key = keys.pop().ok_or_else(|| Error::msg("internal: no key"))?;
            let req = old.to_request(validity);
            let issued = cert::sign(
                &req,
                &key,
                &Authority {
                    cert_der: &ca.der,
                    key: &ca_key,
                },
                now,
            )?;
            todo.push((
                name.clone(),
                format!("certificate {}", spec.name),
                Renewal::Cert {
                    crt,
                    key_path: dir.join(spec.key_file()),
                    pem: issued.pem,
                    key,
                },
            ));
        } else {
            let path = kdir.join(name);
            let Some(text) = read_text(fx, &path)? else {
                if all {
                    continue;
                }
                return Err(Error::msg(format!("{} does not exist", path.display())));
            };
            let pname = path.display().to_string();
            let parsed = kubeconfig::parse(&pname, &text)?;
            let old = CertInfo::from_pem(&pname, &parsed.client_cert_pem)?;
            let (ca, ca_key) = load_ca("ca")?;
            let key = keys.pop().ok_or_else(|| Error::msg("internal: no key"))?;
            let issued = cert::sign(
                &old.to_request(validity),
                &key,
                &Authority {
                    cert_der: &ca.der,
                    key: &ca_key,
                },
                now,
            )?;
            let (yaml, shown) = kubeconfig::build(&KubeconfigData {
                cluster: parsed.cluster,
                server: parsed.server,
                ca_pem: kubeadm_pki::keys::pem_encode("CERTIFICATE", ca.der.clone()),
                user: parsed.user,
                client_cert_pem: issued.pem,
                client_key_pem: key.pem.clone(),
            })?;
            todo.push((
                name.clone(),
                format!("certificate embedded in the kubeconfig file {name}"),
                Renewal::Kubeconfig { path, yaml, shown },
            ));
        }
    }
    let mut renewed = Vec::new();
    for (name, what, r) in todo {
        match r {
            Renewal::Cert {
                crt,
                key_path,
                pem,
                key,
            } => write_pair(fx, &crt, &key_path, &pem, &key)?,
            Renewal::Kubeconfig { path, yaml, shown } => fx.write_file(
                &path,
                Content::Redacted {
                    data: yaml.into_bytes(),
                    shown,
                },
                0o600,
            )?,
        }
        println!("{what} renewed");
        renewed.push(name);
    }
    Ok(renewed)
}

/// `kubeadm certs generate-csr`: keys and CSRs for every certificate and kubeconfig, for an
/// external CA to sign.
pub fn generate_csr(root: &Path, args: GenerateCsrArgs) -> Result<()> {
    let fx = crate::commands::init::effects(root, false);
    let fx = fx.as_ref();
    let init_args = crate::cli::InitArgs {
        config: args.config.clone(),
        cert_dir: args.cert_dir.clone(),
        ..Default::default()
    };
    let probe = kubeadm_effects::DryRunEffects::new(root, Box::new(std::io::sink()));
    // No init flags were typed: empty matches of the init flag set.
    let matches =
        <crate::cli::InitArgs as clap::Args>::augment_args(clap::Command::new("generate-csr"))
            .try_get_matches_from(["generate-csr"])
            .map_err(|e| Error::msg(e.to_string()))?;
    let cfg = crate::commands::init::load(&init_args, &matches, &probe)?;
    let alg = KeyAlgorithm::for_cluster(&cfg.cluster)?;
    let dir = PathBuf::from(&cfg.cluster.certificates_dir);
    let kdir = PathBuf::from(&args.kubeconfig_dir);
    let leaves: Vec<&CertSpec> = renewable_certs()
        .filter(|c| !c.local_etcd || cfg.local_etcd().is_some())
        .collect();
    let kcs: Vec<_> = table::KUBECONFIGS
        .iter()
        .filter(|k| k.name != "super-admin" || cfg.info().has_super_admin())
        .collect();
    let mut keys = PrivateKey::generate_many(alg, leaves.len() + kcs.len())?;
    let mut writes: Vec<(PathBuf, Content, u32)> = Vec::new();
    for spec in leaves {
        let key = keys.pop().ok_or_else(|| Error::msg("internal: no key"))?;
        let csr = cert::csr(&kubeadm_pki::request_for(spec, &cfg)?, &key)?;
        writes.push((
            dir.join(spec.key_file()),
            Content::Secret {
                data: key.pem.clone().into_bytes(),
                what: key.describe(),
            },
            0o600,
        ));
        writes.push((
            dir.join(format!("{}.csr", spec.base)),
            Content::Plain(csr.into_bytes()),
            kubeadm_pki::table::file_mode("x.csr"),
        ));
    }
    for spec in kcs {
        let key = keys.pop().ok_or_else(|| Error::msg("internal: no key"))?;
        let csr = cert::csr(&kubeadm_pki::kubeconfig_request(spec, &cfg), &key)?;
        writes.push((
            kdir.join(format!("{}.key", spec.file)),
            Content::Secret {
                data: key.pem.clone().into_bytes(),
                what: key.describe(),
            },
            0o600,
        ));
        writes.push((
            kdir.join(format!("{}.csr", spec.file)),
            Content::Plain(csr.into_bytes()),
            kubeadm_pki::table::file_mode("x.csr"),
        ));
    }
    for (path, content, mode) in writes {
        if path.extension().is_some_and(|e| e == "csr") {
            println!(
                "[certs] Writing certificate signing request {:?}",
                path.display().to_string()
            );
        }
        fx.write_file(&path, content, mode)?;
    }
    Ok(())
}
