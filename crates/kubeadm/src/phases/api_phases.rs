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

/// Runs `f` with a client from admin.conf, or only notes `what` under `--dry-run`.
fn with_client<F, Fut>(ctx: &mut InitContext, what: &str, f: F) -> Result<()>
where
    F: FnOnce(Client, InitConfig) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    if ctx.opts.dry_run {
        ctx.fx.note(&format!("[dry-run] would {what}"));
        return Ok(());
    }
    let kc = read(ctx, Path::new(ADMIN_CONF))?;
    let text =
        String::from_utf8(kc).map_err(|_| Error::msg(format!("{ADMIN_CONF} is not UTF-8")))?;
    let cfg = ctx.cfg.clone();
    let rt = apiclient::runtime()?;
    rt.block_on(async move {
        let client = apiclient::client_from_kubeconfig(ADMIN_CONF, &text).await?;
        f(client, cfg).await
    })
}

fn wait_control_plane(ctx: &mut InitContext) -> Result<()> {
    let url = ctx.cfg.local_api_server_url();
    let timeout = ctx
        .cfg
        .init
        .timeouts
        .as_ref()
        .and_then(|t| t.control_plane_component_health_check)
        .map(|d| d.to_std())
        .unwrap_or(std::time::Duration::from_secs(240));
    with_client(
        ctx,
        "wait for the API server to become ready",
        |c, _| async move {
            let took = cluster_api::wait_for_api_server(&c, &url, timeout).await?;
            println!(
                "[api-check] The API server is healthy after {:.3}s",
                took.as_secs_f64()
            );
            Ok(())
        },
    )
}

const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";

fn upload_config(ctx: &mut InitContext) -> Result<()> {
    // From 1.29 admin.conf's group (kubeadm:cluster-admins) has no rights until the
    // kubeadm:cluster-admins ClusterRoleBinding exists, so that binding is created with
    // super-admin.conf (group system:masters), as upstream does.
    let super_admin = if ctx.cfg.info().has_super_admin() && !ctx.opts.dry_run {
        ctx.fx.read_to_string(Path::new(SUPER_ADMIN_CONF))?
    } else {
        None
    };
    with_client(
        ctx,
        "upload kubeadm-config and kubelet-config",
        |c, cfg| async move {
            match super_admin {
                Some(text) => {
                    let sc = apiclient::client_from_kubeconfig(SUPER_ADMIN_CONF, &text).await?;
                    cluster_api::cluster_admins(&sc, &cfg).await?;
                }
                None => cluster_api::cluster_admins(&c, &cfg).await?,
            }
            cluster_api::upload_config(&c, &cfg).await?;
            println!(
                "[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace"
            );
            println!(
                "[kubelet] Creating a ConfigMap \"kubelet-config\" in namespace kube-system with the configuration for the kubelets in the cluster"
            );
            Ok(())
        },
    )
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
    let mut names = vec![
        "ca.crt",
        "ca.key",
        "sa.key",
        "sa.pub",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
    ];
    if ctx.cfg.local_etcd().is_some() {
        names.extend(["etcd/ca.crt", "etcd/ca.key"]);
    }
    let mut files = BTreeMap::new();
    if !ctx.opts.dry_run {
        for n in names {
            let data = read(ctx, &pki_path(&ctx.cfg, n))?;
            files.insert(n.replace('/', "-"), data);
        }
    }
    with_client(
        ctx,
        "upload the control-plane certificates to kube-system/kubeadm-certs",
        |c, _| {
            let key = key.clone();
            async move { cluster_api::upload_certs(&c, &key, &files).await }
        },
    )?;
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
    with_client(
        ctx,
        "label and taint this node as a control-plane node",
        |c, cfg| async move {
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
        },
    )
}

fn bootstrap_token(ctx: &mut InitContext) -> Result<()> {
    let show = !ctx.opts.skip_token_print;
    let ca = if ctx.opts.dry_run {
        Vec::new()
    } else {
        read(ctx, &pki_path(&ctx.cfg, "ca.crt"))?
    };
    with_client(
        ctx,
        "create bootstrap tokens, their RBAC and cluster-info",
        |c, cfg| async move {
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
        },
    )
}

fn addon_coredns(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, "apply the CoreDNS addon", |c, cfg| async move {
        cluster_api::addon_coredns(&c, &cfg).await?;
        println!("[addons] Applied essential addon: CoreDNS");
        Ok(())
    })
}

fn addon_kube_proxy(ctx: &mut InitContext) -> Result<()> {
    with_client(ctx, "apply the kube-proxy addon", |c, cfg| async move {
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
            wait_control_plane,
        ),
        Phase::leaf(
            "upload-config",
            "Upload the kubeadm and kubelet configuration to a ConfigMap",
            upload_config,
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
