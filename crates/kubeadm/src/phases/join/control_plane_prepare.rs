//! `join phase control-plane-prepare download-certs|certs|kubeconfig|control-plane`: the shared
//! certificates from kubeadm-certs, then this node's certificates, kubeconfigs and static Pod
//! manifests through init's code.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kubeadm_api::config::InitConfig;
use kubeadm_effects::Content;
use kubeadm_workflow::{Phase, Workflow};

use super::{BOOTSTRAP_KUBELET_CONF, JoinContext};
use crate::apiclient;
use crate::error::{Error, Result};
use crate::phases::init::{certs, kubeconfig};

/// `control-plane-prepare` and its sub-phases (control-plane joins only).
pub fn phase() -> Phase<JoinContext, Error> {
    Phase::group(
        "control-plane-prepare",
        "Prepare the machine for serving a control plane",
        vec![
            Phase::leaf("download-certs", "Download certificates shared among control-plane nodes from the kubeadm-certs Secret", download_certs).flags(&[super::DISCOVERY_FLAGS, &["control-plane", "certificate-key"]].concat()),
            Phase::leaf("certs", "Generate the certificates for the new control plane components", prepare_certs).flags(&[super::DISCOVERY_FLAGS, &["control-plane", "node-name", "apiserver-advertise-address"]].concat()),
            Phase::leaf("kubeconfig", "Generate the kubeconfig for the new control plane components", prepare_kubeconfig).flags(&[super::DISCOVERY_FLAGS, &["control-plane", "certificate-key"]].concat()),
            Phase::leaf("control-plane", "Generate the manifests for the new control plane components", prepare_control_plane).flags(&[super::DISCOVERY_FLAGS, &["control-plane", "apiserver-advertise-address", "apiserver-bind-port", "patches", "control-plane-mode"]].concat()),
        ],
    )
    .when(super::is_control_plane)
}

/// Where a kubeadm-certs entry goes (upstream names: the file with `/` turned into `-`).
fn certs_secret_path(cfg: &InitConfig, key: &str) -> Option<(PathBuf, bool)> {
    let dir = Path::new(&cfg.cluster.certificates_dir);
    let secret_file = key.ends_with(".key");
    let path = match key {
        "external-etcd-ca.crt" => PathBuf::from(&cfg.cluster.etcd.external.as_ref()?.ca_file),
        "external-etcd.crt" => PathBuf::from(&cfg.cluster.etcd.external.as_ref()?.cert_file),
        "external-etcd.key" => PathBuf::from(&cfg.cluster.etcd.external.as_ref()?.key_file),
        k => dir.join(kubeadm_cluster::certs_secret::entry_file(k)?),
    };
    Some((path, secret_file))
}

fn download_certs(ctx: &mut JoinContext) -> Result<()> {
    let key = ctx
        .cfg
        .join
        .control_plane
        .as_ref()
        .map(|cp| cp.certificate_key.clone())
        .unwrap_or_default();
    if key.is_empty() {
        println!("[download-certs] Skipping certs download");
        return Ok(());
    }
    // A malformed key is refused before any API call.
    kubeadm_api::token::validate_certificate_key(&key).map_err(|e| {
        Error::with_hint(e, "pass the --certificate-key printed by `kubeadm init --upload-certs` (64 hex characters)")
    })?;
    let cfg = ctx.init_config()?;
    let kc = ctx.bootstrap_kubeconfig()?;
    println!(
        "[download-certs] Downloading the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace"
    );
    let rt = apiclient::runtime()?;
    let secret = rt.block_on(async {
        let client = apiclient::client_from_kubeconfig(BOOTSTRAP_KUBELET_CONF, &kc).await?;
        let api: Api<Secret> = Api::namespaced(client, "kube-system");
        apiclient::retry("get Secret kube-system/kubeadm-certs", 5, || {
            api.get_opt("kubeadm-certs")
        })
        .await
    })?;
    let secret = secret.ok_or_else(|| {
        Error::with_hint(
            "the Secret kube-system/kubeadm-certs does not exist (it expires two hours after upload)",
            "on a control-plane node run `kubeadm init phase upload-certs --upload-certs` and join with the new certificate key",
        )
    })?;
    // Decrypt everything before writing anything: a wrong key leaves no file behind.
    let files = kubeadm_cluster::certs_secret::open(&key, &secret).map_err(|e| {
        Error::with_hint(
            format!("error decoding secret data with provided key: {e}"),
            "the --certificate-key does not match the one the certificates were uploaded with",
        )
    })?;
    let mut plan = Vec::new();
    for (name, data) in files {
        let (path, secret_file) = certs_secret_path(&cfg, &name).ok_or_else(|| {
            Error::msg(format!(
                "the kubeadm-certs Secret holds an unexpected entry {name:?}"
            ))
        })?;
        plan.push((path, secret_file, data));
    }
    println!(
        "[download-certs] Saving the certificates to the folder: {:?}",
        cfg.cluster.certificates_dir
    );
    for (path, secret_file, data) in plan {
        if let Some(parent) = path.parent().filter(|p| !ctx.fx.exists(p)) {
            ctx.fx.create_dir_all(parent, 0o755)?;
        }
        let (content, mode) = if secret_file {
            (
                Content::Secret {
                    data,
                    what: format!("the private key {}", path.display()),
                },
                0o600,
            )
        } else {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let mode = kubeadm_pki::table::file_mode(name.as_deref().unwrap_or(""));
            (Content::Plain(data), mode)
        };
        ctx.fx.write_file(&path, content, mode)?;
    }
    Ok(())
}

fn prepare_certs(ctx: &mut JoinContext) -> Result<()> {
    ctx.with_init(|ictx| {
        let wf = Workflow {
            command: "join",
            phases: vec![certs::phase()],
        };
        // The certs group's own error (with its hint) is this phase's error.
        wf.run(ictx, None, &[], |_| {}).map_err(|e| match e {
            kubeadm_workflow::WorkflowError::Phase { source, .. } => source,
            other => Error::msg(other.to_string()),
        })
    })
}

fn prepare_kubeconfig(ctx: &mut JoinContext) -> Result<()> {
    println!("[kubeconfig] Generating kubeconfig files");
    ctx.with_init(|ictx| {
        for name in ["admin", "controller-manager", "scheduler"] {
            kubeconfig::run_kubeconfig(ictx, name)?;
        }
        Ok(())
    })
}

fn prepare_control_plane(ctx: &mut JoinContext) -> Result<()> {
    ctx.with_init(|ictx| {
        for component in [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            crate::phases::init::control_plane::run_component(ictx, component)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn certs_secret_entries_map_to_files() {
        let map: BTreeMap<&str, &str> = BTreeMap::from([
            ("ca.key", "/etc/kubernetes/pki/ca.key"),
            ("etcd-ca.crt", "/etc/kubernetes/pki/etcd/ca.crt"),
            (
                "front-proxy-ca.crt",
                "/etc/kubernetes/pki/front-proxy-ca.crt",
            ),
        ]);
        let docs = kubeadm_api::decode::Documents::default();
        let (init, cluster, kubelet, proxy) = InitConfig::start(docs);
        let facts = kubeadm_api::defaults::HostFacts {
            hostname: "n".into(),
            default_ip: Some("10.0.0.1".parse().unwrap()),
            cri_sockets_found: vec![],
        };
        let cfg = InitConfig::complete(init, cluster, kubelet, proxy, &facts, true, "t").unwrap();
        for (k, want) in map {
            assert_eq!(certs_secret_path(&cfg, k).unwrap().0, PathBuf::from(want));
        }
        assert!(certs_secret_path(&cfg, "../x").is_none());
        // `etcd-` followed by an absolute path or `..` once replaced the certificates directory.
        assert!(certs_secret_path(&cfg, "etcd-/etc/passwd").is_none());
        assert!(certs_secret_path(&cfg, "etcd-../../x").is_none());
        assert!(certs_secret_path(&cfg, "external-etcd.crt").is_none());
    }
}
