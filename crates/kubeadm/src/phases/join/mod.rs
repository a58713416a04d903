//! The `kubeadm join` phase tree (upstream order): preflight · control-plane-prepare
//! (download-certs, certs, kubeconfig, control-plane) · kubelet-start · control-plane-join
//! (etcd, mark-control-plane) · wait-control-plane.
//!
//! Discovery and the cluster's configuration are fetched lazily, once, by the first phase that
//! needs them, and before that phase writes anything: a cluster that cannot be authenticated
//! leaves the host untouched. The control-plane phases reuse init's certs, kubeconfig and
//! static Pod code through an [`InitContext`] built from the cluster's ClusterConfiguration and
//! this node's JoinConfiguration, as upstream converts a JoinConfiguration into an
//! InitConfiguration.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kubeadm_api::config::{InitConfig, JoinConfig};
use kubeadm_api::v1beta4::{Arg, InitConfiguration};
use kubeadm_effects::Effects;
use kubeadm_etcd::EtcdClient;
use kubeadm_workflow::Workflow;

use crate::discovery::{self, ClusterInfo};
use crate::error::{Error, Result};
use crate::etcd_membership::{self, Membership};
use crate::phases::init::api_session::ApiSession;
use crate::phases::init::{InitContext, InitOptions};
use crate::{apiclient, host};

pub mod control_plane_join;
pub mod control_plane_prepare;
pub mod kubelet_start;
pub mod preflight;
pub mod wait_control_plane;

/// Where the kubelet finds its bootstrap credentials.
pub const BOOTSTRAP_KUBELET_CONF: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
/// The kubelet's own kubeconfig, written by the kubelet after its TLS bootstrap.
pub const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
/// The admin kubeconfig a control-plane join writes.
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// The flags every join phase that reads the cluster uses: the configuration, discovery and
/// the TLS-bootstrap token (the cluster's configuration is fetched with them).
const DISCOVERY_FLAGS: &[&str] = &[
    "config",
    "token",
    "tls-bootstrap-token",
    "discovery-file",
    "discovery-token",
    "discovery-token-ca-cert-hash",
    "discovery-token-unsafe-skip-ca-verification",
    "dry-run",
];

/// Command-line choices of `kubeadm join` that are not part of the configuration.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    /// `--dry-run` (or `dryRun: true` in the file).
    pub dry_run: bool,
    /// `--ignore-preflight-errors` merged with the file's list.
    pub ignore_preflight_errors: Vec<String>,
}

/// What join phases see.
pub struct JoinContext {
    /// The resolved JoinConfiguration.
    pub cfg: JoinConfig,
    /// Command-line options.
    pub opts: JoinOptions,
    /// Every side effect goes through here.
    pub fx: Arc<dyn Effects>,
    /// The authenticated cluster (after discovery).
    cluster: Option<ClusterInfo>,
    /// The cluster's configuration completed for this node (after the first fetch).
    init: Option<InitConfig>,
    /// The admin API client (after control-plane-prepare wrote admin.conf); under `--dry-run`
    /// the printing client.
    api: Option<ApiSession>,
}

impl JoinContext {
    /// A context; nothing is fetched until a phase needs it.
    pub fn new(cfg: JoinConfig, fx: Arc<dyn Effects>, opts: JoinOptions) -> Self {
        JoinContext {
            cfg,
            opts,
            fx,
            cluster: None,
            init: None,
            api: None,
        }
    }

    fn control_plane(&self) -> bool {
        self.cfg.join.control_plane.is_some()
    }

    /// One of this join's timeouts (configured, or upstream's default).
    fn timeout(
        &self,
        pick: fn(&kubeadm_api::v1beta4::Timeouts) -> Option<kubeadm_api::Duration>,
    ) -> Duration {
        kubeadm_api::defaults::timeout(self.cfg.join.timeouts.as_ref(), pick)
    }

    /// Runs discovery once.
    fn cluster(&mut self) -> Result<ClusterInfo> {
        if let Some(c) = &self.cluster {
            return Ok(c.clone());
        }
        let timeout = self.timeout(|t| t.discovery);
        let d = self.cfg.join.discovery.clone();
        let rt = apiclient::runtime()?;
        let info = rt.block_on(discovery::discover(&d, timeout))?;
        self.cluster = Some(info.clone());
        Ok(info)
    }

    /// The TLS-bootstrap kubeconfig (discovered cluster + token).
    fn bootstrap_kubeconfig(&mut self) -> Result<String> {
        let info = self.cluster()?;
        let token = self.cfg.join.discovery.tls_bootstrap_token.clone();
        if token.is_empty() {
            return Err(Error::with_hint(
                "no token for the kubelet's TLS bootstrap",
                "pass --tls-bootstrap-token (or --token), or set discovery.tlsBootstrapToken",
            ));
        }
        discovery::tls_bootstrap_kubeconfig(&info, &token).map_err(Error::msg)
    }

    /// The cluster's configuration, fetched with the bootstrap token and completed for this node.
    fn init_config(&mut self) -> Result<InitConfig> {
        if let Some(c) = &self.init {
            return Ok(c.clone());
        }
        let kc = self.bootstrap_kubeconfig()?;
        println!("[preflight] Reading configuration from the cluster...");
        let rt = apiclient::runtime()?;
        let (cluster_text, kubelet_text) = rt.block_on(fetch_cluster_config(&kc))?;
        let cfg = self.complete_init_config(&cluster_text, kubelet_text.as_deref())?;
        self.init = Some(cfg.clone());
        Ok(cfg)
    }

    fn complete_init_config(
        &self,
        cluster_text: &str,
        kubelet_text: Option<&str>,
    ) -> Result<InitConfig> {
        const SOURCE: &str = "ConfigMap kube-system/kubeadm-config";
        let docs = kubeadm_api::decode::decode(SOURCE, cluster_text)?;
        let cluster = docs.cluster.ok_or_else(|| {
            Error::with_hint(
                format!("{SOURCE} holds no ClusterConfiguration"),
                "re-upload it from a control-plane node with `kubeadm init phase upload-config kubeadm`",
            )
        })?;
        let kubelet_user = match kubelet_text {
            Some(t) => {
                kubeadm_api::decode::decode("ConfigMap kube-system/kubelet-config", t)?.kubelet
            }
            None => None,
        };
        let join = &self.cfg.join;
        let mut init = InitConfiguration {
            node_registration: join.node_registration.clone(),
            patches: join.patches.clone(),
            timeouts: join.timeouts.clone(),
            dry_run: join.dry_run,
            ..Default::default()
        };
        let facts = host::facts(self.fx.as_ref());
        match &join.control_plane {
            Some(cp) => {
                init.local_api_endpoint = cp.local_api_endpoint.clone();
                init.certificate_key = cp.certificate_key.clone();
            }
            None => {
                // A worker serves no API; the endpoint only has to be valid.
                init.local_api_endpoint.advertise_address = facts
                    .default_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "127.0.0.1".into());
                // Workers register their taints through the kubelet (none unless asked);
                // control-plane nodes get theirs in mark-control-plane.
                let taints = init
                    .node_registration
                    .taints
                    .get_or_insert_with(Vec::new)
                    .clone();
                if !taints.is_empty() {
                    let value = taints
                        .iter()
                        .map(|t| match t.value.as_str() {
                            "" => format!("{}:{}", t.key, t.effect),
                            v => format!("{}={v}:{}", t.key, t.effect),
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    init.node_registration.kubelet_extra_args.push(Arg {
                        name: "register-with-taints".into(),
                        value,
                    });
                }
            }
        }
        let mut cfg =
            InitConfig::complete(init, cluster, kubelet_user, None, &facts, true, SOURCE)?;
        // The join's own HA document: control-plane-prepare writes the endpoint with the API
        // server's manifest, through init's code.
        cfg.ha = self.cfg.ha.clone();
        cfg.control_plane = self.cfg.control_plane.clone();
        Ok(cfg)
    }

    /// Runs `f` on an init context holding the cluster's configuration for this node; both
    /// contexts share the one effects layer, so init's phases write (or, under `--dry-run`,
    /// print) exactly as join's own do.
    fn with_init<R>(&mut self, f: impl FnOnce(&mut InitContext) -> Result<R>) -> Result<R> {
        let cfg = self.init_config()?;
        let opts = InitOptions {
            dry_run: self.opts.dry_run,
            ignore_preflight_errors: self.opts.ignore_preflight_errors.clone(),
            ..Default::default()
        };
        f(&mut InitContext::new(cfg, Arc::clone(&self.fx), opts))
    }

    /// The admin API client: from admin.conf (written by control-plane-prepare), or under
    /// `--dry-run` the client that prints each request instead of sending it.
    fn admin_api(&mut self) -> Result<&ApiSession> {
        if self.api.is_none() {
            let session = if self.opts.dry_run {
                ApiSession::dry_run()?
            } else {
                let text = self
                    .fx
                    .read_to_string(Path::new(ADMIN_CONF))?
                    .ok_or_else(|| {
                        Error::with_hint(
                            format!("{ADMIN_CONF} does not exist"),
                            "run `kubeadm join phase control-plane-prepare kubeconfig` first",
                        )
                    })?;
                ApiSession::from_kubeconfig(ADMIN_CONF, &text)?
            };
            self.api = Some(session);
        }
        self.api.as_ref().ok_or_else(|| Error::msg("no API client"))
    }

    /// etcd membership for this join: the real client for `endpoints` (the members' client
    /// URLs), or under `--dry-run` the recording twin.
    fn etcd(&self, endpoints: &[String], certs_dir: &Path) -> Result<Box<dyn Membership>> {
        // Nothing of this node's is in the cluster yet, so a dry run has nothing to read.
        match self.opts.dry_run {
            true => Ok(Box::new(etcd_membership::Recording::new(None))),
            false => Ok(Box::new(self.etcd_client(endpoints, certs_dir)?)),
        }
    }

    /// The real etcd client for `endpoints`, with this node's healthcheck-client identity.
    fn etcd_client(&self, endpoints: &[String], certs_dir: &Path) -> Result<EtcdClient> {
        if endpoints.is_empty() {
            return Err(Error::with_hint(
                "etcd endpoints could not be determined: no etcd Pod in kube-system carries the kubeadm.kubernetes.io/etcd.advertise-client-urls annotation (nor, in controlPlaneMode: systemd, a control-plane Node the kubeadm-rs.io/etcd.advertise-client-urls one)",
                "check that the existing control-plane nodes' etcd static Pods are running (`kubectl -n kube-system get pods -l component=etcd`)",
            ));
        }
        let tls = etcd_membership::load_tls(
            self.fx.as_ref(),
            certs_dir,
            "run `kubeadm join phase control-plane-prepare certs` first",
        )?;
        etcd_membership::client(endpoints, &tls).map_err(|source| Error::Etcd {
            action: "connect to the existing etcd members".into(),
            source,
        })
    }
}

async fn fetch_cluster_config(bootstrap_kubeconfig: &str) -> Result<(String, Option<String>)> {
    let client =
        apiclient::client_from_kubeconfig(BOOTSTRAP_KUBELET_CONF, bootstrap_kubeconfig).await?;
    let api: Api<ConfigMap> = Api::namespaced(client, "kube-system");
    let get = |name: &'static str| {
        let api = api.clone();
        async move {
            apiclient::retry(&format!("get ConfigMap kube-system/{name}"), 5, || {
                api.get_opt(name)
            })
            .await
        }
    };
    let cm = get("kubeadm-config").await?.ok_or_else(|| {
        Error::with_hint(
            "the cluster has no ConfigMap kube-system/kubeadm-config",
            "this cluster was not set up by kubeadm, or `kubeadm init phase upload-config` has not run",
        )
    })?;
    let cluster = cm
        .data
        .and_then(|mut d| d.remove("ClusterConfiguration"))
        .ok_or_else(|| {
            Error::msg("ConfigMap kube-system/kubeadm-config has no ClusterConfiguration key")
        })?;
    let kubelet = crate::apiclient::kubelet_config_text(&api, &cluster).await?;
    Ok((cluster, kubelet))
}

/// Whether this join makes a control-plane node (the control-plane phases run only then).
fn is_control_plane(ctx: &JoinContext) -> bool {
    ctx.control_plane()
}

/// The `kubeadm join` phase tree, in upstream order.
pub fn join_workflow() -> Workflow<JoinContext, Error> {
    Workflow {
        command: "join",
        phases: vec![
            preflight::phase(),
            control_plane_prepare::phase(),
            kubelet_start::phase(),
            control_plane_join::phase(),
            wait_control_plane::phase(),
        ],
    }
}
