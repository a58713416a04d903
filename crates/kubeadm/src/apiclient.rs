//! The cluster API client: a kube-rs client from a kubeconfig, create-or-update for every kind,
//! and retries with backoff on conflicts and transient errors.

use kubeadm_errors::Hint;
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
    /// A request failed. The server's answer is shown as `code reason: message` (never the
    /// client's debug form), and its cause chain once, in this message.
    #[error("{action}: {}", describe_error(error))]
    Request {
        /// What was being done (`create Secret kube-system/bootstrap-token-abcdef`).
        action: String,
        /// The client error (keeps the server's `Status`); rendered in the message, so it is
        /// not a separate cause.
        error: kube::Error,
    },
    /// Something else (runtime setup, encoding).
    #[error("{0}")]
    Other(String),
}

impl Hint for ApiError {
    fn hint(&self) -> Option<String> {
        match self {
            ApiError::Kubeconfig { .. } => Some(
                "pass a working admin kubeconfig with --kubeconfig (default /etc/kubernetes/admin.conf)"
                    .into(),
            ),
            ApiError::Request { error, .. } => match error {
                // The hint fits the credential the server saw: a node's bootstrap token is
                // allowed only what `kubeadm init` grants it.
                kube::Error::Api(s) if s.is_forbidden() && s.message.contains("system:bootstrap:") => Some(
                    "the bootstrap token may only do what `kubeadm init phase bootstrap-token` and `upload-config` allow; re-run them on a control-plane node, or check the token's groups (`kubeadm token list`)".into(),
                ),
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
}

impl ApiError {
    /// True when the server answered 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Request { error: kube::Error::Api(s), .. } if s.is_not_found())
    }

    /// True when the server answered 409 AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, ApiError::Request { error: kube::Error::Api(s), .. } if s.is_already_exists())
    }
}

/// A client error as the operator reads it: the server's answer as `code reason: message`
/// (`403 Forbidden: secrets "x" is forbidden: …`), anything else as its chain of causes, each
/// once.
pub fn describe_error(e: &kube::Error) -> String {
    if let kube::Error::Api(status) = e {
        let reason = if status.reason.is_empty() {
            "Error"
        } else {
            status.reason.as_str()
        };
        return format!("{} {reason}: {}", status.code, status.message);
    }
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
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
            Err(error) => {
                return Err(ApiError::Request {
                    action: action.to_string(),
                    error,
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

/// The `kubelet` key of the cluster's kubelet ConfigMap, whose name depends on the version
/// and gates in `cluster_configuration` (the kubeadm-config text): `kubelet-config`, or
/// `kubelet-config-1.N` before 1.24. The other naming is tried next, for a cluster upgraded
/// across 1.24 whose ConfigMap kept its old name. `None` when neither exists.
pub async fn kubelet_config_text(
    cms: &Api<k8s_openapi::api::core::v1::ConfigMap>,
    cluster_configuration: &str,
) -> Result<Option<String>, ApiError> {
    let cluster = kubeadm_api::decode::decode(
        "ConfigMap kube-system/kubeadm-config",
        cluster_configuration,
    )
    .ok()
    .and_then(|d| d.cluster);
    for name in kubeadm_cluster::config_maps::kubelet_config_names(cluster.as_ref()) {
        let found = retry(&format!("get ConfigMap kube-system/{name}"), 5, || {
            cms.get_opt(&name)
        })
        .await?;
        if let Some(text) = found
            .and_then(|c| c.data)
            .and_then(|mut d| d.remove("kubelet"))
        {
            return Ok(Some(text));
        }
    }
    Ok(None)
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
                // Older API servers (v1.22) validate a Service's create, allocating its fixed
                // clusterIP, before finding the name taken: 422 "provided IP is already
                // allocated" for a Service that exists. Replace it when it does.
                Err(kube::Error::Api(s)) if s.code == 422 => match api.get_opt(&name).await? {
                    Some(current) => {
                        let mut desired = obj.clone();
                        desired.meta_mut().resource_version =
                            current.meta().resource_version.clone();
                        api.replace(&name, &pp, &desired).await
                    }
                    None => Err(kube::Error::Api(s)),
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_read_as_code_reason_message_with_a_hint_for_the_credential() {
        let status: kube::core::Status = serde_json::from_value(serde_json::json!({
            "status": "Failure",
            "code": 403,
            "reason": "Forbidden",
            "message": "nodes \"n\" is forbidden: User \"system:bootstrap:abcdef\" cannot patch resource \"nodes\"",
            "metadata": {}
        }))
        .unwrap();
        let e = ApiError::Request {
            action: "mark node n".into(),
            error: kube::Error::Api(Box::new(status)),
        };
        let text = e.to_string();
        assert_eq!(
            text,
            "mark node n: 403 Forbidden: nodes \"n\" is forbidden: User \"system:bootstrap:abcdef\" cannot patch resource \"nodes\""
        );
        assert!(!text.contains("Status {"), "{text}");
        assert!(
            std::error::Error::source(&e).is_none(),
            "the cause is in the message, once"
        );
        let hint = e.hint().unwrap();
        assert!(
            hint.contains("bootstrap token") && !hint.contains("admin.conf"),
            "{hint}"
        );
    }
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequest, CertificateSigningRequestSpec,
    };
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use kubeadm_cluster::rbac::RbacSet;
    use kubeadm_testapi::TestApiServer;
    use kubeadm_testapi::pki::TestPki;

    fn setup() -> (TestPki, TestApiServer, tokio::runtime::Runtime) {
        let pki = TestPki::generate().unwrap();
        let server = TestApiServer::start(pki.server_config()).unwrap();
        (pki, server, runtime().unwrap())
    }

    async fn admin(pki: &TestPki, url: &str) -> Client {
        let kc = pki
            .kubeconfig(url, "kubernetes-admin", &["system:masters"])
            .unwrap();
        client_from_kubeconfig("admin.conf", &kc).await.unwrap()
    }

    async fn apply_rbac(c: &Client, set: &RbacSet) {
        for r in &set.cluster_roles {
            apply_cluster(c, r).await.unwrap();
        }
        for b in &set.cluster_role_bindings {
            apply_cluster(c, b).await.unwrap();
        }
        for r in &set.roles {
            apply_ns(c, r).await.unwrap();
        }
        for b in &set.role_bindings {
            apply_ns(c, b).await.unwrap();
        }
    }

    #[test]
    fn apply_converges_and_retries_conflicts() {
        let (pki, server, rt) = setup();
        rt.block_on(async {
            let c = admin(&pki, &server.url()).await;
            let cm = kubeadm_cluster::cluster_info::config_map(
                &server.url(),
                pki.ca_cert_pem.as_bytes(),
            )
            .unwrap();
            let first = apply_ns(&c, &cm).await.unwrap();
            let rv = server.state().store.resource_version();
            let again = apply_ns(&c, &cm).await.unwrap();
            assert_eq!(first.metadata.uid, again.metadata.uid);
            // Re-applying the same object changes nothing in the store.
            let after = server.state().store.resource_version();
            assert_eq!(rv, after, "second apply must be a no-op");
            // Conflicts on update are retried.
            let mut changed: ConfigMap = cm.clone();
            changed
                .data
                .as_mut()
                .unwrap()
                .insert("extra".into(), "x".into());
            server.inject_conflicts(3);
            let out = apply_ns(&c, &changed).await.unwrap();
            assert_eq!(out.data.unwrap()["extra"], "x");
            assert_eq!(server.state().conflicts_to_inject, 0);
            let conflicts = server
                .requests()
                .iter()
                .filter(|r| r.status == 409 && r.method == "PUT")
                .count();
            assert_eq!(conflicts, 3);
        });
    }

    #[test]
    fn anonymous_reads_cluster_info_only_and_bootstrap_token_gets_node_cert() {
        let (pki, server, rt) = setup();
        let info = kubeadm_api::version::minor_info(37).unwrap();
        rt.block_on(async {
            let c = admin(&pki, &server.url()).await;
            let cm = kubeadm_cluster::cluster_info::config_map(&server.url(), pki.ca_cert_pem.as_bytes()).unwrap();
            apply_ns(&c, &cm).await.unwrap();
            apply_rbac(&c, &kubeadm_cluster::rbac::bootstrap_token(info)).await;
            apply_rbac(&c, &kubeadm_cluster::rbac::upload_config("kubelet-config")).await;
            let bt = kubeadm_api::v1beta4::BootstrapToken {
                token: kubeadm_api::BootstrapTokenString::parse("abcdef.0123456789abcdef").unwrap(),
                description: String::new(),
                ttl: None,
                expires: None,
                usages: vec!["signing".into(), "authentication".into()],
                groups: vec![kubeadm_cluster::token::DEFAULT_GROUP.into()],
            };
            let secret = kubeadm_cluster::token::secret(&bt, jiff::Timestamp::now()).unwrap();
            apply_ns(&c, &secret).await.unwrap();

            // Anonymous: a kubeconfig with no user.
            let anon_kc = format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {{}}\n",
                server.url(),
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &pki.ca_cert_pem)
            );
            let anon = client_from_kubeconfig("anon", &anon_kc).await.unwrap();
            let public: Api<ConfigMap> = Api::namespaced(anon.clone(), "kube-public");
            let got = public.get("cluster-info").await.unwrap();
            let data = got.data.unwrap();
            let kc = &data["kubeconfig"];
            // The signature the emulated bootstrapsigner wrote verifies with our verifier.
            assert!(kubeadm_cluster::jws::verify(kc, &data["jws-kubeconfig-abcdef"], "abcdef", "0123456789abcdef"));
            let forbidden = |r: Result<_, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
            assert!(forbidden(public.list(&Default::default()).await.map(|_| ())));
            let sys_cm: Api<ConfigMap> = Api::namespaced(anon.clone(), "kube-system");
            assert!(forbidden(sys_cm.get("kubeadm-config").await.map(|_| ())));
            let sys_s: Api<Secret> = Api::namespaced(anon.clone(), "kube-system");
            assert!(forbidden(sys_s.list(&Default::default()).await.map(|_| ())));

            // The bootstrap token can create a node CSR; it is approved and signed.
            let tk = pki.token_kubeconfig(&server.url(), "abcdef.0123456789abcdef");
            let boot = client_from_kubeconfig("bootstrap", &tk).await.unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::default();
            p.distinguished_name.push(rcgen::DnType::CommonName, "system:node:node-1");
            p.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
            let csr_pem = p.serialize_request(&key).unwrap().pem().unwrap();
            let csr = CertificateSigningRequest {
                metadata: kube::api::ObjectMeta { name: Some("node-csr-1".into()), ..Default::default() },
                spec: CertificateSigningRequestSpec {
                    request: k8s_openapi::ByteString(csr_pem.into_bytes()),
                    signer_name: "kubernetes.io/kube-apiserver-client-kubelet".into(),
                    usages: Some(vec!["digital signature".into(), "client auth".into()]),
                    ..Default::default()
                },
                status: None,
            };
            let csrs: Api<CertificateSigningRequest> = Api::all(boot.clone());
            csrs.create(&PostParams::default(), &csr).await.unwrap();
            let got = csrs.get("node-csr-1").await.unwrap();
            assert!(got.status.unwrap().certificate.is_some());
            // It can read kubeadm-config's Role-granted name but not other secrets.
            let boot_s: Api<Secret> = Api::namespaced(boot, "kube-system");
            assert!(forbidden(boot_s.get("bootstrap-token-abcdef").await.map(|_| ())));
        });
    }
}
