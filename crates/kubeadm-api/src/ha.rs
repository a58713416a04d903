//! `HighAvailabilityConfiguration` (`kubeadm-rs.io/v1alpha1`): the built-in control-plane
//! endpoint, a document of our own next to the kubeadm ones. Upstream kubeadm skips documents
//! of kinds it does not know (with a warning), so one file serves both tools.
//!
//! Two modes:
//! - `keepalived+haproxy` (default): keepalived floats a virtual IP between the control-plane
//!   nodes (VRRP), and haproxy on each of them balances TCP over every kube-apiserver, checking
//!   `/readyz`; clients use `virtualIP:port`.
//! - `haproxy-local`: no VIP; every node runs haproxy on `127.0.0.1:port` in front of every
//!   kube-apiserver (for networks where no address can float).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The API version of our own documents.
pub const API_VERSION: &str = "kubeadm-rs.io/v1alpha1";
/// The kind of the HA document.
pub const KIND: &str = "HighAvailabilityConfiguration";
/// `mode` for a floating VIP in front of per-node haproxy.
pub const MODE_KEEPALIVED_HAPROXY: &str = "keepalived+haproxy";
/// `mode` for a load balancer on every node's loopback.
pub const MODE_HAPROXY_LOCAL: &str = "haproxy-local";
/// The load balancer's port by default: not the API server's 6443, which it binds on every
/// address of a control-plane node.
pub const DEFAULT_PORT: u16 = 8443;
/// The VRRP virtual router id by default (as the kubeadm HA guide's example).
pub const DEFAULT_VIRTUAL_ROUTER_ID: u32 = 51;
/// VRRP advertisement interval by default, in milliseconds. VRRPv3 allows centiseconds; three
/// missed adverts (plus skew) make a backup take over: ≈ 1.6 s at 500 ms.
pub const DEFAULT_ADVERT_INTERVAL_MS: u32 = 500;
/// The VRRP version by default: 3, for sub-second adverts (VRRPv2 counts whole seconds, but
/// only it has the PASS authentication `authPassword` sets).
pub const DEFAULT_VRRP_VERSION: u8 = 3;
/// keepalived's image by default.
pub const DEFAULT_KEEPALIVED_IMAGE: &str = "docker.io/osixia/keepalived:2.0.20";
/// haproxy's image by default.
pub const DEFAULT_HAPROXY_IMAGE: &str = "docker.io/library/haproxy:2.8";

/// The HA document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HighAvailabilityConfiguration {
    /// `kubeadm-rs.io/v1alpha1`.
    pub api_version: String,
    /// `HighAvailabilityConfiguration`.
    pub kind: String,
    /// `keepalived+haproxy` (default) or `haproxy-local`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    /// The virtual IP clients use (keepalived+haproxy mode).
    #[serde(
        default,
        rename = "virtualIP",
        skip_serializing_if = "String::is_empty"
    )]
    pub virtual_ip: String,
    /// The network interface the VIP floats on; detected from the advertise address if empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// VRRP virtual router id, 1–255 (default 51); unique per network segment.
    #[serde(
        default,
        rename = "virtualRouterID",
        skip_serializing_if = "Option::is_none"
    )]
    pub virtual_router_id: Option<u32>,
    /// VRRP version, 2 or 3 (default 3: sub-second adverts, no authentication in the protocol).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp_version: Option<u8>,
    /// VRRPv2 PASS authentication password (at most 8 characters); VRRPv3 has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub auth_password: String,
    /// The load balancer's port (default 8443).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// VRRP advertisement interval in milliseconds: 10–25500 in steps of 10 for VRRPv3 (default
    /// 500), whole seconds for VRRPv2 (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advert_interval_ms: Option<u32>,
    /// VRRP adverts go to each peer by unicast (default true); multicast when false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast: Option<bool>,
    /// The control-plane nodes known up front (more are added as they join).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub control_plane_nodes: Vec<ControlPlaneNode>,
    /// keepalived's image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keepalived_image: String,
    /// haproxy's image.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub haproxy_image: String,
}

/// One control-plane node: a VRRP peer and an haproxy backend.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlaneNode {
    /// The node name.
    pub name: String,
    /// Its advertise address.
    pub address: String,
    /// Its kube-apiserver's port (default 6443).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl ControlPlaneNode {
    /// The API server port (6443 when unset).
    pub fn api_port(&self) -> u16 {
        self.port.unwrap_or(6443)
    }
}

impl HighAvailabilityConfiguration {
    /// Fills what was left out with the defaults (the generated password excepted: that needs
    /// randomness and is the caller's).
    pub fn set_defaults(&mut self) {
        self.api_version = API_VERSION.into();
        self.kind = KIND.into();
        if self.mode.is_empty() {
            self.mode = MODE_KEEPALIVED_HAPROXY.into();
        }
        self.virtual_router_id
            .get_or_insert(DEFAULT_VIRTUAL_ROUTER_ID);
        self.port.get_or_insert(DEFAULT_PORT);
        let v2 = *self.vrrp_version.get_or_insert(DEFAULT_VRRP_VERSION) == 2;
        self.advert_interval_ms
            .get_or_insert(if v2 { 1000 } else { DEFAULT_ADVERT_INTERVAL_MS });
        self.unicast.get_or_insert(true);
        if self.keepalived_image.is_empty() {
            self.keepalived_image = DEFAULT_KEEPALIVED_IMAGE.into();
        }
        if self.haproxy_image.is_empty() {
            self.haproxy_image = DEFAULT_HAPROXY_IMAGE.into();
        }
    }

    /// Whether keepalived floats a VIP (else haproxy-local).
    pub fn has_vip(&self) -> bool {
        self.mode != MODE_HAPROXY_LOCAL
    }

    /// The load balancer's port.
    pub fn lb_port(&self) -> u16 {
        self.port.unwrap_or(DEFAULT_PORT)
    }

    /// What `controlPlaneEndpoint` defaults to: `VIP:port`, or `127.0.0.1:port` without a VIP.
    pub fn endpoint(&self) -> String {
        let host = if self.has_vip() {
            match self.virtual_ip.parse::<IpAddr>() {
                Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
                _ => self.virtual_ip.clone(),
            }
        } else {
            "127.0.0.1".to_string()
        };
        format!("{host}:{}", self.lb_port())
    }

    /// Every invalid field, each with its path and what to do (the document's own rules; the
    /// host's — the VIP inside the interface's subnet — are checked where the host is read).
    pub fn validate(&self, api_bind_port: u16) -> Vec<String> {
        let mut errs = Vec::new();
        let field = |name: &str, msg: String| format!("{KIND}.{name}: {msg}");
        if self.mode != MODE_KEEPALIVED_HAPROXY && self.mode != MODE_HAPROXY_LOCAL {
            errs.push(field(
                "mode",
                format!(
                    "Unsupported value: {:?}: supported values: {MODE_KEEPALIVED_HAPROXY:?}, {MODE_HAPROXY_LOCAL:?}",
                    self.mode
                ),
            ));
        }
        let vip = self.virtual_ip.parse::<IpAddr>();
        if self.has_vip() {
            match &vip {
                _ if self.virtual_ip.is_empty() => errs.push(field(
                    "virtualIP",
                    "Required value: the keepalived+haproxy mode floats this address; set it, or use mode: haproxy-local".into(),
                )),
                Err(_) => errs.push(field(
                    "virtualIP",
                    format!("Invalid value: {:?}: must be an IP address", self.virtual_ip),
                )),
                Ok(ip) if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() => {
                    errs.push(field(
                        "virtualIP",
                        format!(
                            "Invalid value: {:?}: must be a unicast address other nodes can reach",
                            self.virtual_ip
                        ),
                    ))
                }
                Ok(_) => {}
            }
        }
        match self.virtual_router_id {
            Some(id) if !(1..=255).contains(&id) => errs.push(field(
                "virtualRouterID",
                format!("Invalid value: {id}: must be between 1 and 255"),
            )),
            _ => {}
        }
        let v2 = match self.vrrp_version {
            None | Some(3) => false,
            Some(2) => true,
            Some(v) => {
                errs.push(field(
                    "vrrpVersion",
                    format!("Unsupported value: {v}: supported values: 2, 3"),
                ));
                false
            }
        };
        match self.advert_interval_ms {
            Some(ms) if v2 && (ms == 0 || !ms.is_multiple_of(1000) || ms > 255_000) => errs.push(field(
                "advertIntervalMs",
                format!(
                    "Invalid value: {ms}: VRRPv2 adverts are whole seconds (1000 to 255000); use vrrpVersion: 3 for less"
                ),
            )),
            Some(ms) if !v2 && (!(10..=25500).contains(&ms) || !ms.is_multiple_of(10)) => errs.push(field(
                "advertIntervalMs",
                format!(
                    "Invalid value: {ms}: must be 10 to 25500 milliseconds in steps of 10 (VRRPv3 centiseconds)"
                ),
            )),
            _ => {}
        }
        if !v2 && !self.auth_password.is_empty() {
            errs.push(field(
                "authPassword",
                "Forbidden: VRRPv3 has no authentication; set vrrpVersion: 2 to use a password"
                    .into(),
            ));
        }
        if self.auth_password.chars().count() > 8 {
            errs.push(field(
                "authPassword",
                "Invalid value: longer than 8 characters (keepalived's PASS authentication uses 8)"
                    .into(),
            ));
        }
        if !self
            .auth_password
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+=@%".contains(c))
        {
            errs.push(field(
                "authPassword",
                "Invalid value: use letters, digits and - _ . + = @ % only".into(),
            ));
        }
        match self.port {
            Some(0) => errs.push(field("port", "Invalid value: 0: must be 1 to 65535".into())),
            Some(p) if p == api_bind_port && self.has_vip() => errs.push(field(
                "port",
                format!(
                    "Invalid value: {p}: the API server binds this port on every control-plane node; pick another (default {DEFAULT_PORT})"
                ),
            )),
            _ => {}
        }
        let mut seen_names = std::collections::BTreeSet::new();
        let mut seen_backends = std::collections::BTreeSet::new();
        for (i, n) in self.control_plane_nodes.iter().enumerate() {
            let at = |f: &str| format!("controlPlaneNodes[{i}].{f}");
            if n.name.is_empty() {
                errs.push(field(&at("name"), "Required value".into()));
            } else if !seen_names.insert(n.name.clone()) {
                errs.push(field(&at("name"), format!("Duplicate value: {:?}", n.name)));
            }
            match n.address.parse::<IpAddr>() {
                Err(_) => errs.push(field(
                    &at("address"),
                    format!("Invalid value: {:?}: must be an IP address", n.address),
                )),
                Ok(ip) => {
                    if !seen_backends.insert((ip, n.api_port())) {
                        errs.push(field(
                            &at("address"),
                            format!(
                                "Duplicate value: {}:{} is already a backend",
                                n.address,
                                n.api_port()
                            ),
                        ));
                    }
                    if vip.as_ref().is_ok_and(|v| *v == ip) && self.has_vip() {
                        errs.push(field(
                            &at("address"),
                            format!(
                                "Invalid value: {:?}: equals virtualIP; the VIP must be an address no node owns",
                                n.address
                            ),
                        ));
                    }
                }
            }
            if n.port == Some(0) {
                errs.push(field(
                    &at("port"),
                    "Invalid value: 0: must be 1 to 65535".into(),
                ));
            }
        }
        errs
    }
}

/// A VRRPv2 password: 8 random letters and digits (PASS authentication's whole length).
pub fn generate_password() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::new();
    while out.len() < 8 {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| format!("cannot read random bytes: {e}"))?;
        // Rejection sampling keeps every character equally likely (248 = 4 × 62).
        out.extend(
            raw.iter()
                .filter(|b| **b < 248)
                .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
                .take(8 - out.len()),
        );
    }
    Ok(out)
}

/// Whether `vip` lies inside the subnet `address/prefix` of an interface (the VIP must be on
/// the link it floats on, or ARP announces it where no one listens).
pub fn in_subnet(vip: IpAddr, address: IpAddr, prefix: u8) -> bool {
    match (vip, address) {
        (IpAddr::V4(v), IpAddr::V4(a)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(v) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(v), IpAddr::V6(a)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(v) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn good() -> HighAvailabilityConfiguration {
        let mut c = HighAvailabilityConfiguration {
            virtual_ip: "10.0.0.100".into(),
            control_plane_nodes: vec![
                ControlPlaneNode {
                    name: "cp-1".into(),
                    address: "10.0.0.11".into(),
                    port: None,
                },
                ControlPlaneNode {
                    name: "cp-2".into(),
                    address: "10.0.0.12".into(),
                    port: None,
                },
            ],
            ..Default::default()
        };
        c.set_defaults();
        c
    }

    #[test]
    fn defaults_and_endpoint() {
        let c = good();
        assert!(c.validate(6443).is_empty(), "{:?}", c.validate(6443));
        assert_eq!(c.endpoint(), "10.0.0.100:8443");
        let mut local = good();
        local.mode = MODE_HAPROXY_LOCAL.into();
        local.virtual_ip.clear();
        assert!(local.validate(6443).is_empty());
        assert_eq!(local.endpoint(), "127.0.0.1:8443");
        let mut v6 = good();
        v6.virtual_ip = "fd00::100".into();
        assert_eq!(v6.endpoint(), "[fd00::100]:8443");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut c = good();
        c.virtual_router_id = Some(256);
        c.control_plane_nodes[1].address = "10.0.0.100".into();
        c.control_plane_nodes.push(c.control_plane_nodes[0].clone());
        c.auth_password = "far-too-long".into();
        c.vrrp_version = Some(2);
        c.port = Some(6443);
        c.advert_interval_ms = Some(1500);
        let errs = c.validate(6443).join("\n");
        for want in [
            "HighAvailabilityConfiguration.virtualRouterID: Invalid value: 256",
            "controlPlaneNodes[1].address: Invalid value: \"10.0.0.100\": equals virtualIP",
            "controlPlaneNodes[2].name: Duplicate value: \"cp-1\"",
            "controlPlaneNodes[2].address: Duplicate value: 10.0.0.11:6443",
            "authPassword: Invalid value: longer than 8",
            "port: Invalid value: 6443",
            "advertIntervalMs: Invalid value: 1500: VRRPv2 adverts are whole seconds",
        ] {
            assert!(errs.contains(want), "{want:?} missing in:\n{errs}");
        }
        let mut c = good();
        c.auth_password = "secret".into();
        c.advert_interval_ms = Some(15);
        let errs = c.validate(6443).join("\n");
        assert!(errs.contains("authPassword: Forbidden: VRRPv3"), "{errs}");
        assert!(
            errs.contains("advertIntervalMs: Invalid value: 15"),
            "{errs}"
        );
        let mut c = good();
        c.virtual_ip = "not-an-ip".into();
        assert!(c.validate(6443)[0].contains("virtualIP: Invalid value: \"not-an-ip\""));
        c.virtual_ip.clear();
        assert!(c.validate(6443)[0].contains("virtualIP: Required value"));
        c.virtual_ip = "127.0.0.5".into();
        assert!(c.validate(6443)[0].contains("must be a unicast address"));
    }

    #[test]
    fn generated_passwords_are_valid() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), 8);
        assert_ne!(a, b);
        let mut c = good();
        c.vrrp_version = Some(2);
        c.advert_interval_ms = Some(1000);
        c.auth_password = a;
        assert!(c.validate(6443).is_empty(), "{:?}", c.validate(6443));
    }

    #[test]
    fn subnets() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_subnet(ip("10.0.0.100"), ip("10.0.0.11"), 24));
        assert!(!in_subnet(ip("10.0.1.100"), ip("10.0.0.11"), 24));
        assert!(in_subnet(ip("10.0.1.100"), ip("10.0.0.11"), 16));
        assert!(in_subnet(ip("1.2.3.4"), ip("10.0.0.11"), 0));
        assert!(in_subnet(ip("fd00::100"), ip("fd00::11"), 64));
        assert!(!in_subnet(ip("fd01::100"), ip("fd00::11"), 64));
        assert!(!in_subnet(ip("fd00::100"), ip("10.0.0.11"), 24));
    }
}
