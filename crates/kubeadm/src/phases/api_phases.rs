//! Phase adapters for the API phases of `kubeadm init`: read admin.conf and the PKI through
//! `ctx.fx`, build a client, run the logic in [`super::cluster_api`]. With `--dry-run` they say
//! what they would do and touch no cluster.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};

use kube::Client;
use kubeadm_api::config::InitConfig;
use kubeadm_workflow::Phase;

use super::{InitContext, cluster_api};
use crate::apiclient;
use crate::error::{Error, Result};

const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

fn pki_path(cfg: &InitConfig, file: &str) -> PathBuf {
    Path::new(&cfg.cluster.certificates_dir).join(file)
}

fn read(ctx: &InitContext, path: &Path) -> Result<Vec<u8>> {
    ctx.fx.read(path)?.ok_or_else(|| {
        Error::with_hint(
            format!("{} does not exist", path.display()),
            "run the earlier init phases first (`kubeadm init phase certs all`, `kubeadm init phase kubeconfig all`)",
        )
    })
}

/// The API client of one init run, made on first use and shared by every API phase. Its
/// runtime lives as long as the client (the client's request buffer runs on it).
pub struct ApiSession {
    rt: tokio::runtime::Runtime,
    client: Client,
}

impl std::fmt::Debug for ApiSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSession").finish_non_exhaustive()
    }
}

/// Makes the session: under `--dry-run` the printing client of [`crate::dryrun_client`];
/// otherwise a client from admin.conf, after making sure (from 1.29, with super-admin.conf)
/// that admin.conf's group is bound to cluster-admin, as upstream does when it first needs a
/// client.
fn open_session(ctx: &InitContext) -> Result<ApiSession> {
    let rt = apiclient::runtime()?;
    if ctx.opts.dry_run {
        let client = {
            let _guard = rt.enter();
            crate::dryrun_client::client(crate::dryrun_client::stdout())
        };
        let cfg = ctx.cfg.clone();
        let c = client.clone();
        rt.block_on(async move { cluster_api::cluster_admins(&c, &cfg).await })?;
        return Ok(ApiSession { rt, client });
    }
    let kc = read(ctx, Path::new(ADMIN_CONF))?;
    let text =
        String::from_utf8(kc).map_err(|_| Error::msg(format!("{ADMIN_CONF} is not UTF-8")))?;
    let super_admin = if ctx.cfg.info().has_super_admin() {
        ctx.fx.read_to_string(Path::new(SUPER_ADMIN_CONF))?
    } else {
        None
    };
    let cfg = ctx.cfg.clone();
    let client = rt.block_on(async move {
        let client = apiclient::client_from_kubeconfig(ADMIN_CONF, &text).await?;
        match super_admin {
            Some(sa) => {
                let sc = apiclient::client_from_kubeconfig(SUPER_ADMIN_CONF, &sa).await?;
                cluster_api::cluster_admins(&sc, &cfg).await?;
            }
            None => cluster_api::cluster_admins(&client, &cfg).await?,
        }
        Ok::<_, Error>(client)
    })?;
    Ok(ApiSession { rt, client })
}

/// Runs `f` with the run's client (made on first use).
fn with_client<F, Fut>(ctx: &mut InitContext, f: F) -> Result<()>
where
    F: FnOnce(Client, InitConfig) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    if ctx.api.is_none() {
        ctx.api = Some(open_session(ctx)?);
    }
    let cfg = ctx.cfg.clone();
    let Some(session) = ctx.api.as_ref() else {
        return Err(Error::msg("no API client"));
    };
    let client = session.client.clone();
    session.rt.block_on(f(client, cfg))
}

const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";

fn upload_config_kubeadm(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, |c, cfg| async move {
        println!(
            "[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace"
        );
        cluster_api::upload_kubeadm_config(&c, &cfg).await
    })
}

fn upload_config_kubelet(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, |c, cfg| async move {
        println!(
            "[kubelet] Creating a ConfigMap \"kubelet-config\" in namespace kube-system with the configuration for the kubelets in the cluster"
        );
        cluster_api::upload_kubelet_config(&c, &cfg).await
    })
}

fn upload_certs(ctx: &mut InitContext) -> Result<()> {
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
        let data = match ctx.fx.read(&path)? {
            Some(d) => d,
            None if ctx.opts.dry_run => {
                ctx.fx.note(&format!(
                    "{} does not exist: left out of kubeadm-certs",
                    path.display()
                ));
                continue;
            }
            None => read(ctx, &path)?,
        };
        files.insert(n.replace('/', "-"), data);
    }
    with_client(ctx, |c, _| {
        let key = key.clone();
        async move { cluster_api::upload_certs(&c, &key, &files).await }
    })?;
    if !ctx.opts.skip_certificate_key_print {
        println!("[upload-certs] Using certificate key:\n{key}");
    }
    // show-join-command prints it in the control-plane join command.
    ctx.cfg.init.certificate_key = key;
    Ok(())
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

fn show_join_command(ctx: &mut InitContext) -> Result<()> {
    let ca = if ctx.opts.dry_run && !ctx.fx.exists(&pki_path(&ctx.cfg, "ca.crt")) {
        ctx.fx
            .note("[dry-run] would print the join commands (no CA certificate yet)");
        return Ok(());
    } else {
        read(ctx, &pki_path(&ctx.cfg, "ca.crt"))?
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

fn mark_control_plane(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, |c, cfg| async move {
        cluster_api::mark_control_plane(&c, &cfg).await?;
        let info = cfg.info();
        let name = cfg.node_name();
        let labels = kubeadm_cluster::node::control_plane_labels(info);
        println!(
            "[mark-control-plane] Marking the node {name} as control-plane by adding the labels: {labels:?}"
        );
        match &cfg.init.node_registration.taints {
            Some(t) => println!(
                "[mark-control-plane] Marking the node {name} as control-plane by adding the taints {:?}",
                t.iter()
                    .map(|t| format!("{}:{}", t.key, t.effect))
                    .collect::<Vec<_>>()
            ),
            None => println!(
                "[mark-control-plane] Marking the node {name} as control-plane by adding the taints {:?}",
                kubeadm_cluster::node::default_taints(info)
                    .iter()
                    .map(|(k, e)| format!("{k}:{e}"))
                    .collect::<Vec<_>>()
            ),
        }
        Ok(())
    })
}

fn bootstrap_token(ctx: &mut InitContext) -> Result<()> {
    let show = !ctx.opts.skip_token_print;
    let ca_path = pki_path(&ctx.cfg, "ca.crt");
    let ca = match ctx.fx.read(&ca_path)? {
        Some(ca) => ca,
        None if ctx.opts.dry_run => {
            ctx.fx.note(&format!(
                "{} does not exist: cluster-info would carry this run's CA",
                ca_path.display()
            ));
            Vec::new()
        }
        None => read(ctx, &ca_path)?,
    };
    with_client(ctx, |c, cfg| async move {
        cluster_api::bootstrap_token(&c, &cfg, &ca).await?;
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

fn addon_coredns(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, |c, cfg| async move {
        cluster_api::addon_coredns(&c, &cfg).await?;
        println!("[addons] Applied essential addon: CoreDNS");
        Ok(())
    })
}

fn addon_kube_proxy(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, |c, cfg| async move {
        cluster_api::addon_kube_proxy(&c, &cfg).await?;
        println!("[addons] Applied essential addon: kube-proxy");
        Ok(())
    })
}

/// The API phases, in upstream order, to append after kubelet-start.
pub fn phases() -> Vec<Phase<InitContext, Error>> {
    vec![
        Phase::leaf(
            "wait-control-plane",
            "Wait for the control plane to start",
            super::wait_control_plane::run,
        ),
        Phase::group(
            "upload-config",
            "Upload the kubeadm and kubelet configuration to a ConfigMap",
            vec![
                Phase::leaf(
                    "kubeadm",
                    "Upload the kubeadm ClusterConfiguration to a ConfigMap",
                    upload_config_kubeadm,
                ),
                Phase::leaf(
                    "kubelet",
                    "Upload the kubelet component config to a ConfigMap",
                    upload_config_kubelet,
                ),
            ],
        ),
        Phase::leaf(
            "upload-certs",
            "Upload certificates to kubeadm-certs",
            upload_certs,
        )
        .when(|ctx: &InitContext| ctx.opts.upload_certs),
        Phase::leaf(
            "mark-control-plane",
            "Mark a node as a control-plane",
            mark_control_plane,
        ),
        Phase::leaf(
            "bootstrap-token",
            "Generates bootstrap tokens used to join a node to a cluster",
            bootstrap_token,
        ),
        super::kubelet_finalize::phase(),
        Phase::group(
            "addon",
            "Install required addons for passing conformance tests",
            vec![
                Phase::leaf(
                    "coredns",
                    "Install the CoreDNS addon to a Kubernetes cluster",
                    addon_coredns,
                )
                .when(|ctx: &InitContext| !ctx.cfg.cluster.dns.disabled),
                Phase::leaf(
                    "kube-proxy",
                    "Install the kube-proxy addon to a Kubernetes cluster",
                    addon_kube_proxy,
                )
                .when(|ctx: &InitContext| !ctx.cfg.cluster.proxy.disabled),
            ],
        ),
        Phase::leaf(
            "show-join-command",
            "Show the join command for control-plane and worker node",
            show_join_command,
        ),
    ]
}
