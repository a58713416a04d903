//! Upstream `ExternalEtcdVersionCheck`: every external etcd endpoint answers `GET /version`
//! with a supported version, over TLS with the configured CA and client certificate (read
//! through the effects layer) for `https://` endpoints.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kubeadm_api::v1beta4::ExternalEtcd;

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
    let pair = if !etcd.cert_file.is_empty() && !etcd.key_file.is_empty() {
        let cert_pem = read_file(ctx, &etcd.cert_file, "client certificate")?;
        let key_pem = read_file(ctx, &etcd.key_file, "client key")?;
        Some((cert_pem, key_pem))
    } else {
        None
    };
    let identity = pair.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice()));
    kubeadm_http::client_config(&ca, identity)
        .map(Arc::new)
        .map_err(|e| match e {
            kubeadm_http::TlsConfigError::Ca(_) | kubeadm_http::TlsConfigError::NoCa => {
                format!("{}: {e}", etcd.ca_file)
            }
            _ => format!(
                "couldn't load external etcd's certificate and key pair {}, {}: {e}",
                etcd.cert_file, etcd.key_file
            ),
        })
}

/// `GET <endpoint>/version`, returning the `etcdserver` field.
fn get_version(ctx: &Context<'_>, etcd: &ExternalEtcd, endpoint: &str) -> Result<String, String> {
    let url = format!("{endpoint}/version");
    let parsed = kubeadm_http::Url::parse(&url).map_err(|e| {
        format!(
            "failed to parse external etcd endpoint {endpoint}: {}",
            e.detail
        )
    })?;
    let mut client = kubeadm_http::Client::new(TIMEOUT).max_body(64 << 10);
    if parsed.https {
        client = client.with_tls(tls_config(ctx, etcd)?);
    }
    let answer = client
        .send_blocking(&kubeadm_http::Request::get(url))
        .map_err(|e| e.to_string())?;
    if answer.status != http::StatusCode::OK {
        return Err(format!("server responded with HTTP {}", answer.status));
    }
    // {"etcdserver":"3.5.1","etcdcluster":"3.5.0"}
    let version: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("malformed version response: {e}"))?;
    version["etcdserver"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "no etcdserver in {:?}",
                String::from_utf8_lossy(&answer.body)
            )
        })
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
