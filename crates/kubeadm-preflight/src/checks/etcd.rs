//! Upstream `ExternalEtcdVersionCheck`: every external etcd endpoint answers `GET /version`
//! with a supported version, over TLS with the configured CA and client certificate (read
//! through the effects layer) for `https://` endpoints.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kubeadm_api::v1beta4::ExternalEtcd;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::{Check, Context, Findings, Problem};

/// The oldest external etcd kubeadm supports.
pub const MIN_EXTERNAL_ETCD: (u32, u32, u32) = (3, 4, 13);

const TIMEOUT: Duration = Duration::from_secs(10);

/// Upstream `ExternalEtcdVersionCheck`.
#[derive(Debug, Clone)]
pub struct ExternalEtcdVersion {
    /// The external etcd configuration.
    pub etcd: ExternalEtcd,
}

fn read_file(ctx: &Context<'_>, path: &str, what: &str) -> Result<Vec<u8>, String> {
    match ctx.fx.read(Path::new(path)) {
        Ok(Some(b)) => Ok(b),
        Ok(None) => Err(format!(
            "couldn't load external etcd's {what} {path}: no such file"
        )),
        Err(e) => Err(format!("couldn't load external etcd's {what} {path}: {e}")),
    }
}

/// The TLS client configuration: the CA from `caFile`, the client pair from
/// `certFile`/`keyFile` when both are set.
fn tls_config(ctx: &Context<'_>, etcd: &ExternalEtcd) -> Result<Arc<rustls::ClientConfig>, String> {
    if etcd.ca_file.is_empty() {
        return Err("an https endpoint needs etcd.external.caFile to verify the server".into());
    }
    let ca = read_file(ctx, &etcd.ca_file, "server certificate")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        let cert = cert.map_err(|e| format!("bad PEM in {}: {e:?}", etcd.ca_file))?;
        roots
            .add(cert)
            .map_err(|e| format!("bad CA certificate in {}: {e}", etcd.ca_file))?;
    }
    if roots.is_empty() {
        return Err(format!("no certificate in {}", etcd.ca_file));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let config = if !etcd.cert_file.is_empty() && !etcd.key_file.is_empty() {
        let pair = || {
            format!(
                "couldn't load external etcd's certificate and key pair {}, {}",
                etcd.cert_file, etcd.key_file
            )
        };
        let cert_pem = read_file(ctx, &etcd.cert_file, "client certificate")?;
        let key_pem = read_file(ctx, &etcd.key_file, "client key")?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e:?}", pair()))?;
        let key =
            PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| format!("{}: {e:?}", pair()))?;
        builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| format!("{}: {e}", pair()))?
    } else {
        builder.with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `GET <endpoint>/version`, returning the `etcdserver` field.
fn get_version(ctx: &Context<'_>, etcd: &ExternalEtcd, endpoint: &str) -> Result<String, String> {
    let (tls, rest) = match (
        endpoint.strip_prefix("https://"),
        endpoint.strip_prefix("http://"),
    ) {
        (Some(r), _) => (true, r),
        (None, Some(r)) => (false, r),
        _ => {
            return Err(format!(
                "failed to parse external etcd endpoint {endpoint}: expected http:// or https://"
            ));
        }
    };
    let host_port = rest.split('/').next().unwrap_or(rest);
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {host_port}"))?;
    let host = match host_port.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => host_port,
    };
    let mut tcp = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /version HTTP/1.0\r\nHost: {host_port}\r\n\r\n");
    let mut response = Vec::new();
    if tls {
        let config = tls_config(ctx, etcd)?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("bad server name {host:?}: {e}"))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(request.as_bytes())
            .map_err(|e| format!("TLS: {e}"))?;
        match s.read_to_end(&mut response) {
            Ok(_) => {}
            // A server that closes without close_notify after a complete HTTP/1.0 answer.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && !response.is_empty() => {}
            Err(e) => return Err(format!("TLS: {e}")),
        }
    } else {
        tcp.write_all(request.as_bytes())
            .map_err(|e| e.to_string())?;
        tcp.read_to_end(&mut response).map_err(|e| e.to_string())?;
    }
    let resp = String::from_utf8_lossy(&response);
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!(
            "server responded with {}",
            head.lines().next().unwrap_or("")
        ));
    }
    // {"etcdserver":"3.5.1","etcdcluster":"3.5.0"}
    let key = "\"etcdserver\":\"";
    let start = body
        .find(key)
        .ok_or_else(|| format!("no etcdserver in {body:?}"))?
        + key.len();
    let end = body[start..]
        .find('"')
        .ok_or("malformed version response")?;
    Ok(body[start..start + end].to_string())
}

fn parse_semver(v: &str) -> Option<(u32, u32, u32)> {
    let core = v.trim().trim_start_matches('v').split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

impl Check for ExternalEtcdVersion {
    fn name(&self) -> String {
        "ExternalEtcdVersion".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let mut errors = vec![];
        let (a, b, c) = MIN_EXTERNAL_ETCD;
        for ep in &self.etcd.endpoints {
            let ep = ep.trim_end_matches('/');
            match get_version(ctx, &self.etcd, ep) {
                Ok(v) => match parse_semver(&v) {
                    Some(found) if found < MIN_EXTERNAL_ETCD => errors.push(Problem::new(
                        format!("this version of kubeadm only supports external etcd version >= {a}.{b}.{c}. Current version: {v}"),
                        format!("upgrade the external etcd at {ep}"),
                    )),
                    Some(_) => {}
                    None => errors.push(Problem::new(
                        format!("couldn't parse external etcd version {v:?}"),
                        format!("check that {ep} is an etcd server"),
                    )),
                },
                Err(e) => errors.push(Problem::new(
                    format!("cannot get the version of external etcd {ep}: {e}"),
                    "check etcd.external.endpoints, caFile, certFile and keyFile, and that etcd is reachable",
                )),
            }
        }
        (vec![], errors)
    }
}
