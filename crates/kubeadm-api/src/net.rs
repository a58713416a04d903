//! Network arithmetic over the configured subnets (first service IP, DNS IP, families).

use std::net::IpAddr;

use ipnet::IpNet;

/// The `n`-th address of a subnet (`n = 1` is the first usable one), or `None` when the subnet
/// is too small.
pub fn nth_ip(net: &IpNet, n: u128) -> Option<IpAddr> {
    match net {
        IpNet::V4(v4) => {
            let base = u32::from(v4.network()) as u128;
            let size = 1u128 << (32 - v4.prefix_len());
            (n < size).then(|| IpAddr::V4(std::net::Ipv4Addr::from((base + n) as u32)))
        }
        IpNet::V6(v6) => {
            let base = u128::from(v6.network());
            let bits = 128 - v6.prefix_len() as u32;
            let fits = bits >= 128 || n < (1u128 << bits);
            fits.then(|| IpAddr::V6(std::net::Ipv6Addr::from(base + n)))
        }
    }
}

/// Parses a comma-separated subnet list, ignoring invalid entries (validation reports those).
pub fn parse_subnets(list: &str) -> Vec<IpNet> {
    list.split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// The kube-apiserver Service IP: the first address of the first service subnet (10.96.0.1).
pub fn api_server_service_ip(service_subnet: &str) -> Option<IpAddr> {
    parse_subnets(service_subnet)
        .first()
        .and_then(|n| nth_ip(n, 1))
}

/// The cluster DNS Service IP: the tenth address of the first service subnet (10.96.0.10).
pub fn dns_service_ip(service_subnet: &str) -> Option<IpAddr> {
    parse_subnets(service_subnet)
        .first()
        .and_then(|n| nth_ip(n, 10))
}

/// Formats `host:port`, bracketing IPv6 hosts.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_ips() {
        assert_eq!(
            api_server_service_ip("10.96.0.0/12").unwrap().to_string(),
            "10.96.0.1"
        );
        assert_eq!(
            dns_service_ip("10.96.0.0/12").unwrap().to_string(),
            "10.96.0.10"
        );
        assert_eq!(
            dns_service_ip("fd00:10:96::/108,10.96.0.0/12")
                .unwrap()
                .to_string(),
            "fd00:10:96::a"
        );
        assert_eq!(nth_ip(&"10.0.0.0/30".parse().unwrap(), 10), None);
        assert_eq!(join_host_port("fd00::1", 6443), "[fd00::1]:6443");
    }
}
