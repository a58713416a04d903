//! `init phase bootstrap-token`: the configured bootstrap tokens, the RBAC that lets nodes
//! bootstrap with them, and the kube-public/cluster-info ConfigMap.

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kubeadm_api::config::InitConfig;
use kubeadm_workflow::Phase;

use super::InitContext;
use super::api_session::{EARLIER_PHASES, apply_rbac, pki_path, read_planned, with_client};
use crate::apiclient::{self, ApiError, apply_ns, retry};
use crate::error::{Error, Result};

/// `bootstrap-token`.
pub fn phase() -> Phase<InitContext, Error> {
    Phase::leaf(
        "bootstrap-token",
        "Generates bootstrap tokens used to join a node to a cluster",
        run,
    )
    .flags(&[
        "config",
        "token",
        "token-ttl",
        "skip-token-print",
        "dry-run",
    ])
}

fn run(ctx: &mut InitContext) -> Result<()> {
    let show = !ctx.opts.skip_token_print;
    let ca_path = pki_path(&ctx.cfg, "ca.crt");
    let ca = read_planned(
        ctx,
        &ca_path,
        "cluster-info would carry this run's CA",
        EARLIER_PHASES,
    )?
    .unwrap_or_default();
    with_client(ctx, |c, cfg| async move {
        bootstrap_token(&c, &cfg, &ca).await?;
        for t in &cfg.init.bootstrap_tokens {
            println!(
                "[bootstrap-token] Using token: {}",
                if show {
                    t.token.to_string()
                } else {
                    format!("{}.<value withheld>", t.token.id())
                }
            );
        }
        println!(
            "[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes, post CSRs for a long term certificate credential, and auto-approve them"
        );
        println!(
            "[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates in the cluster"
        );
        println!(
            "[bootstrap-token] Creating the \"cluster-info\" ConfigMap in the \"kube-public\" namespace"
        );
        Ok(())
    })
}

/// bootstrap-token: the configured tokens, the bootstrap RBAC and cluster-info.
pub async fn bootstrap_token(client: &Client, cfg: &InitConfig, ca_pem: &[u8]) -> Result<()> {
    // Build everything before the first call.
    let now = jiff::Timestamp::now();
    let secrets: Vec<Secret> = cfg
        .init
        .bootstrap_tokens
        .iter()
        .map(|t| kubeadm_cluster::token::secret(t, now))
        .collect::<Result<_, _>>()?;
    let rbac = kubeadm_cluster::rbac::bootstrap_token(cfg.info());
    let cluster_info = kubeadm_cluster::cluster_info::config_map(&cfg.control_plane_url(), ca_pem)?;
    for s in &secrets {
        apply_ns(client, s).await?;
    }
    apply_rbac(client, &rbac).await?;
    ensure_cluster_info(client, &cluster_info).await?;
    Ok(())
}

/// Creates cluster-info, or updates only its `kubeconfig` key: the `jws-kubeconfig-*` keys
/// belong to the bootstrapsigner and must survive a re-run.
async fn ensure_cluster_info(
    client: &Client,
    desired: &k8s_openapi::api::core::v1::ConfigMap,
) -> Result<(), ApiError> {
    let api = apiclient::namespaced_api(client, desired);
    let kubeconfig = desired
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .cloned()
        .unwrap_or_default();
    retry(
        "create or update ConfigMap kube-public/cluster-info",
        8,
        || {
            let api = api.clone();
            let kubeconfig = kubeconfig.clone();
            async move {
                match api.get_opt("cluster-info").await? {
                    None => api.create(&Default::default(), desired).await.map(|_| ()),
                    Some(mut cur) => {
                        let data = cur.data.get_or_insert_with(Default::default);
                        if data.get("kubeconfig") == Some(&kubeconfig) {
                            return Ok(());
                        }
                        data.insert("kubeconfig".into(), kubeconfig);
                        api.replace("cluster-info", &Default::default(), &cur)
                            .await
                            .map(|_| ())
                    }
                }
            }
        },
    )
    .await
}
