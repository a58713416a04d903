//! Validation with field paths, as upstream's `ValidateInitConfiguration` & co. report them:
//! `networking.serviceSubnet: Invalid value: "10.96.0.0/33": couldn't parse subnet`.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::token::{BootstrapTokenString, validate_certificate_key};
use crate::v1beta4::*;

/// One invalid field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path from the document root, e.g. `ClusterConfiguration.networking.podSubnet`.
    pub path: String,
    /// The offending value as written (secrets redacted).
    pub value: String,
    /// What is wrong and what is expected.
    pub detail: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: Invalid value: {:?}: {}",
            self.path, self.value, self.detail
        )
    }
}

/// Every invalid field of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl FieldErrors {
    fn add(
        &mut self,
        path: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(FieldError {
            path: path.into(),
            value: value.into(),
            detail: detail.into(),
        });
    }

    /// True when nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing is wrong.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// kubeadm feature gates known to the supported versions.
pub const KNOWN_FEATURE_GATES: &[&str] = &[
    "PublicKeysECDSA",
    "RootlessControlPlane",
    "EtcdLearnerMode",
    "UpgradeAddonsBeforeControlPlane",
    "WaitForAllControlPlaneComponents",
    "ControlPlaneKubeletLocalMode",
    "NodeLocalCRISocket",
    "UnversionedKubeletConfigMap",
];

/// Key algorithms of v1beta4 `encryptionAlgorithm`.
pub const ENCRYPTION_ALGORITHMS: &[&str] = &[
    "RSA-2048",
    "RSA-3072",
    "RSA-4096",
    "ECDSA-P256",
    "ECDSA-P384",
];

/// RFC 1123 subdomain: lowercase alphanumerics, `-` and `.`, each label starting and ending
/// alphanumeric, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    const HINT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')";
    if s.is_empty() || s.len() > 253 {
        return Err(HINT.into());
    }
    for label in s.split('.') {
        let b = label.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !ok {
            return Err(HINT.into());
        }
    }
    Ok(())
}

/// A certificate SAN: an IP, an RFC 1123 subdomain, or a `*.` wildcard of one.
pub fn san(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    dns1123_subdomain(name).map_err(|_| {
        "must be an IP address, a valid RFC 1123 DNS name or a wildcard such as *.example.com"
            .to_string()
    })
}

/// Parses a comma-separated CIDR list (at most two, one per IP family).
pub fn cidrs(s: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let net: IpNet = part
            .parse()
            .map_err(|_| format!("couldn't parse subnet {part:?}: expected CIDR notation such as 10.96.0.0/12 or fd00::/108"))?;
        if net.network() != net.addr() {
            return Err(format!(
                "{part:?} is not a network address: the host bits must be zero (did you mean {}?)",
                net.trunc()
            ));
        }
        out.push(net);
    }
    match out.as_slice() {
        [_] => {}
        [a, b] if is_v4(a) != is_v4(b) => {}
        [_, _] => return Err("a dual-stack list must hold one IPv4 and one IPv6 subnet".into()),
        _ => return Err("expected at most two subnets (one IPv4, one IPv6)".into()),
    }
    Ok(out)
}

fn is_v4(n: &IpNet) -> bool {
    matches!(n, IpNet::V4(_))
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Splits `host[:port]` (IPv6 in brackets) as upstream's `ParseHostPort`.
pub fn host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or("missing ']' after the IPv6 address")?;
        match after {
            "" => (h.to_string(), None),
            p if p.starts_with(':') => (h.to_string(), Some(&p[1..])),
            _ => return Err("unexpected text after ']'".into()),
        }
    } else if s.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        (s.to_string(), None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("port {p:?} must be a number from 1 to 65535")),
        },
    };
    if host.parse::<IpAddr>().is_err() {
        dns1123_subdomain(&host).map_err(|_| {
            format!("host {host:?} must be an IP address or a valid RFC 1123 DNS name")
        })?;
    }
    Ok((host, port))
}

fn port(errs: &mut FieldErrors, path: &str, p: i32) {
    if !(1..=65535).contains(&p) {
        errs.add(path, p.to_string(), "port must be in the range 1 to 65535");
    }
}

fn absolute(errs: &mut FieldErrors, path: &str, p: &str) {
    if !p.starts_with('/') {
        errs.add(path, p, "path is not absolute");
    }
}

fn args(errs: &mut FieldErrors, path: &str, list: &[Arg]) {
    for (i, a) in list.iter().enumerate() {
        if a.name.is_empty() || a.name.starts_with('-') {
            errs.add(
                format!("{path}[{i}].name"),
                &a.name,
                "flag name must be non-empty and without leading dashes",
            );
        }
    }
}

fn volumes(errs: &mut FieldErrors, path: &str, list: &[HostPathMount]) {
    const TYPES: &[&str] = &[
        "",
        "DirectoryOrCreate",
        "Directory",
        "FileOrCreate",
        "File",
        "Socket",
        "CharDevice",
        "BlockDevice",
    ];
    for (i, v) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if dns1123_label(&v.name).is_err() {
            errs.add(
                format!("{p}.name"),
                &v.name,
                "volume name must be a lowercase RFC 1123 label",
            );
        }
        absolute(errs, &format!("{p}.hostPath"), &v.host_path);
        absolute(errs, &format!("{p}.mountPath"), &v.mount_path);
        if !TYPES.contains(&v.path_type.as_str()) {
            errs.add(
                format!("{p}.pathType"),
                &v.path_type,
                format!("must be one of {:?}", &TYPES[1..]),
            );
        }
    }
}

fn envs(errs: &mut FieldErrors, path: &str, list: &[EnvVar]) {
    for (i, e) in list.iter().enumerate() {
        if e.name.is_empty() || e.name.contains('=') {
            errs.add(
                format!("{path}[{i}].name"),
                &e.name,
                "environment variable name must be non-empty and without '='",
            );
        }
    }
}

/// RFC 1123 label (one DNS label, ≤ 63 characters).
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.contains('.') || s.len() > 63 {
        return Err("must be a single DNS label".into());
    }
    dns1123_subdomain(s)
}

fn component(errs: &mut FieldErrors, path: &str, c: &ControlPlaneComponent) {
    args(errs, &format!("{path}.extraArgs"), &c.extra_args);
    volumes(errs, &format!("{path}.extraVolumes"), &c.extra_volumes);
    envs(errs, &format!("{path}.extraEnvs"), &c.extra_envs);
}

fn duration_positive(errs: &mut FieldErrors, path: &str, d: Option<crate::duration::Duration>) {
    if let Some(d) = d
        && d.as_nanos() <= 0
    {
        errs.add(path, d.to_string(), "must be greater than zero");
    }
}

fn timeouts(errs: &mut FieldErrors, path: &str, t: &Option<Timeouts>) {
    if let Some(t) = t {
        duration_positive(
            errs,
            &format!("{path}.controlPlaneComponentHealthCheck"),
            t.control_plane_component_health_check,
        );
        duration_positive(
            errs,
            &format!("{path}.kubeletHealthCheck"),
            t.kubelet_health_check,
        );
        duration_positive(
            errs,
            &format!("{path}.kubernetesAPICall"),
            t.kubernetes_api_call,
        );
        duration_positive(errs, &format!("{path}.etcdAPICall"), t.etcd_api_call);
        duration_positive(errs, &format!("{path}.tlsBootstrap"), t.tls_bootstrap);
        duration_positive(errs, &format!("{path}.discovery"), t.discovery);
        duration_positive(
            errs,
            &format!("{path}.upgradeManifests"),
            t.upgrade_manifests,
        );
    }
}

/// Validates a ClusterConfiguration (after defaulting).
pub fn cluster(c: &ClusterConfiguration) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let k = "ClusterConfiguration";
    if let Err(e) = crate::version::resolve(&c.kubernetes_version) {
        errs.add(format!("{k}.kubernetesVersion"), &c.kubernetes_version, e);
    }
    let services = match cidrs(&c.networking.service_subnet) {
        Ok(nets) => {
            for n in &nets {
                let host_bits = n.max_prefix_len() - n.prefix_len();
                if host_bits > 20 && is_v4(n) || !is_v4(n) && n.prefix_len() < 108 {
                    errs.add(
                        format!("{k}.networking.serviceSubnet"),
                        &c.networking.service_subnet,
                        format!("the service subnet {n} is too large: at most 20 host bits (IPv4 /12, IPv6 /108) are allowed"),
                    );
                }
            }
            nets
        }
        Err(e) => {
            errs.add(
                format!("{k}.networking.serviceSubnet"),
                &c.networking.service_subnet,
                e,
            );
            Vec::new()
        }
    };
    if !c.networking.pod_subnet.is_empty() {
        match cidrs(&c.networking.pod_subnet) {
            Ok(pods) => {
                for p in &pods {
                    if let Some(s) = services.iter().find(|s| overlaps(s, p)) {
                        errs.add(
                            format!("{k}.networking.podSubnet"),
                            &c.networking.pod_subnet,
                            format!("the pod subnet {p} overlaps the service subnet {s}; choose disjoint ranges"),
                        );
                    }
                }
            }
            Err(e) => errs.add(
                format!("{k}.networking.podSubnet"),
                &c.networking.pod_subnet,
                e,
            ),
        }
    }
    if let Err(e) = dns1123_subdomain(&c.networking.dns_domain) {
        errs.add(
            format!("{k}.networking.dnsDomain"),
            &c.networking.dns_domain,
            e,
        );
    }
    absolute(
        &mut errs,
        &format!("{k}.certificatesDir"),
        &c.certificates_dir,
    );
    if !c.control_plane_endpoint.is_empty()
        && let Err(e) = host_port(&c.control_plane_endpoint)
    {
        errs.add(
            format!("{k}.controlPlaneEndpoint"),
            &c.control_plane_endpoint,
            e,
        );
    }
    for (i, s) in c.api_server.cert_sans.iter().enumerate() {
        if let Err(e) = san(s) {
            errs.add(format!("{k}.apiServer.certSANs[{i}]"), s, e);
        }
    }
    component(
        &mut errs,
        &format!("{k}.apiServer"),
        &c.api_server.component(),
    );
    component(
        &mut errs,
        &format!("{k}.controllerManager"),
        &c.controller_manager,
    );
    component(&mut errs, &format!("{k}.scheduler"), &c.scheduler);
    match (&c.etcd.local, &c.etcd.external) {
        (Some(_), Some(_)) => errs.add(
            format!("{k}.etcd"),
            "local and external",
            "etcd.local and etcd.external are mutually exclusive; set only one",
        ),
        (Some(l), None) => {
            absolute(&mut errs, &format!("{k}.etcd.local.dataDir"), &l.data_dir);
            args(
                &mut errs,
                &format!("{k}.etcd.local.extraArgs"),
                &l.extra_args,
            );
            envs(
                &mut errs,
                &format!("{k}.etcd.local.extraEnvs"),
                &l.extra_envs,
            );
            for (name, list) in [
                ("serverCertSANs", &l.server_cert_sans),
                ("peerCertSANs", &l.peer_cert_sans),
            ] {
                for (i, s) in list.iter().enumerate() {
                    if let Err(e) = san(s) {
                        errs.add(format!("{k}.etcd.local.{name}[{i}]"), s, e);
                    }
                }
            }
        }
        (None, Some(x)) => {
            if x.endpoints.is_empty() {
                errs.add(
                    format!("{k}.etcd.external.endpoints"),
                    "",
                    "at least one endpoint is required",
                );
            }
            let mut any_https = false;
            for (i, e) in x.endpoints.iter().enumerate() {
                if let Some(rest) = e
                    .strip_prefix("https://")
                    .or_else(|| e.strip_prefix("http://"))
                {
                    any_https |= e.starts_with("https://");
                    if let Err(d) = host_port(rest.trim_end_matches('/')) {
                        errs.add(format!("{k}.etcd.external.endpoints[{i}]"), e, d);
                    }
                } else {
                    errs.add(
                        format!("{k}.etcd.external.endpoints[{i}]"),
                        e,
                        "must be a URL such as https://10.0.0.1:2379",
                    );
                }
            }
            let files = [
                ("caFile", &x.ca_file),
                ("certFile", &x.cert_file),
                ("keyFile", &x.key_file),
            ];
            let set = files.iter().filter(|(_, v)| !v.is_empty()).count();
            if set != 3 && (any_https || set != 0) {
                errs.add(
                    format!("{k}.etcd.external"),
                    "",
                    "caFile, certFile and keyFile must all be set for https endpoints",
                );
            }
            for (name, v) in files {
                if !v.is_empty() {
                    absolute(&mut errs, &format!("{k}.etcd.external.{name}"), v);
                }
            }
        }
        (None, None) => {}
    }
    for name in c.feature_gates.keys() {
        if !KNOWN_FEATURE_GATES.contains(&name.as_str()) {
            errs.add(
                format!("{k}.featureGates"),
                name,
                format!(
                    "{name} is not a valid feature name; known: {}",
                    KNOWN_FEATURE_GATES.join(", ")
                ),
            );
        }
    }
    if !ENCRYPTION_ALGORITHMS.contains(&c.encryption_algorithm.as_str()) {
        errs.add(
            format!("{k}.encryptionAlgorithm"),
            &c.encryption_algorithm,
            format!("must be one of {}", ENCRYPTION_ALGORITHMS.join(", ")),
        );
    }
    duration_positive(
        &mut errs,
        &format!("{k}.certificateValidityPeriod"),
        c.certificate_validity_period,
    );
    duration_positive(
        &mut errs,
        &format!("{k}.caCertificateValidityPeriod"),
        c.ca_certificate_validity_period,
    );
    if let (Some(leaf), Some(ca)) = (
        c.certificate_validity_period,
        c.ca_certificate_validity_period,
    ) && leaf > ca
    {
        errs.add(
            format!("{k}.certificateValidityPeriod"),
            leaf.to_string(),
            format!("must not be longer than caCertificateValidityPeriod ({ca})"),
        );
    }
    if c.image_repository.contains("://") || c.image_repository.ends_with('/') {
        errs.add(format!("{k}.imageRepository"), &c.image_repository, "must be a registry path such as registry.example.com/k8s, without scheme or trailing '/'");
    }
    errs
}

fn node_registration(errs: &mut FieldErrors, path: &str, n: &NodeRegistrationOptions) {
    if let Err(e) = dns1123_subdomain(&n.name) {
        errs.add(format!("{path}.name"), &n.name, e);
    }
    if !n.cri_socket.is_empty() {
        let ok = n
            .cri_socket
            .strip_prefix("unix://")
            .map(|p| p.starts_with('/'))
            .unwrap_or(false)
            || n.cri_socket.starts_with('/');
        if !ok {
            errs.add(format!("{path}.criSocket"), &n.cri_socket, "must be an absolute path or a unix:// URL such as unix:///var/run/containerd/containerd.sock");
        }
    }
    for (i, t) in n.taints.iter().flatten().enumerate() {
        if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&t.effect.as_str()) {
            errs.add(
                format!("{path}.taints[{i}].effect"),
                &t.effect,
                "must be NoSchedule, PreferNoSchedule or NoExecute",
            );
        }
        if t.key.is_empty() {
            errs.add(
                format!("{path}.taints[{i}].key"),
                "",
                "taint key must not be empty",
            );
        }
    }
    args(
        errs,
        &format!("{path}.kubeletExtraArgs"),
        &n.kubelet_extra_args,
    );
    if !["", "Always", "IfNotPresent", "Never"].contains(&n.image_pull_policy.as_str()) {
        errs.add(
            format!("{path}.imagePullPolicy"),
            &n.image_pull_policy,
            "must be Always, IfNotPresent or Never",
        );
    }
    let ignore = &n.ignore_preflight_errors;
    if ignore.iter().any(|s| s.eq_ignore_ascii_case("all")) && ignore.len() > 1 {
        errs.add(
            format!("{path}.ignorePreflightErrors"),
            ignore.join(","),
            "don't specify individual checks if 'all' is used",
        );
    }
}

fn endpoint(errs: &mut FieldErrors, path: &str, e: &ApiEndpoint) {
    if e.advertise_address.parse::<IpAddr>().is_err() {
        errs.add(
            format!("{path}.advertiseAddress"),
            &e.advertise_address,
            "must be a valid IP address",
        );
    }
    port(errs, &format!("{path}.bindPort"), e.bind_port);
}

/// Validates an InitConfiguration (after dynamic defaulting).
pub fn init(c: &InitConfiguration) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let k = "InitConfiguration";
    for (i, t) in c.bootstrap_tokens.iter().enumerate() {
        let p = format!("{k}.bootstrapTokens[{i}]");
        for u in &t.usages {
            if u != "signing" && u != "authentication" {
                errs.add(
                    format!("{p}.usages"),
                    u,
                    "must be signing or authentication",
                );
            }
        }
        for g in &t.groups {
            if !valid_token_group(g) {
                errs.add(
                    format!("{p}.groups"),
                    g,
                    r"must match \Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z",
                );
            }
        }
        if let Some(x) = &t.expires
            && !looks_rfc3339(x)
        {
            errs.add(
                format!("{p}.expires"),
                x,
                "must be an RFC 3339 time such as 2026-01-02T15:04:05Z",
            );
        }
        if let Some(ttl) = t.ttl
            && ttl.as_nanos() < 0
        {
            errs.add(
                format!("{p}.ttl"),
                ttl.to_string(),
                "must not be negative (0 means never expires)",
            );
        }
    }
    node_registration(
        &mut errs,
        &format!("{k}.nodeRegistration"),
        &c.node_registration,
    );
    endpoint(
        &mut errs,
        &format!("{k}.localAPIEndpoint"),
        &c.local_api_endpoint,
    );
    if !c.certificate_key.is_empty()
        && let Err(e) = validate_certificate_key(&c.certificate_key)
    {
        errs.add(format!("{k}.certificateKey"), "<redacted>", e);
    }
    timeouts(&mut errs, &format!("{k}.timeouts"), &c.timeouts);
    errs
}

/// `system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]`.
pub fn valid_token_group(g: &str) -> bool {
    let Some(rest) = g.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    !rest.is_empty()
        && rest.len() <= 256
        && rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
        && rest
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A light RFC 3339 shape check: `YYYY-MM-DDTHH:MM:SS` then `Z` or an offset.
pub fn looks_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
            .iter()
            .all(|r| b[r.clone()].iter().all(u8::is_ascii_digit))
        && (s.ends_with('Z') || s.ends_with('z') || s[19..].contains(['+', '-']))
}

/// `sha256:` (any case) followed by 64 hex characters.
pub fn ca_cert_hash(s: &str) -> Result<(), String> {
    parse_ca_cert_hash(s).map(|_| ())
}

/// The one parser of CA-hash pins: `sha256:` (any case, as upstream) and 64 hex characters,
/// returned in the canonical form `sha256:<lowercase hex>` that `kubeadm_pki::ca_cert_hash`
/// produces.
pub fn parse_ca_cert_hash(s: &str) -> Result<String, String> {
    let (kind, hex) = s
        .split_once(':')
        .ok_or("must be of the form \"sha256:<64 hex characters>\"")?;
    if !kind.eq_ignore_ascii_case("sha256") {
        return Err(format!(
            "unsupported hash type {kind:?}: only sha256 is supported"
        ));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("must be of the form \"sha256:<64 hex characters>\"".into());
    }
    Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
}

/// Validates a JoinConfiguration (after dynamic defaulting).
pub fn join(c: &JoinConfiguration) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let k = "JoinConfiguration";
    let d = &c.discovery;
    match (&d.bootstrap_token, &d.file) {
        (Some(_), Some(_)) => errs.add(format!("{k}.discovery"), "bootstrapToken and file", "bootstrapToken and file are mutually exclusive; set only one"),
        (None, None) => errs.add(format!("{k}.discovery"), "", "bootstrapToken or file must be set (e.g. pass --token and --discovery-token-ca-cert-hash)"),
        (Some(bt), None) => {
            let p = format!("{k}.discovery.bootstrapToken");
            if BootstrapTokenString::parse(&bt.token).is_err() {
                errs.add(format!("{p}.token"), crate::token::redact(&bt.token), format!("the bootstrap token must be of the form {:?}", crate::token::TOKEN_PATTERN));
            }
            if bt.api_server_endpoint.is_empty() {
                errs.add(format!("{p}.apiServerEndpoint"), "", "the API server endpoint (host:port) is required, e.g. kubeadm join 10.0.0.1:6443 …");
            } else if let Err(e) = host_port(&bt.api_server_endpoint) {
                errs.add(format!("{p}.apiServerEndpoint"), &bt.api_server_endpoint, e);
            }
            for (i, h) in bt.ca_cert_hashes.iter().enumerate() {
                if let Err(e) = ca_cert_hash(h) {
                    errs.add(format!("{p}.caCertHashes[{i}]"), h, e);
                }
            }
            if bt.ca_cert_hashes.is_empty() && !bt.unsafe_skip_ca_verification {
                errs.add(format!("{p}.caCertHashes"), "", "using token-based discovery without caCertHashes can be unsafe; pass --discovery-token-ca-cert-hash, or set unsafeSkipCAVerification (--discovery-token-unsafe-skip-ca-verification) to continue");
            }
        }
        (None, Some(f)) => {
            if f.kube_config_path.is_empty() {
                errs.add(format!("{k}.discovery.file.kubeConfigPath"), "", "a kubeconfig path or https URL is required");
            }
        }
    }
    if !d.tls_bootstrap_token.is_empty()
        && BootstrapTokenString::parse(&d.tls_bootstrap_token).is_err()
    {
        errs.add(
            format!("{k}.discovery.tlsBootstrapToken"),
            crate::token::redact(&d.tls_bootstrap_token),
            format!(
                "the bootstrap token must be of the form {:?}",
                crate::token::TOKEN_PATTERN
            ),
        );
    }
    absolute(&mut errs, &format!("{k}.caCertPath"), &c.ca_cert_path);
    node_registration(
        &mut errs,
        &format!("{k}.nodeRegistration"),
        &c.node_registration,
    );
    if let Some(cp) = &c.control_plane {
        endpoint(
            &mut errs,
            &format!("{k}.controlPlane.localAPIEndpoint"),
            &cp.local_api_endpoint,
        );
        if !cp.certificate_key.is_empty()
            && let Err(e) = validate_certificate_key(&cp.certificate_key)
        {
            errs.add(format!("{k}.controlPlane.certificateKey"), "<redacted>", e);
        }
    }
    timeouts(&mut errs, &format!("{k}.timeouts"), &c.timeouts);
    errs
}

/// Validates a ResetConfiguration.
pub fn reset(c: &ResetConfiguration) -> FieldErrors {
    let mut errs = FieldErrors::default();
    absolute(
        &mut errs,
        "ResetConfiguration.certificatesDir",
        &c.certificates_dir,
    );
    for (i, f) in c.unmount_flags.iter().enumerate() {
        if !["MNT_FORCE", "MNT_DETACH", "MNT_EXPIRE", "UMOUNT_NOFOLLOW"].contains(&f.as_str()) {
            errs.add(
                format!("ResetConfiguration.unmountFlags[{i}]"),
                f,
                "must be MNT_FORCE, MNT_DETACH, MNT_EXPIRE or UMOUNT_NOFOLLOW",
            );
        }
    }
    timeouts(&mut errs, "ResetConfiguration.timeouts", &c.timeouts);
    errs
}

/// Validates an UpgradeConfiguration.
pub fn upgrade(c: &UpgradeConfiguration) -> FieldErrors {
    let mut errs = FieldErrors::default();
    for (path, v) in [
        ("apply", &c.apply.kubernetes_version),
        ("plan", &c.plan.kubernetes_version),
        ("diff", &c.diff.kubernetes_version),
    ] {
        if !v.is_empty()
            && let Err(e) = crate::version::resolve(v)
        {
            errs.add(
                format!("UpgradeConfiguration.{path}.kubernetesVersion"),
                v,
                e,
            );
        }
    }
    timeouts(&mut errs, "UpgradeConfiguration.timeouts", &c.timeouts);
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains() {
        assert!(dns1123_subdomain("node-1.example.com").is_ok());
        for bad in ["", "Node", "-a", "a-", "a..b", "a_b", &"a".repeat(64)] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_lists() {
        assert_eq!(cidrs("10.96.0.0/12").unwrap().len(), 1);
        assert_eq!(cidrs("10.96.0.0/12,fd00::/108").unwrap().len(), 2);
        assert!(cidrs("10.96.0.0/12,10.0.0.0/8").is_err());
        assert!(cidrs("10.96.0.1/12").is_err());
        assert!(cidrs("10.96.0.0/33").is_err());
        assert!(cidrs("a,b,c").is_err());
    }

    #[test]
    fn host_ports() {
        assert_eq!(
            host_port("lb.example.com:6443").unwrap(),
            ("lb.example.com".into(), Some(6443))
        );
        assert_eq!(
            host_port("[fd00::1]:6443").unwrap(),
            ("fd00::1".into(), Some(6443))
        );
        assert_eq!(host_port("fd00::1").unwrap(), ("fd00::1".into(), None));
        assert!(host_port("lb:0").is_err());
        assert!(host_port("lb:70000").is_err());
        assert!(host_port("LB_bad:1").is_err());
    }

    #[test]
    fn hashes_and_groups() {
        assert!(ca_cert_hash(&format!("SHA256:{}", "a".repeat(64))).is_ok());
        assert!(ca_cert_hash("sha256:abc").is_err());
        assert!(ca_cert_hash(&format!("md5:{}", "a".repeat(64))).is_err());
        assert!(valid_token_group(
            "system:bootstrappers:kubeadm:default-node-token"
        ));
        assert!(!valid_token_group("system:nodes"));
        assert!(looks_rfc3339("2026-01-02T15:04:05Z"));
        assert!(!looks_rfc3339("tomorrow"));
    }
}
