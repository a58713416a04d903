//! `init phase show-join-command`: the success message and the join commands for
//! control-plane and worker nodes.

use kubeadm_api::config::InitConfig;
use kubeadm_workflow::Phase;

use super::InitContext;
use super::api_session::{EARLIER_PHASES, pki_path, read_planned};
use crate::error::{Error, Result};

/// `show-join-command`.
pub fn phase() -> Phase<InitContext, Error> {
    Phase::leaf(
        "show-join-command",
        "Show the join command for control-plane and worker node",
        run,
    )
    .flags(&[
        "config",
        "token",
        "upload-certs",
        "skip-token-print",
        "skip-certificate-key-print",
        "dry-run",
    ])
}

/// The join commands for workers and (with uploaded certificates) control-plane nodes.
pub fn join_commands(
    cfg: &InitConfig,
    ca_pem: &[u8],
    show_token: bool,
    upload_certs: bool,
    show_key: bool,
) -> Result<String> {
    let endpoint = cfg
        .control_plane_url()
        .trim_start_matches("https://")
        .to_string();
    let token = match cfg.init.bootstrap_tokens.first() {
        Some(t) if show_token => t.token.to_string(),
        Some(_) => "<value withheld>".to_string(),
        None => {
            return Err(Error::msg(
                "no bootstrap token is configured, so there is no join command to show",
            ));
        }
    };
    let hash = crate::commands::token::ca_cert_hash(ca_pem)
        .ok_or_else(|| Error::msg("cannot parse the cluster CA certificate to compute its hash"))?;
    let worker = format!(
        "kubeadm join {endpoint} --token {token} \\\n\t--discovery-token-ca-cert-hash {hash}"
    );
    let mut out = String::new();
    if !cfg.cluster.control_plane_endpoint.is_empty() {
        let key = if upload_certs && show_key && !cfg.init.certificate_key.is_empty() {
            format!(
                " \\\n\t--control-plane --certificate-key {}",
                cfg.init.certificate_key
            )
        } else {
            " \\\n\t--control-plane".to_string()
        };
        out.push_str(&format!(
            "You can now join any number of control-plane nodes by running the following command on each as root:\n\n  {worker}{key}\n\n"
        ));
    }
    out.push_str(&format!(
        "Then you can join any number of worker nodes by running the following on each as root:\n\n{worker}\n"
    ));
    Ok(out)
}

fn run(ctx: &mut InitContext) -> Result<()> {
    let Some(ca) = read_planned(
        ctx,
        &pki_path(&ctx.cfg, "ca.crt"),
        "the join commands cannot be shown",
        EARLIER_PHASES,
    )?
    else {
        return Ok(());
    };
    println!(
        "\nYour Kubernetes control-plane has initialized successfully!\n\nTo start using your cluster, run as a regular user:\n\n  mkdir -p $HOME/.kube\n  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config\n  sudo chown $(id -u):$(id -g) $HOME/.kube/config\n\nor, as root:\n\n  export KUBECONFIG=/etc/kubernetes/admin.conf\n\nDeploy a pod network to the cluster next (see https://kubernetes.io/docs/concepts/cluster-administration/addons/).\n"
    );
    print!(
        "{}",
        join_commands(
            &ctx.cfg,
            &ca,
            !ctx.opts.skip_token_print,
            ctx.opts.upload_certs,
            !ctx.opts.skip_certificate_key_print
        )?
    );
    Ok(())
}
