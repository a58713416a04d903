//! A test-only, in-process Kubernetes API server for kubeadm-rs's tests.
//!
//! It serves HTTPS on `127.0.0.1:<free port>` with a given serving certificate, authenticates
//! like kube-apiserver (client certificates: CN → user, O → groups; bootstrap tokens checked
//! against the stored `bootstrap-token-<id>` Secrets; anonymous otherwise), authorizes by
//! evaluating the RBAC objects it stores (seeded with the bootstrap ClusterRoles kubeadm binds
//! to), keeps objects with resourceVersions, and emulates the controllers `kubeadm init` relies
//! on: the tokencleaner, the bootstrapsigner and kubelet client CSR approval and signing.
//!
//! It is strict on purpose: bodies must name the kind, version, namespace and name of the URL,
//! stale resourceVersions conflict, unknown subresources and patch directives are refused.

pub mod auth;
pub mod controllers;
pub mod health;
pub mod patch;
pub mod pki;
pub mod realbins;
pub mod rest;
pub mod store;
pub mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response as HttpResponse};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

pub use auth::UserInfo;
pub use controllers::SigningCa;
pub use rest::{RequestRecord, State};
pub use store::{ResourceType, find};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A PEM input could not be used.
    #[error("test API server: bad {what}: {detail}")]
    Pem {
        /// Which input.
        what: &'static str,
        /// Parser message.
        detail: String,
    },
    /// TLS configuration failed.
    #[error("test API server: TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// Binding or starting failed.
    #[error("test API server: {0}")]
    Io(#[from] std::io::Error),
    /// Certificate generation failed (pki helpers).
    #[error("test PKI: {0}")]
    Pki(#[from] rcgen::Error),
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct TestApiConfig {
    /// Serving certificate chain PEM.
    pub serving_cert_pem: String,
    /// Serving private key PEM.
    pub serving_key_pem: String,
    /// CA bundle PEM that client certificates must chain to.
    pub client_ca_pem: String,
    /// The cluster CA the emulated CSR signer signs with (none: CSRs are approved, not signed).
    pub signing_ca: Option<SigningCa>,
    /// `gitVersion` on `/version`.
    pub git_version: String,
}

impl TestApiConfig {
    /// Serves with the API server certificate of a kubeadm PKI directory (`<root>/etc/kubernetes/pki`
    /// as `kubeadm init phase certs` writes it), trusts and signs with its CA.
    pub fn from_pki_dir(dir: &std::path::Path, git_version: &str) -> Result<Self, std::io::Error> {
        let read = |f: &str| std::fs::read_to_string(dir.join(f));
        Ok(TestApiConfig {
            serving_cert_pem: read("apiserver.crt")?,
            serving_key_pem: read("apiserver.key")?,
            client_ca_pem: read("ca.crt")?,
            signing_ca: Some(SigningCa {
                cert_pem: read("ca.crt")?,
                key_pem: read("ca.key")?,
            }),
            git_version: git_version.to_string(),
        })
    }
}

/// A running test API server; stopped when dropped.
pub struct TestApiServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApiServer")
            .field("addr", &self.addr)
            .finish()
    }
}

fn tls_config(cfg: &TestApiConfig) -> Result<rustls::ServerConfig, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cfg.serving_cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Pem {
                what: "serving certificate",
                detail: e.to_string(),
            })?;
    let key =
        PrivateKeyDer::from_pem_slice(cfg.serving_key_pem.as_bytes()).map_err(|e| Error::Pem {
            what: "serving key",
            detail: e.to_string(),
        })?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cfg.client_ca_pem.as_bytes()) {
        let c = c.map_err(|e| Error::Pem {
            what: "client CA",
            detail: e.to_string(),
        })?;
        roots.add(c)?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| Error::Pem {
        what: "client CA",
        detail: e.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

type Body = Full<Bytes>;

fn respond(code: u16, body: &Value) -> HttpResponse<Body> {
    let (ct, bytes) = match body {
        Value::String(s) => ("text/plain; charset=utf-8", s.clone().into_bytes()),
        v => (
            "application/json",
            serde_json::to_vec(v).unwrap_or_default(),
        ),
    };
    let mut r = HttpResponse::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(ct) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn serve(
    state: Arc<Mutex<State>>,
    client_cert: Option<Vec<u8>>,
    req: Request<Incoming>,
) -> Result<HttpResponse<Body>, std::convert::Infallible> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let header = |name: hyper::header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(hyper::header::CONTENT_TYPE).unwrap_or_default();
    let authz = header(hyper::header::AUTHORIZATION);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let s = rest::status(400, "BadRequest", &format!("cannot read body: {e}"), None);
            return Ok(respond(s.code, &s.body));
        }
    };
    let mut st = lock(&state);
    let user = if let Some(u) = client_cert.as_deref().and_then(auth::user_from_cert) {
        Some(u)
    } else if let Some(h) = authz {
        match h.strip_prefix("Bearer ") {
            Some(tok) => auth::user_from_bootstrap_token(&st.store, tok.trim()),
            None => None,
        }
    } else {
        Some(UserInfo::anonymous())
    };
    let Some(user) = user else {
        st.log.push(RequestRecord {
            user: String::new(),
            method,
            path,
            status: 401,
        });
        let s = rest::status(401, "Unauthorized", "Unauthorized", None);
        return Ok(respond(s.code, &s.body));
    };
    let r = rest::handle(&mut st, &user, &method, &path, &query, &content_type, &body);
    if method != "GET" {
        rest::reconcile(&mut st);
    }
    Ok(respond(r.code, &r.body))
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking test thread must not wedge the server: take the state anyway.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl TestApiServer {
    /// Starts the server on `127.0.0.1:0` in its own thread and runtime.
    pub fn start(cfg: TestApiConfig) -> Result<Self, Error> {
        Self::start_on(&cfg, "127.0.0.1:0")
    }

    /// Like [`TestApiServer::start`], listening on `bind` (`127.0.0.1:6443`): where a cluster's
    /// configuration says its API server is, before anything else is there.
    pub fn start_on(cfg: &TestApiConfig, bind: &str) -> Result<Self, Error> {
        let mut st = State {
            ca: cfg.signing_ca.clone(),
            git_version: cfg.git_version.clone(),
            ..State::default()
        };
        rest::seed(&mut st);
        Self::serve_state(cfg, Arc::new(Mutex::new(st)), bind)
    }

    fn serve_state(
        cfg: &TestApiConfig,
        state: Arc<Mutex<State>>,
        bind: &str,
    ) -> Result<Self, Error> {
        let tls = Arc::new(tls_config(cfg)?);
        let std_listener = std::net::TcpListener::bind(bind)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let st2 = state.clone();
        let thread = std::thread::Builder::new()
            .name(format!("test-apiserver-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                        return;
                    };
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    loop {
                        tokio::select! {
                            _ = &mut rx => break,
                            _ = tick.tick() => rest::reconcile(&mut lock(&st2)),
                            acc = listener.accept() => {
                                let Ok((tcp, _)) = acc else { continue };
                                // As Go's servers do: no Nagle delay on small responses.
                                let _ = tcp.set_nodelay(true);
                                let acceptor = acceptor.clone();
                                let st = st2.clone();
                                tokio::spawn(async move {
                                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                                    let cert = tls.get_ref().1.peer_certificates()
                                        .and_then(|c| c.first()).map(|c| c.to_vec());
                                    let svc = hyper::service::service_fn(move |req| {
                                        serve(st.clone(), cert.clone(), req)
                                    });
                                    let _ = hyper::server::conn::http1::Builder::new()
                                        .serve_connection(TokioIo::new(tls), svc)
                                        .await;
                                });
                            }
                        }
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(TestApiServer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Direct access to the state (bypasses authentication; for assertions and setup).
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// One stored object, by group, plural resource, namespace ("" if cluster-scoped) and name.
    pub fn get(&self, group: &str, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let rt = store::find_resource(group, resource)?;
        self.state().store.get(rt, ns, name).cloned()
    }

    /// Every stored object of a kind (all namespaces).
    pub fn list(&self, group: &str, resource: &str) -> Vec<Value> {
        match store::find_resource(group, resource) {
            Some(rt) => self.state().store.list(rt, None),
            None => Vec::new(),
        }
    }

    /// Makes `/readyz`, `/livez` and `/healthz` answer 503 (`false`) or `ok` (`true`), as an API
    /// server that is still starting would.
    pub fn set_ready(&self, ready: bool) {
        self.state().not_ready = !ready;
    }

    /// Stores a bare Node, as a kubelet registers it (for tests whose kubelet is not played);
    /// the store's refusal (e.g. it exists) as text.
    pub fn register_node(&self, name: &str) -> Result<(), String> {
        let rt = find("", "v1", "nodes").ok_or("the nodes resource is not served")?;
        let node =
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}});
        self.state()
            .store
            .create(rt, "", name, node)
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }

    /// Makes the next `n` updates (PUT, and patches) fail with 409 Conflict.
    pub fn inject_conflicts(&self, n: u32) {
        self.state().conflicts_to_inject = n;
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().log.clone()
    }

    /// Runs the emulated controllers now.
    pub fn reconcile(&self) {
        rest::reconcile(&mut self.state());
    }

    /// Evaluates RBAC for a user as the server would.
    pub fn can(&self, user: &UserInfo, attrs: &auth::Attributes) -> bool {
        auth::authorize(&self.state().store, user, attrs)
    }
}

impl Drop for TestApiServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
