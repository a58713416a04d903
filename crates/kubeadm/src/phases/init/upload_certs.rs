//! `init phase upload-certs`: the shared certificates sealed with the certificate key into
//! kube-system/kubeadm-certs (only with `--upload-certs`).

use std::collections::BTreeMap;

use kube::Client;
use kubeadm_api::v1beta4::BootstrapToken;
use kubeadm_workflow::Phase;

use super::InitContext;
use super::api_session::{EARLIER_PHASES, apply_rbac, pki_path, read_planned, with_client};
use crate::apiclient::{self, apply_ns};
use crate::error::{Error, Result};

/// `upload-certs`, run only with `--upload-certs`.
pub fn phase() -> Phase<InitContext, Error> {
    Phase::leaf("upload-certs", "Upload certificates to kubeadm-certs", run)
        .flags(&[
            "config",
            "upload-certs",
            "certificate-key",
            "skip-certificate-key-print",
            "dry-run",
        ])
        .when(|ctx: &InitContext| ctx.opts.upload_certs)
}

fn run(ctx: &mut InitContext) -> Result<()> {
    let key = if ctx.cfg.init.certificate_key.is_empty() {
        kubeadm_api::token::generate_certificate_key().map_err(Error::msg)?
    } else {
        ctx.cfg.init.certificate_key.clone()
    };
    // Check the key before reading anything or calling the API.
    kubeadm_api::token::validate_certificate_key(&key).map_err(|e| {
        Error::with_hint(
            e,
            "pass --certificate-key with 64 hex characters, or omit it",
        )
    })?;
    let names = kubeadm_cluster::certs_secret::shared_files(ctx.cfg.local_etcd().is_some());
    let mut files = BTreeMap::new();
    for n in names {
        let path = pki_path(&ctx.cfg, n);
        // A dry run sees what the certs phase of the same run would have written; a file
        // missing even then is left out of the printed Secret.
        let Some(data) = read_planned(ctx, &path, "left out of kubeadm-certs", EARLIER_PHASES)?
        else {
            continue;
        };
        files.insert(n.replace('/', "-"), data);
    }
    with_client(ctx, |c, _| {
        let key = key.clone();
        async move { upload_certs(&c, &key, &files).await }
    })?;
    if !ctx.opts.skip_certificate_key_print {
        println!("[upload-certs] Using certificate key:\n{key}");
    }
    // show-join-command prints it in the control-plane join command.
    ctx.cfg.init.certificate_key = key;
    Ok(())
}

/// upload-certs: seals `files` with `key` into kube-system/kubeadm-certs, owned by a new 2 h
/// bootstrap token, and lets the bootstrap group read it. The key is checked first.
pub async fn upload_certs(
    client: &Client,
    key: &str,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<()> {
    kubeadm_api::token::validate_certificate_key(key).map_err(|e| {
        Error::with_hint(
            e,
            "pass --certificate-key with 64 hex characters, or omit it to have one generated (`kubeadm certs certificate-key`)",
        )
    })?;
    // Seal once with a dummy owner to fail on crypto errors before any API call.
    kubeadm_cluster::certs_secret::secret(key, files, "", "")?;
    let token = kubeadm_api::BootstrapTokenString::generate().map_err(Error::msg)?;
    let bt = BootstrapToken {
        token,
        description: "Proxy for managing TTL for the kubeadm-certs secret".into(),
        ttl: Some(kubeadm_api::Duration(2 * 3600 * 1_000_000_000)),
        expires: None,
        usages: Vec::new(),
        groups: Vec::new(),
    };
    let owner = kubeadm_cluster::token::secret(&bt, jiff::Timestamp::now())?;
    let created = apiclient::create_new(&apiclient::namespaced_api(client, &owner), &owner).await?;
    let uid = created.metadata.uid.clone().unwrap_or_default();
    let name = created.metadata.name.clone().unwrap_or_default();
    let sealed = kubeadm_cluster::certs_secret::secret(key, files, &name, &uid)?;
    apply_ns(client, &sealed).await.map_err(|e| {
        Error::with_hint(
            e.to_string(),
            "re-run `kubeadm init phase upload-certs --upload-certs` once the API server is healthy",
        )
    })?;
    apply_rbac(client, &kubeadm_cluster::rbac::upload_certs()).await?;
    Ok(())
}
