//! Subject alternative names: upstream's rules for the API server and etcd certificates.

use std::net::IpAddr;

use kubeadm_api::config::InitConfig;
use kubeadm_api::net;

use crate::PkiError;
use crate::table::{CertSpec, SanRule};

/// DNS names and IP addresses of a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AltNames {
    /// DNS names (sorted and unique once [`AltNames::normalize`]d, as upstream does).
    pub dns: Vec<String>,
    /// IP addresses (unique, in first-seen order).
    pub ips: Vec<IpAddr>,
}

impl AltNames {
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.ips.is_empty()
    }

    /// Adds an entry: an IP when it parses as one, else a DNS name when it is an RFC 1123
    /// subdomain or a wildcard of one. Returns false (and adds nothing) otherwise.
    pub fn push(&mut self, entry: &str) -> bool {
        let entry = entry.trim();
        if let Ok(ip) = entry
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            self.ips.push(ip);
            true
        } else if is_dns_subdomain(entry.strip_prefix("*.").unwrap_or(entry)) {
            self.dns.push(entry.to_string());
            true
        } else {
            false
        }
    }

    /// Upstream's de-duplication: DNS names sorted and unique, IPs unique in order.
    pub fn normalize(&mut self) {
        self.dns.sort();
        self.dns.dedup();
        let mut seen = Vec::new();
        self.ips.retain(|ip| {
            let new = !seen.contains(ip);
            seen.push(*ip);
            new
        });
    }

    /// Every entry as `openssl` prints them: `DNS:x`, `IP Address:y`, DNS first.
    pub fn openssl_strings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.dns.iter().map(|d| format!("DNS:{d}")).collect();
        out.extend(
            self.ips
                .iter()
                .map(|ip| format!("IP Address:{}", openssl_ip(ip))),
        );
        out
    }

    /// Entries of `required` that `self` lacks, as `DNS:x` / `IP:y`.
    pub fn missing_from(&self, required: &AltNames) -> Vec<String> {
        let mut out: Vec<String> = required
            .dns
            .iter()
            .filter(|d| !self.dns.contains(d))
            .map(|d| format!("DNS:{d}"))
            .collect();
        out.extend(
            required
                .ips
                .iter()
                .filter(|ip| !self.ips.contains(ip))
                .map(|ip| format!("IP:{ip}")),
        );
        out
    }
}

/// How `openssl x509 -text` prints an address (IPv6 fully expanded, upper case).
pub fn openssl_ip(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:X}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

/// An RFC 1123 subdomain: dot-separated labels of `[a-z0-9-]`, alphanumeric at both ends,
/// at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The names a certificate of `spec` must carry for this node and cluster.
pub fn for_spec(spec: &CertSpec, cfg: &InitConfig) -> Result<AltNames, PkiError> {
    let mut alt = AltNames::default();
    let node = cfg.node_name().to_string();
    match spec.sans {
        SanRule::None => {}
        SanRule::CommonName => {
            alt.push(spec.common_name(""));
        }
        SanRule::ApiServer => {
            let domain = &cfg.cluster.networking.dns_domain;
            alt.dns = vec![
                node,
                "kubernetes".into(),
                "kubernetes.default".into(),
                "kubernetes.default.svc".into(),
                format!("kubernetes.default.svc.{domain}"),
            ];
            let svc = net::api_server_service_ip(&cfg.cluster.networking.service_subnet)
                .ok_or_else(|| PkiError::Config {
                    field: "ClusterConfiguration.networking.serviceSubnet".into(),
                    problem: format!(
                        "{:?} has no first address for the kubernetes Service",
                        cfg.cluster.networking.service_subnet
                    ),
                })?;
            alt.ips.push(svc);
            alt.ips.push(advertise(cfg)?);
            let endpoint = &cfg.cluster.control_plane_endpoint;
            if !endpoint.is_empty() {
                let host = match kubeadm_api::validate::host_port(endpoint) {
                    Ok((h, _)) => h,
                    Err(_) => endpoint.clone(),
                };
                if !alt.push(&host) {
                    return Err(PkiError::Config {
                        field: "ClusterConfiguration.controlPlaneEndpoint".into(),
                        problem: format!(
                            "{endpoint:?} is neither an IP address nor a valid DNS name"
                        ),
                    });
                }
            }
            for s in &cfg.cluster.api_server.cert_sans {
                alt.push(s);
            }
        }
        SanRule::EtcdServer | SanRule::EtcdPeer => {
            alt.dns = vec![node, "localhost".into()];
            alt.ips = vec![
                advertise(cfg)?,
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
            ];
            if let Some(local) = cfg.local_etcd() {
                let extra = if spec.sans == SanRule::EtcdServer {
                    &local.server_cert_sans
                } else {
                    &local.peer_cert_sans
                };
                for s in extra {
                    alt.push(s);
                }
            }
        }
    }
    alt.normalize();
    Ok(alt)
}

fn advertise(cfg: &InitConfig) -> Result<IpAddr, PkiError> {
    cfg.advertise_ip().ok_or_else(|| PkiError::Config {
        field: "InitConfiguration.localAPIEndpoint.advertiseAddress".into(),
        problem: format!(
            "{:?} is not an IP address",
            cfg.init.local_api_endpoint.advertise_address
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_like_upstream() {
        let mut a = AltNames::default();
        for e in [
            "node1",
            "kubernetes",
            "10.96.0.1",
            "192.168.0.10",
            "10.96.0.1",
            "kubernetes",
            "*.example.com",
            "Bad_Name",
            "fd00::1",
        ] {
            a.push(e);
        }
        a.normalize();
        assert_eq!(a.dns, vec!["*.example.com", "kubernetes", "node1"]);
        assert_eq!(
            a.ips.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            vec!["10.96.0.1", "192.168.0.10", "fd00::1"]
        );
        assert_eq!(
            openssl_ip(&"fd00::1".parse().unwrap()),
            "FD00:0:0:0:0:0:0:1"
        );
    }
}
