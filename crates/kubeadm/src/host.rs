//! Facts about the host that defaulting needs (hostname, default-route address, CRI sockets).

use std::net::{IpAddr, UdpSocket};
use std::path::Path;

use kubeadm_api::defaults::{HostFacts, KNOWN_CRI_SOCKETS};
use kubeadm_effects::Effects;

/// The local address the kernel would use to reach the outside world, i.e. the address of the
/// default-route interface (upstream's `ChooseHostInterface`). Connecting a UDP socket only asks
/// the routing table; no packet is sent. The targets are documentation addresses (RFC 5737 /
/// RFC 3849) that never route anywhere real.
pub fn default_route_ip() -> Option<IpAddr> {
    for (bind, target) in [
        ("0.0.0.0:0", "203.0.113.1:9"),
        ("[::]:0", "[2001:db8::1]:9"),
    ] {
        if let Ok(sock) = UdpSocket::bind(bind)
            && sock.connect(target).is_ok()
            && let Ok(local) = sock.local_addr()
        {
            let ip = local.ip();
            if !ip.is_unspecified() && !ip.is_loopback() {
                return Some(ip);
            }
        }
    }
    None
}

/// The kernel hostname.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Gathers the facts; CRI sockets are looked up under the effects root so fixtures can hold them.
pub fn facts(fx: &dyn Effects) -> HostFacts {
    let cri_sockets_found = KNOWN_CRI_SOCKETS
        .iter()
        .filter(|s| {
            s.strip_prefix("unix://")
                .is_some_and(|p| fx.exists(Path::new(p)))
        })
        .map(|s| s.to_string())
        .collect();
    HostFacts {
        hostname: hostname(),
        default_ip: default_route_ip(),
        cri_sockets_found,
    }
}

/// Whether this process runs as root (advice to "run as root" is then no advice).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}
