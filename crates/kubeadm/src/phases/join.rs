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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod, Secret};
use kube::api::{Api, ListParams};
use kubeadm_api::config::{InitConfig, JoinConfig};
use kubeadm_api::v1beta4::{Arg, InitConfiguration};
use kubeadm_effects::{Content, DryRunEffects, Effects};
use kubeadm_preflight::Inputs;
use kubeadm_render::{etcd, pod_yaml};
use kubeadm_workflow::{Phase, Workflow};

use super::{
    InitContext, InitOptions, certs, cluster_api, kubeconfig, staticpods, wait_control_plane,
};
use crate::discovery::{self, ClusterInfo};
use crate::error::{Error, Result};
use crate::{apiclient, host, waiter};

/// Where the kubelet finds its bootstrap credentials.
pub const BOOTSTRAP_KUBELET_CONF: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
/// The kubelet's own kubeconfig, written by the kubelet after its TLS bootstrap.
pub const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
/// The admin kubeconfig a control-plane join writes.
const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// Annotation on etcd mirror Pods naming the member's client URL.
const ETCD_CLIENT_URLS_ANNOTATION: &str = "kubeadm.kubernetes.io/etcd.advertise-client-urls";
/// How often waits look again.
const WAIT_INTERVAL: Duration = Duration::from_millis(200);

/// Command-line choices of `kubeadm join` that are not part of the configuration.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    /// `--dry-run` (or `dryRun: true` in the file).
    pub dry_run: bool,
    /// `--ignore-preflight-errors` merged with the file's list.
    pub ignore_preflight_errors: Vec<String>,
    /// The `--rootfs` (for the placeholder effects while init phases run).
    pub root: PathBuf,
}

/// What join phases see.
pub struct JoinContext {
    /// The resolved JoinConfiguration.
    pub cfg: JoinConfig,
    /// Command-line options.
    pub opts: JoinOptions,
    /// Every side effect goes through here.
    pub fx: Box<dyn Effects>,
    /// The authenticated cluster (after discovery).
    cluster: Option<ClusterInfo>,
    /// The cluster's configuration completed for this node (after the first fetch).
    init: Option<InitConfig>,
}

impl JoinContext {
    /// A context; nothing is fetched until a phase needs it.
    pub fn new(cfg: JoinConfig, fx: Box<dyn Effects>, opts: JoinOptions) -> Self {
        JoinContext {
            cfg,
            opts,
            fx,
            cluster: None,
            init: None,
        }
    }

    fn control_plane(&self) -> bool {
        self.cfg.join.control_plane.is_some()
    }

    fn timeout(
        &self,
        pick: fn(&kubeadm_api::v1beta4::Timeouts) -> Option<kubeadm_api::Duration>,
        default_secs: u64,
    ) -> Duration {
        self.cfg
            .join
            .timeouts
            .as_ref()
            .and_then(pick)
            .map(|d| d.to_std())
            .unwrap_or(Duration::from_secs(default_secs))
    }

    /// Runs discovery once.
    fn cluster(&mut self) -> Result<ClusterInfo> {
        if let Some(c) = &self.cluster {
            return Ok(c.clone());
        }
        let timeout = self.timeout(|t| t.discovery, 300);
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
        Ok(InitConfig::complete(
            init,
            cluster,
            kubelet_user,
            None,
            &facts,
            true,
            SOURCE,
        )?)
    }

    /// Runs `f` on an init context holding the cluster's configuration for this node, then takes
    /// the effects layer back.
    fn with_init<R>(&mut self, f: impl FnOnce(&mut InitContext) -> Result<R>) -> Result<R> {
        let cfg = self.init_config()?;
        let placeholder: Box<dyn Effects> = Box::new(DryRunEffects::new(
            &self.opts.root,
            Box::new(std::io::sink()),
        ));
        let fx = std::mem::replace(&mut self.fx, placeholder);
        let opts = InitOptions {
            dry_run: self.opts.dry_run,
            ignore_preflight_errors: self.opts.ignore_preflight_errors.clone(),
            ..Default::default()
        };
        let mut ictx = InitContext::new(cfg, fx, opts);
        let out = f(&mut ictx);
        self.fx = ictx.fx;
        out
    }

    /// A client from admin.conf (written by control-plane-prepare).
    fn admin_kubeconfig(&self) -> Result<String> {
        self.fx
            .read_to_string(Path::new(ADMIN_CONF))?
            .ok_or_else(|| {
                Error::with_hint(
                    format!("{ADMIN_CONF} does not exist"),
                    "run `kubeadm join phase control-plane-prepare kubeconfig` first",
                )
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
    let kubelet = get("kubelet-config")
        .await?
        .and_then(|c| c.data)
        .and_then(|mut d| d.remove("kubelet"));
    Ok((cluster, kubelet))
}

fn preflight(ctx: &mut JoinContext) -> Result<()> {
    let join = ctx.cfg.join.clone();
    let mut inputs = Inputs::from_join(&join);
    if ctx.control_plane() {
        // The control-plane checks need the cluster's version, subnets and etcd layout.
        let cfg = ctx.init_config()?;
        if cfg.cluster.control_plane_endpoint.is_empty() {
            return Err(Error::with_hint(
                "unable to add a new control plane instance to a cluster that doesn't have a stable controlPlaneEndpoint address",
                "set ClusterConfiguration.controlPlaneEndpoint (a load balancer or DNS name for every API server) when creating the cluster; see the HA documentation",
            ));
        }
        inputs.version = Some(cfg.version.clone());
        inputs.service_subnet = cfg.cluster.networking.service_subnet.clone();
        inputs.pod_subnet = cfg.cluster.networking.pod_subnet.clone();
        inputs.local_etcd_data_dir = cfg.local_etcd().map(|l| l.data_dir.clone());
        inputs.external_etcd = cfg.cluster.etcd.external.clone();
        if !inputs.download_certs {
            // Without a certificate key the shared certificates must have been copied by hand.
            let dir = Path::new(&cfg.cluster.certificates_dir);
            let shared = kubeadm_cluster::certs_secret::shared_files(cfg.local_etcd().is_some());
            let missing: Vec<String> = shared
                .iter()
                .map(|f| dir.join(f))
                .filter(|p| !ctx.fx.exists(p))
                .map(|p| p.display().to_string())
                .collect();
            if !missing.is_empty() {
                return Err(Error::with_hint(
                    format!(
                        "unable to add a new control plane instance: the shared certificates are missing: {}",
                        missing.join(", ")
                    ),
                    "pass --certificate-key (from `kubeadm init --upload-certs` or `kubeadm init phase upload-certs --upload-certs`), or copy the files from an existing control-plane node",
                ));
            }
        }
        println!(
            "[preflight] Running pre-flight checks before initializing the new control plane instance"
        );
    }
    kubeadm_preflight::run_checks(
        ctx.fx.as_ref(),
        Inputs::join_role(&join),
        &inputs,
        &ctx.opts.ignore_preflight_errors,
        ctx.opts.dry_run,
    )?;
    Ok(())
}

/// Where a kubeadm-certs entry goes (upstream names: the file with `/` turned into `-`).
fn certs_secret_path(cfg: &InitConfig, key: &str) -> Option<(PathBuf, bool)> {
    let dir = Path::new(&cfg.cluster.certificates_dir);
    let secret_file = key.ends_with(".key");
    let path = match key {
        "external-etcd-ca.crt" => PathBuf::from(&cfg.cluster.etcd.external.as_ref()?.ca_file),
        "external-etcd.crt" => PathBuf::from(&cfg.cluster.etcd.external.as_ref()?.cert_file),
        "external-etcd.key" => PathBuf::from(&cfg.cluster.etcd.external.as_ref()?.key_file),
        k if k.starts_with("etcd-") => dir.join("etcd").join(&k["etcd-".len()..]),
        k if !k.contains('/') && !k.contains("..") && !k.is_empty() => dir.join(k),
        _ => return None,
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
            (Content::Plain(data), 0o644)
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
            staticpods::run_component(ictx, component)?;
        }
        Ok(())
    })
}

/// The kubelet's healthz address from its configuration (upstream waits there).
fn kubelet_healthz(config: &serde_json::Value) -> String {
    let addr = config["healthzBindAddress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or("127.0.0.1");
    let port = config["healthzPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(10248);
    kubeadm_api::net::join_host_port(addr, port)
}

/// A plain-HTTP `GET /healthz` answered 200 (the kubelet's healthz is plain HTTP on loopback).
fn healthz_ok(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /healthz HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match s.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    let status = String::from_utf8_lossy(&head[..got]);
    status.starts_with("HTTP/1.") && status.get(9..12) == Some("200")
}

/// True when kubelet.conf exists, parses and its client certificate is in place.
fn kubelet_conf_ready(fx: &dyn Effects) -> bool {
    let Ok(Some(text)) = fx.read_to_string(Path::new(KUBELET_CONF)) else {
        return false;
    };
    match kubeadm_pki::kubeconfig::parse(KUBELET_CONF, &text) {
        Ok(kc) if !kc.client_cert_pem.is_empty() => true,
        Ok(kc) if !kc.client_cert_file.is_empty() => fx.exists(Path::new(&kc.client_cert_file)),
        _ => false,
    }
}

const JOIN_FAIL_HELP: &str = "the kubelet is not running or is unhealthy (e.g. required cgroups disabled); on systemd hosts look with `systemctl status kubelet` and `journalctl -xeu kubelet`";

fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if ready() {
            return Some(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(WAIT_INTERVAL);
    }
}

fn kubelet_start(ctx: &mut JoinContext) -> Result<()> {
    // Everything that can refuse the cluster runs before the first write.
    let kc = ctx.bootstrap_kubeconfig()?;
    let cfg = ctx.init_config()?;
    let info = ctx.cluster()?;
    let node_name = cfg.node_name().to_string();
    if !ctx.opts.dry_run {
        let rt = apiclient::runtime()?;
        let ready = rt.block_on(async {
            let client = apiclient::client_from_kubeconfig(BOOTSTRAP_KUBELET_CONF, &kc).await?;
            let api: Api<Node> = Api::all(client);
            let node = apiclient::retry(&format!("get Node {node_name}"), 5, || {
                api.get_opt(&node_name)
            })
            .await?;
            Ok::<_, Error>(node.is_some_and(|n| {
                n.status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            }))
        })?;
        if ready {
            return Err(Error::with_hint(
                format!(
                    "a Node with name {node_name:?} and status \"Ready\" already exists in the cluster"
                ),
                "delete the existing Node (`kubectl delete node`) or join with another --node-name",
            ));
        }
    }
    let token = ctx.cfg.join.discovery.tls_bootstrap_token.clone();
    ctx.fx.write_file(
        Path::new(BOOTSTRAP_KUBELET_CONF),
        Content::Redacted {
            data: kc.clone().into_bytes(),
            shown: kc.replace(&token, &kubeadm_api::token::redact(&token)),
        },
        0o600,
    )?;
    let ca_path = PathBuf::from(&ctx.cfg.join.ca_cert_path);
    if !ctx.fx.exists(&ca_path) {
        if let Some(parent) = ca_path.parent().filter(|p| !ctx.fx.exists(p)) {
            ctx.fx.create_dir_all(parent, 0o755)?;
        }
        ctx.fx.write_file(
            &ca_path,
            Content::Plain(info.ca_pem.clone().into_bytes()),
            0o644,
        )?;
    }
    ctx.with_init(staticpods::run_kubelet_start)?;
    if ctx.opts.dry_run {
        println!("[kubelet-start] Would wait for the kubelet to perform the TLS Bootstrap");
        return Ok(());
    }
    // The written config.yaml carries the operator's patches (e.g. another healthzPort).
    let written: serde_json::Value = ctx
        .fx
        .read_to_string(Path::new(kubeadm_render::kubelet::CONFIG_PATH))?
        .and_then(|t| serde_saphyr::from_str(&t).ok())
        .unwrap_or_else(|| cfg.kubelet.clone());
    let healthz = kubelet_healthz(&written);
    let health_timeout = ctx.timeout(|t| t.kubelet_health_check, 240);
    println!(
        "[kubelet-check] Waiting for a healthy kubelet at http://{healthz}/healthz. This can take up to {:?}",
        health_timeout
    );
    let took = wait_until(health_timeout, || healthz_ok(&healthz)).ok_or_else(|| {
        Error::with_hint(
            format!("the kubelet at http://{healthz}/healthz did not become healthy within {health_timeout:?}"),
            JOIN_FAIL_HELP,
        )
    })?;
    println!(
        "[kubelet-check] The kubelet is healthy after {:.3}s",
        took.as_secs_f64()
    );
    println!("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap");
    let tls_timeout = ctx.timeout(|t| t.tls_bootstrap, 300);
    let fx = ctx.fx.as_ref();
    wait_until(tls_timeout, || kubelet_conf_ready(fx)).ok_or_else(|| {
        Error::with_hint(
            format!(
                "the kubelet did not write {KUBELET_CONF} (TLS bootstrap) within {tls_timeout:?}"
            ),
            JOIN_FAIL_HELP,
        )
    })?;
    // The bootstrap credential has done its job; don't leave it on disk.
    ctx.fx.remove_file(Path::new(BOOTSTRAP_KUBELET_CONF))?;
    Ok(())
}

/// The client URLs of the running etcd members, from the etcd mirror Pods' annotation (as
/// upstream finds them).
async fn etcd_endpoints(admin: &str) -> Result<Vec<String>> {
    let client = apiclient::client_from_kubeconfig(ADMIN_CONF, admin).await?;
    let api: Api<Pod> = Api::namespaced(client, "kube-system");
    let lp = ListParams::default().labels("component=etcd,tier=control-plane");
    let pods = apiclient::retry("list etcd Pods in kube-system", 5, || api.list(&lp)).await?;
    let mut out: Vec<String> = pods
        .items
        .iter()
        .filter_map(|p| {
            p.metadata
                .annotations
                .as_ref()?
                .get(ETCD_CLIENT_URLS_ANNOTATION)
                .cloned()
        })
        .flat_map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|u| !u.is_empty())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn etcd_join(ctx: &mut JoinContext) -> Result<()> {
    let cfg = ctx.init_config()?;
    let Some(local) = cfg.local_etcd().cloned() else {
        return Ok(());
    };
    let peer_url = etcd::peer_url(&cfg);
    let learner = cfg
        .cluster
        .feature_gates
        .get("EtcdLearnerMode")
        .copied()
        .unwrap_or_else(|| cfg.info().etcd_learner_mode_default());
    let write_manifest = |ctx: &mut JoinContext, members: &[(String, String)]| -> Result<()> {
        ctx.with_init(|ictx| {
            let mut pod = etcd::pod(&ictx.cfg, &local, members);
            if let Some(set) = staticpods::load_patches(ictx)? {
                pod = set.apply_pod("etcd", pod)?.0;
            }
            staticpods::ensure_private_dir(ictx, Path::new(&local.data_dir), 0o700)?;
            println!("[etcd] Creating static Pod manifest for \"etcd\"");
            staticpods::write_manifest(ictx, "etcd", pod_yaml(&pod)?)
        })
    };
    if ctx.opts.dry_run {
        ctx.fx.note(&format!(
            "Would add this node's etcd member ({peer_url}) to the existing etcd cluster{}",
            if learner {
                " as a learner, then promote it"
            } else {
                ""
            }
        ));
        return write_manifest(ctx, &[(cfg.node_name().to_string(), peer_url)]);
    }
    let admin = ctx.admin_kubeconfig()?;
    let endpoints = apiclient::runtime()?.block_on(etcd_endpoints(&admin))?;
    if endpoints.is_empty() {
        return Err(Error::with_hint(
            "etcd endpoints could not be determined: no etcd Pod in kube-system carries the kubeadm.kubernetes.io/etcd.advertise-client-urls annotation",
            "check that the existing control-plane nodes' etcd static Pods are running (`kubectl -n kube-system get pods -l component=etcd`)",
        ));
    }
    let dir = Path::new(&cfg.cluster.certificates_dir);
    let read = |f: &str| -> Result<Vec<u8>> {
        let p = dir.join(f);
        ctx.fx.read(&p)?.ok_or_else(|| {
            Error::with_hint(
                format!("{} is missing", p.display()),
                "run `kubeadm join phase control-plane-prepare certs` first",
            )
        })
    };
    let tls = kubeadm_etcd::TlsFiles {
        ca: read("etcd/ca.crt")?,
        cert: read("etcd/healthcheck-client.crt")?,
        key: read("etcd/healthcheck-client.key")?,
    };
    let etcd_err = |e: kubeadm_etcd::EtcdError| {
        Error::with_hint(
            format!("etcd: {e}"),
            "check the existing etcd members' health with etcdctl (endpoint health, member list)",
        )
    };
    let client = kubeadm_etcd::EtcdClient::new(&endpoints, Some(&tls), Duration::from_secs(10))
        .map_err(etcd_err)?;
    let timeout = ctx.timeout(|t| t.etcd_api_call, 120);
    let existing = client.member_list().map_err(etcd_err)?;
    // A join that died after adding the member finds it again instead of adding a second one.
    let (me, members) = match existing.iter().find(|m| m.peer_urls.contains(&peer_url)) {
        Some(m) => {
            println!("[etcd] This node's etcd member ({peer_url}) is already in the cluster");
            (m.clone(), existing.clone())
        }
        None => {
            let (m, list) = client.member_add(&peer_url, learner).map_err(etcd_err)?;
            println!("[etcd] Announced new etcd member joining to the existing etcd cluster");
            (m, list)
        }
    };
    let initial: Vec<(String, String)> = members
        .iter()
        .filter_map(|m| {
            let url = m.peer_urls.first()?.clone();
            let name = if m.id == me.id || m.name.is_empty() {
                cfg.node_name().to_string()
            } else {
                m.name.clone()
            };
            Some((name, url))
        })
        .collect();
    write_manifest(ctx, &initial)?;
    println!(
        "[etcd] Waiting for the new etcd member to join the cluster. This can take up to {timeout:?}"
    );
    let start = Instant::now();
    if me.is_learner {
        client
            .promote_when_ready(me.id, timeout)
            .map_err(etcd_err)?;
        println!(
            "[etcd] Promoted the learner member {:x} to a voting member after {:.3}s",
            me.id,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn mark_control_plane(ctx: &mut JoinContext) -> Result<()> {
    let cfg = ctx.init_config()?;
    if ctx.opts.dry_run {
        ctx.fx
            .note("Would label and taint this node as a control-plane node");
        return Ok(());
    }
    let admin = ctx.admin_kubeconfig()?;
    apiclient::runtime()?.block_on(async {
        let client = apiclient::client_from_kubeconfig(ADMIN_CONF, &admin).await?;
        cluster_api::mark_control_plane(&client, &cfg).await
    })?;
    println!(
        "[mark-control-plane] Marking the node {} as control-plane by adding the labels {:?} and taints",
        cfg.node_name(),
        kubeadm_cluster::node::control_plane_labels(cfg.info())
    );
    Ok(())
}

fn wait_control_plane(ctx: &mut JoinContext) -> Result<()> {
    let cfg = ctx.init_config()?;
    // Upstream waits here only with WaitForAllControlPlaneComponents (version table).
    if !wait_control_plane::wait_for_all_components(&cfg) {
        tracing::info!(
            "[wait-control-plane] Skipping phase as the feature gate WaitForAllControlPlaneComponents is disabled"
        );
        return Ok(());
    }
    if ctx.opts.dry_run {
        ctx.fx
            .note("Would wait for the control plane components to become healthy");
        return Ok(());
    }
    let endpoints = wait_control_plane::endpoints_from_manifests(
        ctx.fx.as_ref(),
        &cfg.init.local_api_endpoint.advertise_address,
    )?;
    let timeout = wait_control_plane::control_plane_timeout(&cfg);
    waiter::wait_for_blocking(
        &endpoints,
        timeout,
        &waiter::WaitOptions::new("control-plane-check"),
    )
    .map_err(|e| {
        Error::with_hint(
            format!("failed while waiting for the control plane to start: {e}"),
            waiter::troubleshooting(&cfg.init.node_registration.cri_socket),
        )
    })?;
    Ok(())
}

fn is_control_plane(ctx: &JoinContext) -> bool {
    ctx.control_plane()
}

/// The `kubeadm join` phase tree, in upstream order.
pub fn join_workflow() -> Workflow<JoinContext, Error> {
    Workflow {
        command: "join",
        phases: vec![
            Phase::leaf("preflight", "Run join pre-flight checks", preflight),
            Phase::group(
                "control-plane-prepare",
                "Prepare the machine for serving a control plane",
                vec![
                    Phase::leaf("download-certs", "Download certificates shared among control-plane nodes from the kubeadm-certs Secret", download_certs),
                    Phase::leaf("certs", "Generate the certificates for the new control plane components", prepare_certs),
                    Phase::leaf("kubeconfig", "Generate the kubeconfig for the new control plane components", prepare_kubeconfig),
                    Phase::leaf("control-plane", "Generate the manifests for the new control plane components", prepare_control_plane),
                ],
            )
            .when(is_control_plane),
            Phase::leaf("kubelet-start", "Write kubelet settings, certificates and (re)start the kubelet", kubelet_start),
            Phase::group(
                "control-plane-join",
                "Join a machine as a control plane instance",
                vec![
                    Phase::leaf("etcd", "Add a new local etcd member", etcd_join),
                    Phase::leaf("mark-control-plane", "Mark a node as a control-plane", mark_control_plane),
                ],
            )
            .when(is_control_plane),
            Phase::leaf("wait-control-plane", "Wait for the control plane to start", wait_control_plane).when(is_control_plane),
        ],
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn kubelet_healthz_address_from_config() {
        assert_eq!(kubelet_healthz(&serde_json::json!({})), "127.0.0.1:10248");
        assert_eq!(
            kubelet_healthz(
                &serde_json::json!({"healthzBindAddress": "::1", "healthzPort": 20248})
            ),
            "[::1]:20248"
        );
    }

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
        assert!(certs_secret_path(&cfg, "external-etcd.crt").is_none());
    }
}
