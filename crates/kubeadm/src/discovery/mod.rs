//! How a joining node finds and authenticates its cluster (upstream `discovery`): token discovery
//! (cluster-info fetched without trust, its JWS checked with the token, the CA pinned, fetched
//! again over verified TLS and compared) or file discovery (a kubeconfig file or HTTPS URL).
//! The result is the cluster's server and CA, from which the TLS-bootstrap kubeconfig is built.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::{Client, Config};
use kubeadm_api::BootstrapTokenString;
use kubeadm_api::v1beta4::{Discovery, FileDiscovery};

use crate::apiclient;
/// The pure checks (cluster-info's shape, its JWS, the CA pins) live in `kubeadm_cluster`, where
/// the fuzz targets reach them.
pub use kubeadm_cluster::discovery as verify;
pub use kubeadm_cluster::discovery::{ClusterInfo, DiscoveryError};
use verify::Pins;

/// Cluster name of the TLS-bootstrap kubeconfig (upstream's default cluster name).
pub const BOOTSTRAP_CLUSTER: &str = "kubernetes";
/// User name of the TLS-bootstrap kubeconfig.
pub const BOOTSTRAP_USER: &str = "tls-bootstrap-token-user";
/// How often cluster-info is asked for again while waiting (upstream waits 5 s; a join should
/// not sit idle that long once the signer has run).
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How an anonymous client checks the server's certificate.
enum Trust<'a> {
    /// Not at all: discovery's first read, whose content the token's JWS authenticates.
    Nothing,
    /// Against this CA bundle (PEM): the pinned cluster CA.
    Ca(&'a str),
    /// Against the system's roots: a discovery kubeconfig served at an https URL.
    SystemRoots,
}

/// An anonymous client for `url` (no credentials: cluster-info is public).
fn anonymous_client(url: &str, trust: Trust) -> Result<Client, String> {
    apiclient::install_crypto_provider();
    let uri: http::Uri = url.parse().map_err(|e| format!("invalid URL {url}: {e}"))?;
    let mut cfg = Config::new(uri);
    match trust {
        Trust::Ca(pem_text) => {
            let ders = pem::parse_many(pem_text.as_bytes())
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|p| p.contents().to_vec())
                .collect();
            cfg.root_cert = Some(ders);
        }
        Trust::Nothing => cfg.accept_invalid_certs = true,
        Trust::SystemRoots => {}
    }
    cfg.connect_timeout = Some(Duration::from_secs(5));
    cfg.read_timeout = Some(Duration::from_secs(10));
    Client::try_from(cfg).map_err(|e| e.to_string())
}

async fn get_cluster_info(client: Client) -> Result<BTreeMap<String, String>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client, "kube-public");
    let cm = api.get("cluster-info").await.map_err(|e| e.to_string())?;
    Ok(cm.data.unwrap_or_default())
}

/// Calls `attempt` every [`POLL_INTERVAL`] (through kubeadm-effects' one wait loop) until it
/// ends the wait (`Break`: its outcome) or `deadline` passes (then the last attempt's error;
/// `none` only if no attempt ran).
async fn retry_until<T, F, Fut>(
    deadline: Instant,
    mut attempt: F,
    none: impl FnOnce() -> DiscoveryError,
) -> Result<T, DiscoveryError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ControlFlow<Result<T, DiscoveryError>, DiscoveryError>>,
{
    let outcome = std::sync::Mutex::new(None);
    let outcome_ref = &outcome;
    kubeadm_effects::poll::poll_until_async(
        deadline.saturating_duration_since(Instant::now()),
        kubeadm_effects::poll::Schedule::every(POLL_INTERVAL),
        move || {
            let next = attempt();
            async move {
                let (done, result) = match next.await {
                    ControlFlow::Break(end) => (true, end),
                    ControlFlow::Continue(again) => {
                        tracing::info!(error = %again, "cluster-info not usable yet; retrying");
                        (false, Err(again))
                    }
                };
                if let Ok(mut o) = outcome_ref.lock() {
                    *o = Some(result);
                }
                done
            }
        },
        tokio::time::sleep,
    )
    .await;
    outcome
        .into_inner()
        .ok()
        .flatten()
        .unwrap_or_else(|| Err(none()))
}

/// Asks for cluster-info until it carries this token's signature (or the deadline passes).
async fn fetch_signed(
    endpoint: &str,
    ca_pem: Option<&str>,
    token: &BootstrapTokenString,
    deadline: Instant,
    started: Instant,
) -> Result<BTreeMap<String, String>, DiscoveryError> {
    let url = format!("https://{endpoint}");
    let unreachable = |detail: String| DiscoveryError::Unreachable {
        endpoint: endpoint.to_string(),
        detail,
        waited: started.elapsed(),
        verified: ca_pem.is_some(),
    };
    let (url, unreachable) = (&url, &unreachable);
    retry_until(
        deadline,
        || async move {
            match anonymous_client(url, ca_pem.map_or(Trust::Nothing, Trust::Ca)) {
                Err(detail) => ControlFlow::Continue(unreachable(detail)),
                Ok(client) => match get_cluster_info(client).await {
                    Ok(data) => match verify::verified_kubeconfig(&data, token) {
                        Ok(_) => ControlFlow::Break(Ok(data)),
                        Err(DiscoveryError::NoSignature { token_id }) => {
                            ControlFlow::Continue(DiscoveryError::NoSignature { token_id })
                        }
                        Err(final_error) => ControlFlow::Break(Err(final_error)),
                    },
                    Err(detail) => ControlFlow::Continue(unreachable(detail)),
                },
            }
        },
        || unreachable("no attempt before the deadline".into()),
    )
    .await
}

/// Token discovery against `endpoint` (`host:port`).
pub async fn token(
    endpoint: &str,
    token_text: &str,
    ca_cert_hashes: &[String],
    unsafe_skip: bool,
    timeout: Duration,
) -> Result<ClusterInfo, DiscoveryError> {
    let token =
        BootstrapTokenString::parse(token_text).map_err(|e| DiscoveryError::BadClusterInfo {
            origin: "discovery token".into(),
            problem: e,
        })?;
    let pins = Pins::parse(ca_cert_hashes)?;
    if pins.is_empty() && !unsafe_skip {
        return Err(DiscoveryError::NoPins);
    }
    let started = Instant::now();
    let deadline = started + timeout;
    println!(
        "[discovery] Requesting info from {endpoint:?} (the first read trusts nothing but the token's signature)"
    );
    let first = fetch_signed(endpoint, None, &token, deadline, started).await?;
    let first_kc = verify::verified_kubeconfig(&first, &token)?.to_string();
    let info = verify::parse_cluster_kubeconfig("cluster-info", &first_kc)?;
    if pins.is_empty() {
        println!(
            "[discovery] Cluster info signature and contents are valid and no TLS pinning was specified, will use API Server {endpoint:?}"
        );
        return Ok(info);
    }
    pins.check(&info.ca_pem)?;
    println!(
        "[discovery] Requesting info from {endpoint:?} again to validate TLS against the pinned public key"
    );
    let second = fetch_signed(endpoint, Some(&info.ca_pem), &token, deadline, started).await?;
    let second_kc = verify::verified_kubeconfig(&second, &token)?;
    if second_kc != first_kc {
        return Err(DiscoveryError::SecondFetchDiffers);
    }
    println!(
        "[discovery] Cluster info signature and contents are valid and TLS certificate validates against pinned roots, will use API Server {endpoint:?}"
    );
    Ok(info)
}

/// File discovery: a kubeconfig path, or an `https://` URL verified by the system's roots. When
/// the cluster publishes cluster-info, its (verified) content is preferred, as upstream does.
pub async fn file(f: &FileDiscovery, timeout: Duration) -> Result<ClusterInfo, DiscoveryError> {
    let path = f.kube_config_path.as_str();
    let err = |detail: String| DiscoveryError::File {
        path: path.to_string(),
        detail,
    };
    let text = if let Some(rest) = path.strip_prefix("https://") {
        let (host, rest_path) = rest.split_once('/').unwrap_or((rest, ""));
        let client =
            anonymous_client(&format!("https://{host}"), Trust::SystemRoots).map_err(err)?;
        let req = http::Request::get(format!("/{rest_path}"))
            .body(Vec::new())
            .map_err(|e| err(e.to_string()))?;
        client
            .request_text(req)
            .await
            .map_err(|e| err(e.to_string()))?
    } else {
        crate::commands::read_input_text(std::path::Path::new(path))
            .map_err(|e| err(e.to_string()))?
    };
    let info = verify::parse_cluster_kubeconfig(path, &text)?;
    println!("[discovery] Using the cluster described in {path}");
    // Refresh from the cluster's own cluster-info over TLS verified with the file's CA.
    let deadline = Instant::now() + timeout;
    let unreachable = |detail: String| DiscoveryError::Unreachable {
        endpoint: info.server.clone(),
        detail,
        waited: timeout,
        verified: true,
    };
    let (info, unreachable) = (&info, &unreachable);
    retry_until(
        deadline,
        || async move {
            let attempt = match anonymous_client(&info.server, Trust::Ca(&info.ca_pem)) {
                Ok(client) => get_cluster_info(client).await,
                Err(e) => Err(e),
            };
            match attempt {
                Ok(data) => ControlFlow::Break(match data.get(verify::KUBECONFIG_KEY) {
                    Some(kc) => verify::parse_cluster_kubeconfig("cluster-info", kc),
                    None => Ok(info.clone()),
                }),
                Err(detail) if detail.contains("NotFound") || detail.contains("Forbidden") => {
                    ControlFlow::Break(Ok(info.clone()))
                }
                Err(detail) => ControlFlow::Continue(unreachable(detail)),
            }
        },
        || unreachable("no attempt before the deadline".into()),
    )
    .await
}

/// Runs the configured discovery method.
pub async fn discover(d: &Discovery, timeout: Duration) -> Result<ClusterInfo, DiscoveryError> {
    if let Some(bt) = &d.bootstrap_token {
        return token(
            &bt.api_server_endpoint,
            &bt.token,
            &bt.ca_cert_hashes,
            bt.unsafe_skip_ca_verification,
            timeout,
        )
        .await;
    }
    if let Some(f) = &d.file {
        return file(f, timeout).await;
    }
    Err(DiscoveryError::NoMethod)
}

/// The kubeconfig the kubelet uses for its TLS bootstrap: the discovered cluster and the token.
pub fn tls_bootstrap_kubeconfig(info: &ClusterInfo, token: &str) -> Result<String, String> {
    use base64::Engine;
    let context = format!("{BOOTSTRAP_USER}@{BOOTSTRAP_CLUSTER}");
    let doc = serde_json::json!({
        "apiVersion": "v1",
        "clusters": [{"cluster": {
            "certificate-authority-data": base64::engine::general_purpose::STANDARD.encode(&info.ca_pem),
            "server": info.server}, "name": BOOTSTRAP_CLUSTER}],
        "contexts": [{"context": {"cluster": BOOTSTRAP_CLUSTER, "user": BOOTSTRAP_USER}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": BOOTSTRAP_USER, "user": {"token": token}}],
    });
    kubeadm_api::encode::to_yaml(&doc).map_err(|e| e.to_string())
}
