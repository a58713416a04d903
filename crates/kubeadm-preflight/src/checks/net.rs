//! Network checks: ports free (by binding them), no proxy in the way of the API server and the
//! cluster's networks.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::time::Duration;

use ipnet::IpNet;

use crate::{Check, Context, Findings, Problem};

/// Upstream `PortOpenCheck` (`Port-<n>`): the TCP port can be bound on every address.
#[derive(Debug, Clone, Copy)]
pub struct Port {
    /// The port.
    pub port: u16,
}

impl Port {
    /// A check for `port`.
    pub fn new(port: u16) -> Self {
        Port { port }
    }

    /// Tries to listen on the port (`[::]`, falling back to `0.0.0.0` without IPv6). A port
    /// found busy is tried twice more 100 ms apart, so another program's momentary bind (say, a
    /// concurrent pre-flight run) is not reported; a real listener stays busy.
    fn bindable(&self) -> Result<(), std::io::Error> {
        let mut last = None;
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            let v6 = TcpListener::bind(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                self.port,
            ));
            let r = match v6 {
                Err(e) if e.kind() != ErrorKind::AddrInUse => TcpListener::bind(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    self.port,
                )),
                other => other,
            };
            match r {
                Ok(_listener) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::AddrInUse => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::from(ErrorKind::AddrInUse)))
    }
}

impl Check for Port {
    fn name(&self) -> String {
        format!("Port-{}", self.port)
    }

    fn run(&self, _ctx: &Context<'_>) -> Findings {
        match self.bindable() {
            Ok(()) => (vec![], vec![]),
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                let p = Problem::new(
                    format!("Port {} is in use", self.port),
                    format!(
                        "stop what listens on it (`ss -ltnp 'sport = :{}'` shows it); if it is a previous cluster, run `kubeadm reset`",
                        self.port
                    ),
                );
                (vec![], vec![p])
            }
            Err(e) => (
                vec![],
                vec![Problem::bare(format!(
                    "cannot check port {}: {e}",
                    self.port
                ))],
            ),
        }
    }
}

fn no_proxy_matches(entry: &str, host: &str, ip: Option<IpAddr>) -> bool {
    let entry = entry.trim().to_lowercase();
    if entry.is_empty() {
        return false;
    }
    if entry == "*" {
        return true;
    }
    if let Ok(net) = entry.parse::<IpNet>() {
        return ip.is_some_and(|ip| net.contains(&ip));
    }
    // Strip a port (`host:port`, `[v6]:port`): we ask about the default port.
    let bare = match entry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest).to_string(),
        None if entry.matches(':').count() == 1 => {
            entry.split(':').next().unwrap_or(&entry).to_string()
        }
        None => entry.clone(),
    };
    if let Ok(e_ip) = bare.parse::<IpAddr>() {
        return ip == Some(e_ip);
    }
    let domain = bare.trim_start_matches("*.").trim_start_matches('.');
    let host = host.to_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

/// The proxy Go's `ProxyFromEnvironment` would use for `scheme://host`: `HTTPS_PROXY` (or
/// `HTTP_PROXY` for http) unless `NO_PROXY` covers the host; never for localhost or loopback.
pub fn proxy_for(ctx: &Context<'_>, scheme: &str, host: &str) -> Option<String> {
    let var = if scheme == "https" {
        "HTTPS_PROXY"
    } else {
        "HTTP_PROXY"
    };
    let proxy = ctx.env_any(var)?;
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    if host.eq_ignore_ascii_case("localhost") || ip.is_some_and(|i| i.is_loopback()) {
        return None;
    }
    if let Some(no) = ctx.env_any("NO_PROXY")
        && no.split(',').any(|e| no_proxy_matches(e, host, ip))
    {
        return None;
    }
    Some(if proxy.contains("://") {
        proxy.to_string()
    } else {
        format!("http://{proxy}")
    })
}

/// Upstream `HTTPProxyCheck`: the API server's address is reached directly, not through a proxy.
#[derive(Debug, Clone)]
pub struct HttpProxy {
    /// The host (advertise address, or the join discovery endpoint's host).
    pub host: String,
}

impl Check for HttpProxy {
    fn name(&self) -> String {
        "HTTPProxy".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        let shown = if self.host.contains(':') {
            format!("https://[{}]:1234", self.host)
        } else {
            format!("https://{}", self.host)
        };
        match proxy_for(ctx, "https", &self.host) {
            Some(proxy) => {
                let p = Problem::new(
                    format!(
                        "Connection to {shown:?} uses proxy {proxy:?}. If that is not intended, adjust your proxy settings"
                    ),
                    format!("add {} to NO_PROXY (and no_proxy)", self.host),
                );
                (vec![p], vec![])
            }
            None => (vec![], vec![]),
        }
    }
}

const CIDR_FIX: &str =
    "fix networking.serviceSubnet / networking.podSubnet (--service-cidr / --pod-network-cidr)";

/// Upstream `HTTPProxyCIDRCheck`: the first address of a service or pod subnet is not reached
/// through a proxy.
#[derive(Debug, Clone)]
pub struct HttpProxyCidr {
    /// The subnet (may be empty: nothing to check).
    pub cidr: String,
}

impl Check for HttpProxyCidr {
    fn name(&self) -> String {
        "HTTPProxyCIDR".into()
    }

    fn run(&self, ctx: &Context<'_>) -> Findings {
        if self.cidr.is_empty() {
            return (vec![], vec![]);
        }
        let net = match self.cidr.parse::<IpNet>() {
            Ok(n) => n,
            Err(e) => {
                return (
                    vec![],
                    vec![Problem::new(
                        format!("error parsing CIDR {:?}: {e}", self.cidr),
                        CIDR_FIX,
                    )],
                );
            }
        };
        let Some(ip) = kubeadm_api::net::nth_ip(&net, 1) else {
            return (
                vec![],
                vec![Problem::new(
                    format!("unable to get first IP address from the given CIDR ({net})"),
                    CIDR_FIX,
                )],
            );
        };
        match proxy_for(ctx, "https", &ip.to_string()) {
            Some(proxy) => {
                let p = Problem::new(
                    format!(
                        "connection to {:?} uses proxy {proxy:?}. This may lead to malfunctional cluster setup. Make sure that Pod and Services IP ranges specified correctly as exceptions in proxy configuration",
                        self.cidr
                    ),
                    format!("add {} to NO_PROXY (and no_proxy)", self.cidr),
                );
                (vec![p], vec![])
            }
            None => (vec![], vec![]),
        }
    }
}
