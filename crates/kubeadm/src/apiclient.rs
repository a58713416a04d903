//! The cluster API client: a kube-rs client from a kubeconfig, create-or-update for every kind,
//! and retries with backoff on conflicts and transient errors.

use std::fmt::Debug;
use std::sync::Once;
use std::time::Duration;

use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why talking to the API server failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The kubeconfig could not be read or used.
    #[error("cannot use kubeconfig {path}: {detail}")]
    Kubeconfig {
        /// Path of the kubeconfig.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// A request failed.
    #[error("{action}: {source}")]
    Request {
        /// What was being done (`create Secret kube-system/bootstrap-token-abcdef`).
        action: String,
        /// The client error (keeps the server's `Status`).
        #[source]
        source: kube::Error,
    },
    /// Something else (runtime setup, encoding).
    #[error("{0}")]
    Other(String),
}

impl ApiError {
    /// What the operator can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ApiError::Kubeconfig { .. } => Some(
                "pass a working admin kubeconfig with --kubeconfig (default /etc/kubernetes/admin.conf)"
                    .into(),
            ),
            ApiError::Request { source, .. } => match source {
                kube::Error::Api(s) if s.is_forbidden() => Some(
                    "the kubeconfig's user lacks RBAC permission; use admin.conf (or super-admin.conf)".into(),
                ),
                kube::Error::Api(s) if s.code == 401 => {
                    Some("the API server did not accept the kubeconfig's credentials".into())
                }
                kube::Error::Api(_) => None,
                _ => Some("check that the API server is running and reachable (`crictl ps`, `journalctl -u kubelet`)".into()),
            },
            ApiError::Other(_) => None,
        }
    }

    /// True when the server answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Request { source: kube::Error::Api(s), .. } if s.is_not_found())
    }

    /// True when the server answered 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, ApiError::Request { source: kube::Error::Api(s), .. } if s.is_already_exists())
    }
}

/// Installs aws-lc-rs as the process's rustls provider (once; a second provider would panic).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// A single-threaded runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime, ApiError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ApiError::Other(format!("cannot start the async runtime: {e}")))
}

/// A client from kubeconfig text (`path` names it in errors).
pub async fn client_from_kubeconfig(path: &str, text: &str) -> Result<Client, ApiError> {
    install_crypto_provider();
    let err = |detail: String| ApiError::Kubeconfig {
        path: path.to_string(),
        detail,
    };
    let kc = Kubeconfig::from_yaml(text).map_err(|e| err(e.to_string()))?;
    let mut cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| err(e.to_string()))?;
    cfg.connect_timeout = Some(Duration::from_secs(10));
    cfg.read_timeout = Some(Duration::from_secs(30));
    Client::try_from(cfg).map_err(|e| err(e.to_string()))
}

/// Whether an error is worth retrying: conflicts, server errors, throttling and connection errors.
pub fn is_transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.is_conflict() || s.code == 429 || s.code >= 500,
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// Runs `op` until it succeeds, fails for good, or `attempts` are used (backoff 50 ms doubling
/// to 1 s).
pub async fn retry<T, F, Fut>(action: &str, attempts: u32, mut op: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(50);
    let mut n = 0;
    loop {
        n += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if n < attempts && is_transient(&e) => {
                tracing::info!("{action}: {e}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
            Err(source) => {
                return Err(ApiError::Request {
                    action: action.to_string(),
                    source,
                });
            }
        }
    }
}

/// Objects we create or update: a kube resource with metadata.
pub trait Object:
    kube::Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync
{
}
impl<T> Object for T where
    T: kube::Resource<DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
{
}

/// The Api of a namespaced object's namespace.
pub fn namespaced_api<K>(client: &Client, obj: &K) -> Api<K>
where
    K: Object + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    let ns = obj
        .meta()
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    Api::namespaced(client.clone(), &ns)
}

/// The Api of a cluster-scoped kind.
pub fn cluster_api<K>(client: &Client) -> Api<K>
where
    K: Object + kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
{
    Api::all(client.clone())
}

/// Create-or-update of a namespaced object.
pub async fn apply_ns<K>(client: &Client, obj: &K) -> Result<K, ApiError>
where
    K: Object + kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
{
    apply(&namespaced_api(client, obj), obj).await
}

/// Create-or-update of a cluster-scoped object.
pub async fn apply_cluster<K>(client: &Client, obj: &K) -> Result<K, ApiError>
where
    K: Object + kube::Resource<Scope = k8s_openapi::ClusterResourceScope>,
{
    apply(&cluster_api(client), obj).await
}

fn describe<K: Object>(obj: &K) -> String {
    let m = obj.meta();
    let name = m.name.clone().unwrap_or_default();
    match &m.namespace {
        Some(ns) => format!("{} {ns}/{name}", K::kind(&())),
        None => format!("{} {name}", K::kind(&())),
    }
}

/// Create-or-update: creates the object, or replaces the stored one (keeping its
/// resourceVersion) when it exists; a conflict re-reads and retries. Re-running converges.
pub async fn apply<K: Object>(api: &Api<K>, obj: &K) -> Result<K, ApiError> {
    let name = obj.meta().name.clone().unwrap_or_default();
    let what = describe(obj);
    let pp = PostParams::default();
    retry(&format!("create or update {what}"), 8, || {
        let api = api.clone();
        let name = name.clone();
        let pp = pp.clone();
        async move {
            match api.create(&pp, obj).await {
                Ok(o) => Ok(o),
                Err(kube::Error::Api(s)) if s.is_already_exists() => {
                    let current = api.get(&name).await?;
                    let mut desired = obj.clone();
                    desired.meta_mut().resource_version = current.meta().resource_version.clone();
                    api.replace(&name, &pp, &desired).await
                }
                Err(e) => Err(e),
            }
        }
    })
    .await
}

/// Creates the object and fails if it exists (for tokens, whose ids must be unique).
pub async fn create_new<K: Object>(api: &Api<K>, obj: &K) -> Result<K, ApiError> {
    let what = describe(obj);
    retry(&format!("create {what}"), 5, || {
        let api = api.clone();
        async move { api.create(&PostParams::default(), obj).await }
    })
    .await
}

/// Deletes an object by name.
pub async fn delete<K: Object>(api: &Api<K>, name: &str) -> Result<(), ApiError> {
    retry(&format!("delete {} {name}", K::kind(&())), 5, || async {
        api.delete(name, &DeleteParams::default()).await.map(|_| ())
    })
    .await
}
