//! kubeadm's one HTTP/1.1 client: health probes (`kubeadm`'s waiter), the external etcd
//! version check (`kubeadm-preflight`) and etcd's JSON gateway (`kubeadm-etcd`) all go through
//! [`Client`]. One request per connection (these are probes and rare calls, not traffic), a
//! timeout over the whole exchange, optional rustls, and a bound on the body read.
//!
//! [`connect`] is the connection half on its own, for callers that speak another protocol over
//! the same TCP-or-TLS stream (the etcd snapshot's gRPC over HTTP/2).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The largest body read unless [`Client::max_body`] says otherwise: every answer we read is a
/// small JSON document or a health word.
pub const DEFAULT_MAX_BODY: usize = 4 << 20;

/// A URL we can connect to: `http://` or `https://`, a host (IPv6 in brackets) and an optional
/// port (80 or 443 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https://`.
    pub https: bool,
    /// The host without brackets: the TLS server name and what is resolved.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Whether the URL named the port (some callers require one).
    pub explicit_port: bool,
    /// The path and query, `/` when the URL has none.
    pub path: String,
}

/// A URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL {url:?}: {detail}")]
pub struct UrlError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub detail: String,
}

impl Url {
    /// Parses `url`; only `http://` and `https://` are accepted.
    pub fn parse(url: &str) -> Result<Url, UrlError> {
        let bad = |detail: &str| UrlError {
            url: url.to_string(),
            detail: detail.to_string(),
        };
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("only http:// and https:// URLs can be checked"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(h) = authority.strip_prefix('[') {
            let (h, after) = h.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("bad port"))?),
            };
            (h.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let (port, explicit_port) = match port {
            Some(p) => (p.parse().map_err(|_| bad("bad port"))?, true),
            None if https => (443, false),
            None => (80, false),
        };
        Ok(Url {
            https,
            host,
            port,
            explicit_port,
            path: path.to_string(),
        })
    }

    /// `host:port`, the host bracketed when it is an IPv6 address: what is dialled and sent as
    /// `Host`.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a TLS client configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsConfigError {
    /// The CA bundle is not PEM, or a certificate in it is unusable.
    #[error("CA bundle: {0}")]
    Ca(String),
    /// The CA bundle holds no certificate.
    #[error("the CA bundle holds no certificate")]
    NoCa,
    /// The client certificate chain is not PEM.
    #[error("client certificate: {0}")]
    Cert(String),
    /// The client key is not PEM.
    #[error("client key: {0}")]
    Key(String),
    /// rustls refused the pair (the key does not match, an unsupported algorithm).
    #[error("client certificate and key: {0}")]
    Pair(String),
    /// The crypto provider offers none of the default protocol versions.
    #[error("TLS versions: {0}")]
    Versions(String),
}

/// Our own provider instance, so that the process-wide default (if any) never matters.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A client configuration trusting the certificates of `ca_pem` and, with `identity`
/// (certificate chain PEM, private key PEM), presenting that client certificate.
pub fn client_config(
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
) -> Result<rustls::ClientConfig, TlsConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| TlsConfigError::Ca(e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| TlsConfigError::Ca(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsConfigError::NoCa);
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Versions(e.to_string()))?
        .with_root_certificates(roots);
    match identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert_pem, key_pem)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<_, _>>()
                .map_err(|e| TlsConfigError::Cert(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|e| TlsConfigError::Key(e.to_string()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| TlsConfigError::Pair(e.to_string()))
        }
    }
}

/// A client configuration that accepts any server certificate and presents none: for the
/// components' health ports, which serve self-signed certificates (upstream checks them the
/// same way).
pub fn insecure_client_config() -> Result<Arc<rustls::ClientConfig>, TlsConfigError> {
    let provider = provider();
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError::Versions(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Accepts any server certificate; signatures are still checked, so the handshake is sound.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What can go wrong with one request. The messages name no URL: callers add the endpoint
/// they were talking to.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be used.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// An `https://` URL, but the client has no TLS configuration.
    #[error("https needs a TLS client configuration (the CA that verifies the server)")]
    NoTls,
    /// The TCP connection failed (`Connection refused`, unresolvable host).
    #[error("{0}")]
    Connect(io::Error),
    /// The host is not a valid TLS server name.
    #[error("bad TLS server name {0:?}")]
    ServerName(String),
    /// The TLS handshake failed (untrusted certificate, no client certificate).
    #[error("TLS handshake: {0}")]
    Tls(io::Error),
    /// The HTTP exchange failed (the peer closed early, not HTTP).
    #[error("HTTP exchange: {0}")]
    Http(String),
    /// Nothing complete came back within the client's timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The body is larger than the client reads.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The blocking entry point could not start its runtime.
    #[error("cannot start the I/O runtime: {0}")]
    Runtime(io::Error),
}

/// A TCP stream, plain or inside TLS.
pub enum Stream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connects to `url`'s host and port, through TLS with `tls` for `https://` (its ALPN is the
/// caller's choice), all within `timeout`.
pub async fn connect(
    url: &Url,
    tls: Option<&Arc<rustls::ClientConfig>>,
    timeout: Duration,
) -> Result<Stream, HttpError> {
    let attempt = async {
        let tcp = TcpStream::connect(url.authority())
            .await
            .map_err(HttpError::Connect)?;
        // Requests are small and answered at once: no point waiting for Nagle.
        let _ = tcp.set_nodelay(true);
        if !url.https {
            return Ok(Stream::Plain(tcp));
        }
        let cfg = tls.ok_or(HttpError::NoTls)?;
        let name = ServerName::try_from(url.host.clone())
            .map_err(|_| HttpError::ServerName(url.host.clone()))?;
        let stream = tokio_rustls::TlsConnector::from(cfg.clone())
            .connect(name, tcp)
            .await
            .map_err(HttpError::Tls)?;
        Ok(Stream::Tls(Box::new(stream)))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}

/// One request: method, URL and, for a POST, its body and content type.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: http::Method,
    /// The full URL.
    pub url: String,
    /// The body's content type, sent when there is a body.
    pub content_type: Option<&'static str>,
    /// The body (empty for a GET).
    pub body: Bytes,
}

impl Request {
    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request {
            method: http::Method::GET,
            url: url.into(),
            content_type: None,
            body: Bytes::new(),
        }
    }

    /// `POST url` with a JSON body.
    pub fn post_json(url: impl Into<String>, body: impl Into<Bytes>) -> Request {
        Request {
            method: http::Method::POST,
            url: url.into(),
            content_type: Some("application/json"),
            body: body.into(),
        }
    }
}

/// The answer: status and the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: http::StatusCode,
    /// The body, at most the client's bound.
    pub body: Bytes,
}

/// The client: its TLS configuration for `https://` URLs, the timeout of a whole exchange and
/// the largest body it reads. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    max_body: usize,
}

impl Client {
    /// A client without TLS (plain `http://` only) whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Client {
        Client {
            tls: None,
            timeout,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The same client using `tls` for `https://` URLs.
    pub fn with_tls(mut self, tls: Arc<rustls::ClientConfig>) -> Client {
        self.tls = Some(tls);
        self
    }

    /// The same client reading at most `bytes` of a body.
    pub fn max_body(mut self, bytes: usize) -> Client {
        self.max_body = bytes;
        self
    }

    /// The timeout of one exchange.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `req` on a connection of its own and reads the whole answer, all within the
    /// client's timeout. Any status is an answer; only transport failures are errors.
    pub async fn send(&self, req: &Request) -> Result<Response, HttpError> {
        let url = Url::parse(&req.url)?;
        let attempt = async {
            let stream = connect(&url, self.tls.as_ref(), self.timeout).await?;
            self.exchange(&url, req, stream).await
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| HttpError::Timeout(self.timeout))?
    }

    async fn exchange(
        &self,
        url: &Url,
        req: &Request,
        stream: Stream,
    ) -> Result<Response, HttpError> {
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(url.path.as_str())
            .header(http::header::HOST, url.authority())
            .header(http::header::USER_AGENT, "kubeadm-rs")
            .header(http::header::ACCEPT, "*/*");
        if let Some(ct) = req.content_type {
            builder = builder.header(http::header::CONTENT_TYPE, ct);
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|e| HttpError::Http(e.to_string()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| HttpError::Http(e.to_string()))?;
        let max = self.max_body;
        let work = async move {
            let resp = sender
                .send_request(request)
                .await
                .map_err(|e| HttpError::Http(e.to_string()))?;
            let status = resp.status();
            let body = Limited::new(resp.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        HttpError::TooLarge(max)
                    } else {
                        HttpError::Http(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(Response { status, body })
        };
        // The connection is driven here, beside the request, rather than on a spawned task:
        // no runtime handle is needed and nothing outlives a timed-out request.
        drive(conn, work).await
    }

    /// [`Client::send`] for synchronous callers, on a current-thread runtime of its own; from
    /// inside a runtime that runtime is never blocked on: the request runs on a thread of its
    /// own.
    pub fn send_blocking(&self, req: &Request) -> Result<Response, HttpError> {
        let run = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(HttpError::Runtime)?
                .block_on(self.send(req))
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return run();
        }
        std::thread::scope(|s| s.spawn(run).join()).unwrap_or_else(|_| {
            Err(HttpError::Runtime(io::Error::other(
                "the request's thread panicked",
            )))
        })
    }
}

/// Polls `work` and the connection `conn` it needs together until `work` is done; a
/// connection failure ends the wait with its error.
async fn drive<C, W, T>(conn: C, work: W) -> Result<T, HttpError>
where
    C: Future<Output = Result<(), hyper::Error>>,
    W: Future<Output = Result<T, HttpError>>,
{
    let mut conn = std::pin::pin!(conn);
    let mut work = std::pin::pin!(work);
    let mut conn_done = false;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(r) = work.as_mut().poll(cx) {
            return Poll::Ready(r);
        }
        if !conn_done && let Poll::Ready(r) = conn.as_mut().poll(cx) {
            conn_done = true;
            if let Err(e) = r {
                return Poll::Ready(Err(HttpError::Http(e.to_string())));
            }
            // Closed cleanly: `work` sees the end of the stream on its next poll.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn urls_parse() {
        let u = Url::parse("https://[::1]:6443/livez").unwrap();
        assert!(u.https && u.explicit_port);
        assert_eq!(
            (u.host.as_str(), u.authority(), u.path.as_str()),
            ("::1", "[::1]:6443".to_string(), "/livez")
        );
        let u = Url::parse("http://127.0.0.1:10248/healthz").unwrap();
        assert!(!u.https);
        assert_eq!(
            (u.authority(), u.path.as_str()),
            ("127.0.0.1:10248".into(), "/healthz")
        );
        let u = Url::parse("https://example.com").unwrap();
        assert_eq!(
            (u.port, u.explicit_port, u.path.as_str()),
            (443, false, "/")
        );
        assert!(Url::parse("ftp://x").is_err());
        assert!(Url::parse("http://:80/").is_err());
        assert!(Url::parse("http://h:port/").is_err());
        assert!(Url::parse("http://[::1/").is_err());
    }

    /// A server answering one connection with `answer` after reading the request head.
    fn serve_once(answer: Vec<u8>) -> (u16, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => req.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let _ = s.write_all(&answer);
            String::from_utf8_lossy(&req).into_owned()
        });
        (port, h)
    }

    #[test]
    fn status_and_body_come_back_and_the_body_is_bounded() {
        let (port, h) =
            serve_once(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno".to_vec());
        let client = Client::new(Duration::from_secs(5));
        let r = client
            .send_blocking(&Request::post_json(
                format!("http://127.0.0.1:{port}/v3/x"),
                "{}",
            ))
            .unwrap();
        assert_eq!((r.status.as_u16(), &r.body[..]), (503, &b"no"[..]));
        let req = h.join().unwrap();
        assert!(req.starts_with("POST /v3/x HTTP/1.1\r\n"), "{req}");
        assert!(
            req.to_ascii_lowercase()
                .contains(&format!("host: 127.0.0.1:{port}")),
            "{req}"
        );

        let (port, _h) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789".to_vec());
        let err = client
            .clone()
            .max_body(4)
            .send_blocking(&Request::get(format!("http://127.0.0.1:{port}/")))
            .unwrap_err();
        assert!(matches!(err, HttpError::TooLarge(4)), "{err}");
    }

    #[test]
    fn refusals_silence_and_missing_tls_are_errors() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(Duration::from_millis(300));
        let err = client
            .send_blocking(&Request::get(format!("http://127.0.0.1:{closed}/")))
            .unwrap_err();
        assert!(matches!(err, HttpError::Connect(_)), "{err}");
        // Accepts and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let err = client
            .send_blocking(&Request::get(format!("http://127.0.0.1:{port}/")))
            .unwrap_err();
        assert_eq!(err.to_string(), "no answer within 300ms");
        let err = client
            .send_blocking(&Request::get(format!("https://127.0.0.1:{port}/")))
            .unwrap_err();
        assert!(matches!(err, HttpError::NoTls), "{err}");
    }

    #[test]
    fn the_blocking_entry_point_works_inside_a_runtime() {
        let (port, _h) = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(async {
            Client::new(Duration::from_secs(5))
                .send_blocking(&Request::get(format!("http://127.0.0.1:{port}/")))
        });
        assert_eq!(&r.unwrap().body[..], b"ok");
    }

    #[test]
    fn tls_configs_are_checked() {
        assert_eq!(client_config(b"", None).unwrap_err(), TlsConfigError::NoCa);
        assert!(insecure_client_config().is_ok());
    }
}
