//! The cluster as `upgrade` reads it (shared by plan, apply, diff and node): kubeadm-config,
//! kubelet-config and kube-proxy ConfigMaps, the API server's `/version`, the Nodes' kubelet
//! versions and readiness, and this node's name and API endpoint from its own files. From
//! these, [`ClusterView::target_config`] builds the configuration init's builders render from.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::Client;
use kube::api::{Api, ListParams};
use kubeadm_api::KubeVersion;
use kubeadm_api::config::InitConfig;
use kubeadm_api::v1beta4::{InitConfiguration, Patches, Timeouts};
use kubeadm_effects::Effects;
use kubeadm_render::staticpod;
use serde_json::Value;

use crate::apiclient;
use crate::error::{Error, Result};
use crate::host;

const KUBEADM_CONFIG: &str = "ConfigMap kube-system/kubeadm-config";
/// The kubelet's kubeconfig: its client certificate names the node.
pub const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
/// The admin kubeconfig (the default `--kubeconfig`).
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
/// Annotation of the kube-apiserver static Pod holding its advertise endpoint.
const APISERVER_ENDPOINT_ANNOTATION: &str =
    "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint";

/// One Node as `upgrade` cares about it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Name.
    pub name: String,
    /// `status.nodeInfo.kubeletVersion`, when it parses.
    pub kubelet: Option<KubeVersion>,
    /// Labelled `node-role.kubernetes.io/control-plane`.
    pub control_plane: bool,
    /// Condition Ready is True.
    pub ready: bool,
}

/// What was read from the cluster, and the client it was read with.
pub struct ClusterView {
    /// The runtime the client lives on.
    pub rt: tokio::runtime::Runtime,
    /// The client (from `--kubeconfig`).
    pub client: Client,
    /// `ClusterConfiguration` of kubeadm-config, as stored.
    pub cluster_text: String,
    /// `kubelet` of kubelet-config, if any.
    pub kubelet_text: Option<String>,
    /// `config.conf` of kube-proxy, if any.
    pub kube_proxy_text: Option<String>,
    /// The API server's `gitVersion`.
    pub api_version: KubeVersion,
    /// Every Node.
    pub nodes: Vec<NodeInfo>,
    /// This node's name (kubelet.conf's client certificate, else the hostname).
    pub node_name: String,
}

impl std::fmt::Debug for ClusterView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterView")
            .field("api_version", &self.api_version)
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

impl ClusterView {
    /// Reads the cluster through `kubeconfig` (a host path, resolved under the root; file
    /// references inside it are read through the effects layer too).
    pub fn read(fx: &dyn Effects, kubeconfig: &str) -> Result<Self> {
        let text = fx.read_to_string(Path::new(kubeconfig))?.ok_or_else(|| {
            Error::with_hint(
                format!("the kubeconfig {kubeconfig} does not exist"),
                "run upgrade on a node set up by kubeadm, or pass --kubeconfig",
            )
        })?;
        let text = embed_files(fx, kubeconfig, &text)?;
        let node_name = node_name(fx).unwrap_or_else(|| host::hostname().to_lowercase());
        let rt = apiclient::runtime()?;
        let kc = kubeconfig.to_string();
        let (client, read) = rt.block_on(async move {
            let client = apiclient::client_from_kubeconfig(&kc, &text).await?;
            let read = read_objects(&client).await?;
            Ok::<_, Error>((client, read))
        })?;
        let (cluster_text, kubelet_text, kube_proxy_text, git_version, nodes) = read;
        let api_version = KubeVersion::parse(&git_version).map_err(|e| {
            Error::msg(format!(
                "the API server reports version {git_version:?}, which cannot be read: {e}"
            ))
        })?;
        Ok(ClusterView {
            rt,
            client,
            cluster_text,
            kubelet_text,
            kube_proxy_text,
            api_version,
            nodes,
            node_name,
        })
    }

    /// `kubernetesVersion` of the stored ClusterConfiguration.
    pub fn cluster_version(&self) -> Result<KubeVersion> {
        let cluster = self.cluster_configuration()?;
        KubeVersion::parse(&cluster.kubernetes_version).map_err(|e| {
            Error::with_hint(
                format!("{KUBEADM_CONFIG}: kubernetesVersion: {e}"),
                "re-upload a valid configuration with `kubeadm init phase upload-config kubeadm`",
            )
        })
    }

    /// The stored ClusterConfiguration, decoded strictly (v1beta3 converted).
    pub fn cluster_configuration(&self) -> Result<kubeadm_api::v1beta4::ClusterConfiguration> {
        let docs = kubeadm_api::decode::decode(KUBEADM_CONFIG, &self.cluster_text)?;
        docs.cluster.ok_or_else(|| {
            Error::with_hint(
                format!("{KUBEADM_CONFIG} holds no ClusterConfiguration"),
                "re-upload it with `kubeadm init phase upload-config kubeadm`",
            )
        })
    }

    /// The kubelets' versions.
    pub fn kubelet_versions(&self) -> Vec<KubeVersion> {
        self.nodes
            .iter()
            .filter_map(|n| n.kubelet.clone())
            .collect()
    }

    /// The cluster's configuration at `version`, completed for this node: the stored
    /// ClusterConfiguration with the new version, this node's name, API endpoint (from its
    /// kube-apiserver manifest; a worker's is only a placeholder) and CRI socket, and the
    /// stored kubelet and kube-proxy configurations. No bootstrap token is added.
    pub fn target_config(
        &self,
        fx: &dyn Effects,
        version: &KubeVersion,
        patches: Option<String>,
        upgrade_manifests: Duration,
    ) -> Result<InitConfig> {
        let mut cluster = self.cluster_configuration()?;
        cluster.kubernetes_version = version.to_string();
        let decode_doc = |source: &str, text: &Option<String>| -> Result<Option<Value>> {
            Ok(match text {
                Some(t) => {
                    let docs = kubeadm_api::decode::decode(source, t)?;
                    docs.kubelet.or(docs.kube_proxy)
                }
                None => None,
            })
        };
        let kubelet = decode_doc("ConfigMap kube-system/kubelet-config", &self.kubelet_text)?;
        let proxy = decode_doc("ConfigMap kube-system/kube-proxy", &self.kube_proxy_text)?;
        let mut init = InitConfiguration::default();
        init.node_registration.name = self.node_name.clone();
        init.node_registration.cri_socket = cri_socket(fx);
        init.patches = patches.map(|directory| Patches { directory });
        init.timeouts = Some(Timeouts {
            upgrade_manifests: Some(kubeadm_api::Duration(
                i64::try_from(upgrade_manifests.as_nanos()).unwrap_or(i64::MAX),
            )),
            ..Default::default()
        });
        let facts = host::facts(fx);
        match local_api_endpoint(fx) {
            Some((ip, port)) => {
                init.local_api_endpoint.advertise_address = ip;
                init.local_api_endpoint.bind_port = port;
            }
            None => {
                init.local_api_endpoint.advertise_address = facts
                    .default_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_else(|| "127.0.0.1".into());
            }
        }
        let mut cfg =
            InitConfig::complete(init, cluster, kubelet, proxy, &facts, true, KUBEADM_CONFIG)?;
        cfg.init.bootstrap_tokens.clear();
        Ok(cfg)
    }
}

type Objects = (
    String,
    Option<String>,
    Option<String>,
    String,
    Vec<NodeInfo>,
);

async fn read_objects(client: &Client) -> Result<Objects> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-system");
    let get = |name: &'static str| {
        let cms = cms.clone();
        async move {
            apiclient::retry(&format!("get ConfigMap kube-system/{name}"), 5, || {
                cms.get_opt(name)
            })
            .await
        }
    };
    let key =
        |cm: Option<ConfigMap>, key: &str| cm.and_then(|c| c.data).and_then(|mut d| d.remove(key));
    let kubeadm = get("kubeadm-config").await?.ok_or_else(|| {
        Error::with_hint(
            "the cluster has no ConfigMap kube-system/kubeadm-config",
            "this cluster was not set up by kubeadm, or `kubeadm init phase upload-config kubeadm` has not run",
        )
    })?;
    let cluster = key(Some(kubeadm), "ClusterConfiguration").ok_or_else(|| {
        Error::msg("ConfigMap kube-system/kubeadm-config has no ClusterConfiguration key")
    })?;
    let kubelet = apiclient::kubelet_config_text(&cms, &cluster).await?;
    let proxy = key(get("kube-proxy").await?, "config.conf");
    let version = apiclient::retry("get /version", 5, || client.apiserver_version())
        .await?
        .git_version;
    let nodes: Api<Node> = Api::all(client.clone());
    let lp = ListParams::default();
    let list = apiclient::retry("list Nodes", 5, || nodes.list(&lp)).await?;
    let nodes = list
        .items
        .into_iter()
        .map(|n| {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            let status = n.status.clone().unwrap_or_default();
            NodeInfo {
                name: n.metadata.name.clone().unwrap_or_default(),
                kubelet: status
                    .node_info
                    .as_ref()
                    .and_then(|i| KubeVersion::parse(&i.kubelet_version).ok()),
                control_plane: labels.contains_key("node-role.kubernetes.io/control-plane"),
                ready: status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True"),
            }
        })
        .collect();
    Ok((cluster, kubelet, proxy, version, nodes))
}

/// Replaces `client-certificate`, `client-key` and `certificate-authority` file references of a
/// kubeconfig by their contents, read through the effects layer (so under `--rootfs` the
/// node's files are used, not the invoking host's).
pub fn embed_files(fx: &dyn Effects, name: &str, text: &str) -> Result<String> {
    let mut kc: Value = serde_saphyr::from_str(text)
        .map_err(|e| Error::msg(format!("{name} is not a valid kubeconfig: {e}")))?;
    let embed = |obj: &mut Value, file_key: &str, data_key: &str| -> Result<()> {
        let Some(file) = obj
            .get(file_key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
        else {
            return Ok(());
        };
        let bytes = fx.read(Path::new(&file))?.ok_or_else(|| {
            Error::with_hint(
                format!("{name} refers to {file}, which does not exist"),
                "check the kubeconfig, or pass another with --kubeconfig",
            )
        })?;
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        if let Some(o) = obj.as_object_mut() {
            o.remove(file_key);
            o.insert(data_key.into(), Value::String(data));
        }
        Ok(())
    };
    for user in kc["users"].as_array_mut().into_iter().flatten() {
        embed(
            &mut user["user"],
            "client-certificate",
            "client-certificate-data",
        )?;
        embed(&mut user["user"], "client-key", "client-key-data")?;
    }
    for cluster in kc["clusters"].as_array_mut().into_iter().flatten() {
        embed(
            &mut cluster["cluster"],
            "certificate-authority",
            "certificate-authority-data",
        )?;
    }
    serde_json::to_string(&kc).map_err(|e| Error::msg(format!("{name}: {e}")))
}

/// This node's name as upstream finds it: the CN (`system:node:<name>`) of kubelet.conf's
/// client certificate.
fn node_name(fx: &dyn Effects) -> Option<String> {
    let text = fx.read_to_string(Path::new(KUBELET_CONF)).ok()??;
    let text = embed_files(fx, KUBELET_CONF, &text).ok()?;
    let kc: Value = serde_json::from_str(&text).ok()?;
    let data = kc["users"][0]["user"]["client-certificate-data"].as_str()?;
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let pem = String::from_utf8(pem).ok()?;
    let cert = kubeadm_pki::cert::CertInfo::from_pem(KUBELET_CONF, &pem).ok()?;
    cert.cn
        .strip_prefix("system:node:")
        .map(str::to_string)
        .filter(|n| !n.is_empty())
}

/// The static Pod manifest of `component` on this node, parsed (`None` when absent).
pub fn manifest(fx: &dyn Effects, component: &str) -> Option<Value> {
    let path = staticpod::manifest_path(component);
    let text = fx.read_to_string(Path::new(&path)).ok()??;
    serde_saphyr::from_str(&text).ok()
}

/// This node's API endpoint from its kube-apiserver manifest's annotation (`ip:port`), or in
/// controlPlaneMode: systemd from its service's `--advertise-address` and `--secure-port`.
fn local_api_endpoint(fx: &dyn Effects) -> Option<(String, i32)> {
    let Some(pod) = manifest(fx, "kube-apiserver") else {
        let flags = crate::services::flags(fx, "kube-apiserver").ok()??;
        let get = |name: &str| {
            let prefix = format!("--{name}=");
            flags
                .iter()
                .find_map(|f| f.strip_prefix(prefix.as_str()).map(str::to_string))
        };
        let port = get("secure-port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(6443);
        return Some((get("advertise-address")?, port));
    };
    let ep = pod["metadata"]["annotations"][APISERVER_ENDPOINT_ANNOTATION].as_str()?;
    let (ip, port) = ep.rsplit_once(':')?;
    Some((
        ip.trim_start_matches('[').trim_end_matches(']').to_string(),
        port.parse().ok()?,
    ))
}

/// This node's CRI socket as the kubelet was told (instance config, else kubeadm-flags.env),
/// else upstream's default.
fn cri_socket(fx: &dyn Effects) -> String {
    let from_instance = fx
        .read_to_string(Path::new(kubeadm_render::kubelet::INSTANCE_CONFIG_PATH))
        .ok()
        .flatten()
        .and_then(|t| serde_saphyr::from_str::<Value>(&t).ok())
        .and_then(|v| v["containerRuntimeEndpoint"].as_str().map(str::to_string));
    let from_flags = || {
        let env = fx
            .read_to_string(Path::new(kubeadm_render::kubelet::FLAGS_ENV_PATH))
            .ok()??;
        env.split(|c: char| c.is_whitespace() || c == '"')
            .find_map(|w| w.strip_prefix("--container-runtime-endpoint="))
            .map(str::to_string)
    };
    from_instance
        .or_else(from_flags)
        .unwrap_or_else(|| kubeadm_api::defaults::DEFAULT_CRI_SOCKET.to_string())
}
