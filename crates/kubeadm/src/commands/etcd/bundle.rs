//! The optional bundle saved next to a snapshot (`FILE.bundle`): what a restore needs besides
//! the data — every file of the PKI directory and the cluster's kubeadm-config — sealed with
//! AES-256-GCM under a key the operator keeps (`--encryption-key-file`, 64 hex characters as
//! `kubeadm certs certificate-key` prints), since it holds the CA keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kubeadm_effects::{Content, Effects};
use serde::{Deserialize, Serialize};

use crate::apiclient;
use crate::error::{Error, Result};

const KIND: &str = "EtcdSnapshotBundle";
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// What a bundle holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    /// Always `EtcdSnapshotBundle`.
    pub kind: String,
    /// Host path → base64 content, for every file under the PKI directory.
    pub files: BTreeMap<String, String>,
    /// The `ClusterConfiguration` of the kubeadm-config ConfigMap, when the API answered.
    pub kubeadm_config: Option<String>,
}

/// The path of the bundle of snapshot `path`.
pub fn bundle_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".bundle");
    PathBuf::from(s)
}

/// Reads the key file (64 hex characters, surrounding white space ignored), naming it in errors.
pub fn read_key(key_file: &Path) -> Result<String> {
    // A bounded regular file in UTF-8, with errors in words (not "stream did not contain valid
    // UTF-8" with advice about permissions).
    let hint =
        "write a key with `kubeadm certs certificate-key > FILE` and keep it away from the backups";
    let bytes = kubeadm_effects::read_input(key_file, kubeadm_effects::INPUT_LIMIT)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::with_hint(
            format!(
                "--encryption-key-file {}: not a text file (invalid UTF-8 at byte {})",
                key_file.display(),
                e.utf8_error().valid_up_to()
            ),
            hint,
        )
    })?;
    let key = text.trim().to_string();
    kubeadm_api::token::validate_certificate_key(&key).map_err(|e| {
        Error::with_hint(
            format!("--encryption-key-file {}: {e}", key_file.display()),
            hint,
        )
    })?;
    Ok(key)
}

fn pki_files(fx: &dyn Effects, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<()> {
    for name in fx.list_dir(dir)? {
        let p = dir.join(&name);
        match fx.read(&p) {
            Ok(Some(data)) => {
                out.insert(p.display().to_string(), STANDARD.encode(data));
            }
            Ok(None) => {}
            // A directory (etcd/): read what is inside it.
            Err(_) => pki_files(fx, &p, out)?,
        }
    }
    Ok(())
}

/// kubeadm-config's ClusterConfiguration through admin.conf, or why not.
fn kubeadm_config(fx: &dyn Effects) -> std::result::Result<String, String> {
    let admin = fx
        .read_to_string(Path::new(ADMIN_CONF))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{ADMIN_CONF} does not exist"))?;
    let rt = apiclient::runtime().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = apiclient::client_from_kubeconfig(ADMIN_CONF, &admin)
            .await
            .map_err(|e| e.to_string())?;
        let api: Api<ConfigMap> = Api::namespaced(client, "kube-system");
        let cm = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            api.get("kubeadm-config"),
        )
        .await
        .map_err(|_| "no answer within 10s".to_string())?
        .map_err(|e| e.to_string())?;
        cm.data
            .and_then(|d| d.get("ClusterConfiguration").cloned())
            .ok_or_else(|| "kubeadm-config has no ClusterConfiguration".to_string())
    })
}

/// Writes the sealed bundle of `pki_dir` (and kubeadm-config) next to snapshot `path`, 0600.
pub fn write(fx: &dyn Effects, path: &Path, pki_dir: &Path, key: &str) -> Result<PathBuf> {
    let mut files = BTreeMap::new();
    pki_files(fx, pki_dir, &mut files)?;
    if files.is_empty() {
        return Err(Error::with_hint(
            format!(
                "the PKI directory {} holds no file to bundle",
                pki_dir.display()
            ),
            "pass the right --cert-dir, or save without --encryption-key-file",
        ));
    }
    let kubeadm_config = match kubeadm_config(fx) {
        Ok(c) => Some(c),
        Err(why) => {
            println!(
                "[etcd] WARNING: the bundle holds no kubeadm-config (reading it through {ADMIN_CONF} failed: {why})"
            );
            None
        }
    };
    let bundle = Bundle {
        kind: KIND.into(),
        files,
        kubeadm_config,
    };
    let plain = serde_json::to_vec(&bundle).map_err(|e| Error::msg(e.to_string()))?;
    let sealed = kubeadm_cluster::certs_secret::encrypt(key, &plain)?;
    let out = bundle_path(path);
    fx.write_file(
        &out,
        Content::Secret {
            data: sealed,
            what: "encrypted bundle of the PKI and kubeadm-config".into(),
        },
        0o600,
    )?;
    Ok(out)
}

/// Opens the bundle of snapshot `path` with `key`.
pub fn open(fx: &dyn Effects, path: &Path, key: &str) -> Result<Bundle> {
    let p = bundle_path(path);
    let sealed = fx
        .read(&p)?
        .ok_or_else(|| Error::msg(format!("the bundle {} does not exist", p.display())))?;
    let plain = kubeadm_cluster::certs_secret::decrypt(key, &sealed).map_err(|_| {
        Error::with_hint(
            format!("cannot decrypt the bundle {}", p.display()),
            "use the --encryption-key-file the bundle was saved with; a damaged bundle cannot be opened",
        )
    })?;
    let b: Bundle = serde_json::from_slice(&plain)
        .map_err(|e| Error::msg(format!("the bundle {} is not readable: {e}", p.display())))?;
    if b.kind != KIND {
        return Err(Error::msg(format!(
            "{} is not a kubeadm snapshot bundle",
            p.display()
        )));
    }
    Ok(b)
}

/// Writes the files of `b` that do not exist (keys 0600, the rest 0644, as kubeadm writes them)
/// and returns the paths written; files present are never replaced.
pub fn put_back(fx: &dyn Effects, b: &Bundle) -> Result<Vec<PathBuf>> {
    // Decode everything first: a damaged entry stops before any file is written.
    let mut todo = Vec::new();
    for (path, data) in &b.files {
        let bytes = STANDARD
            .decode(data)
            .map_err(|e| Error::msg(format!("the bundle's copy of {path} is damaged: {e}")))?;
        todo.push((PathBuf::from(path), bytes));
    }
    let mut written = Vec::new();
    for (path, bytes) in todo {
        if fx.exists(&path) {
            continue;
        }
        let key = path.extension().is_some_and(|e| e == "key");
        let content = if key {
            Content::Secret {
                data: bytes,
                what: "private key from the bundle".into(),
            }
        } else {
            Content::Plain(bytes)
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let mode = kubeadm_pki::table::file_mode(name.as_deref().unwrap_or(""));
        fx.write_file(&path, content, mode)?;
        written.push(path);
    }
    Ok(written)
}
