//! Stand-in health endpoints for the components kubeadm waits for but the tests do not run: the
//! kubelet's `http://127.0.0.1:<port>/healthz`, and the controller-manager's and scheduler's
//! `https://127.0.0.1:<port>/healthz|livez` (any certificate: kubeadm does not verify them).
//! Each answers every GET with `200 ok` while healthy and `503` otherwise, switchable at run
//! time, and counts the requests it served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// A running health endpoint on `127.0.0.1:<free port>`; stopped when dropped.
pub struct HealthServer {
    addr: SocketAddr,
    tls: bool,
    healthy: Arc<AtomicBool>,
    hits: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for HealthServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthServer")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish()
    }
}

fn answer<S: Read + Write>(stream: &mut S, healthy: bool) {
    // Read the request head (health checks send no body).
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if got.len() > 64 * 1024 {
            return;
        }
    }
    let (status, body) = if healthy {
        ("200 OK", "ok")
    } else {
        ("503 Service Unavailable", "not healthy")
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn tls_config(cert_pem: &str, key_pem: &str) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Pem {
            what: "health endpoint certificate",
            detail: e.to_string(),
        })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| Error::Pem {
        what: "health endpoint key",
        detail: e.to_string(),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

fn serve(
    tcp: TcpStream,
    tls: Option<&Arc<rustls::ServerConfig>>,
    healthy: bool,
) -> Result<(), std::io::Error> {
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(2)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(2)))?;
    match tls {
        None => {
            let mut tcp = tcp;
            answer(&mut tcp, healthy);
        }
        Some(cfg) => {
            let conn = rustls::ServerConnection::new(cfg.clone()).map_err(std::io::Error::other)?;
            let mut stream = rustls::StreamOwned::new(conn, tcp);
            answer(&mut stream, healthy);
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    }
    Ok(())
}

impl HealthServer {
    /// A plain-HTTP endpoint (the kubelet's healthz).
    pub fn http(healthy: bool) -> Result<Self, Error> {
        Self::start("127.0.0.1:0", None, healthy)
    }

    /// An HTTPS endpoint serving `cert_pem`/`key_pem` (a controller-manager or scheduler).
    pub fn https(cert_pem: &str, key_pem: &str, healthy: bool) -> Result<Self, Error> {
        Self::start("127.0.0.1:0", Some(tls_config(cert_pem, key_pem)?), healthy)
    }

    /// An HTTPS endpoint on `bind` (`127.0.0.2:6443`): the health endpoints of a component
    /// at the address and port its manifest names (a joined node's kube-apiserver).
    pub fn https_on(
        bind: &str,
        cert_pem: &str,
        key_pem: &str,
        healthy: bool,
    ) -> Result<Self, Error> {
        Self::start(bind, Some(tls_config(cert_pem, key_pem)?), healthy)
    }

    fn start(
        bind: &str,
        tls: Option<Arc<rustls::ServerConfig>>,
        healthy: bool,
    ) -> Result<Self, Error> {
        let listener = TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let healthy = Arc::new(AtomicBool::new(healthy));
        let hits = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let is_tls = tls.is_some();
        let (h, n, s) = (healthy.clone(), hits.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("health-{}", addr.port()))
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((tcp, _)) => {
                            n.fetch_add(1, Ordering::SeqCst);
                            let _ = serve(tcp, tls.as_ref(), h.load(Ordering::SeqCst));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })?;
        Ok(HealthServer {
            addr,
            tls: is_tls,
            healthy,
            hits,
            stop,
            thread: Some(thread),
        })
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http(s)://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Makes the endpoint answer `200 ok` (`true`) or `503` (`false`) from now on.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// How many connections it has served.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
