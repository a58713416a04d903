//! `kubeadm kubeconfig user`: a kubeconfig for a user, signed by the cluster CA.

use std::path::{Path, PathBuf};

use kubeadm_api::net;
use kubeadm_pki::cert::{self, Authority};
use kubeadm_pki::kubeconfig::{self, KubeconfigData};
use kubeadm_pki::{KeyAlgorithm, PrivateKey, table};

use super::certs::cluster_config;
use crate::cli::{KubeconfigCommand, KubeconfigUserArgs};
use crate::error::{Error, Result};
use crate::phases::init::certs::{load_cert, load_key};

/// Runs a `kubeadm kubeconfig` sub-command.
pub fn run(root: &Path, cmd: KubeconfigCommand) -> Result<()> {
    match cmd {
        KubeconfigCommand::User(a) => user(root, a),
    }
}

/// `kubeadm kubeconfig user`: prints a kubeconfig for a user, signed by the cluster CA.
pub fn user(root: &Path, args: KubeconfigUserArgs) -> Result<()> {
    let fx = crate::commands::init::effects(root, true);
    let fx = fx.as_ref();
    let (cluster, init) = cluster_config(args.config.as_deref(), None)?;
    let dir = PathBuf::from(&cluster.certificates_dir);
    let ca = load_cert(fx, &dir.join("ca.crt"))?.ok_or_else(|| {
        Error::with_hint(
            format!("{} does not exist", dir.join("ca.crt").display()),
            "run this on a control-plane node, or set certificatesDir in --config",
        )
    })?;
    let ca_key = load_key(fx, &dir.join("ca.key"))?.ok_or_else(|| {
        Error::with_hint(
            format!("{} does not exist", dir.join("ca.key").display()),
            "kubeconfig user needs the cluster CA key",
        )
    })?;
    let port = u16::try_from(init.local_api_endpoint.bind_port)
        .ok()
        .filter(|p| *p != 0)
        .unwrap_or(6443);
    let server = if !cluster.control_plane_endpoint.is_empty() {
        let (h, p) = kubeadm_api::validate::host_port(&cluster.control_plane_endpoint)
            .map_err(|e| Error::msg(format!("controlPlaneEndpoint: {e}")))?;
        format!("https://{}", net::join_host_port(&h, p.unwrap_or(port)))
    } else if !init.local_api_endpoint.advertise_address.is_empty() {
        format!(
            "https://{}",
            net::join_host_port(&init.local_api_endpoint.advertise_address, port)
        )
    } else {
        return Err(Error::with_hint(
            "no API server address known",
            "pass --config with controlPlaneEndpoint or localAPIEndpoint.advertiseAddress",
        ));
    };
    let validity = match &args.validity_period {
        Some(v) => kubeadm_api::Duration::parse(v)
            .map_err(|e| super::flag_error("validity-period", v, &e))?
            .to_std(),
        None => cluster
            .certificate_validity_period
            .map(|d| d.to_std())
            .unwrap_or(std::time::Duration::from_secs(365 * 86400)),
    };
    let key = PrivateKey::generate(KeyAlgorithm::for_cluster(&cluster)?)?;
    let req = kubeadm_pki::CertRequest {
        cn: args.client_name.clone(),
        orgs: args.org.clone(),
        usage: table::Usage::Client,
        alt: Default::default(),
        validity,
    };
    let issued = cert::sign(
        &req,
        &key,
        &Authority {
            cert_der: &ca.der,
            key: &ca_key,
        },
        jiff::Timestamp::now(),
    )?;
    let (yaml, _) = kubeconfig::build(&KubeconfigData {
        cluster: cluster.cluster_name.clone(),
        server,
        ca_pem: kubeadm_pki::keys::pem_encode("CERTIFICATE", ca.der.clone()),
        user: args.client_name,
        client_cert_pem: issued.pem,
        client_key_pem: key.pem.clone(),
    })?;
    print!("{yaml}");
    Ok(())
}
