//! The one table of kubeadm's certificates and kubeconfig files. Generation, renewal, expiry
//! reports, upload-certs and reset all read these rows.

/// What a certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// A certificate authority (key usage certSign; no extended key usage).
    Ca,
    /// A TLS server.
    Server,
    /// A TLS client.
    Client,
    /// Both (etcd server and peer certificates).
    ServerClient,
}

impl Usage {
    /// True for [`Usage::Ca`].
    pub fn is_ca(self) -> bool {
        self == Usage::Ca
    }

    /// Extended key usages as `openssl x509 -text` names them.
    pub fn eku_names(self) -> &'static [&'static str] {
        match self {
            Usage::Ca => &[],
            Usage::Server => &["TLS Web Server Authentication"],
            Usage::Client => &["TLS Web Client Authentication"],
            Usage::ServerClient => &[
                "TLS Web Server Authentication",
                "TLS Web Client Authentication",
            ],
        }
    }
}

/// Where a certificate's common name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommonName {
    /// A fixed name.
    Fixed(&'static str),
    /// The node name (etcd server and peer).
    NodeName,
}

/// Which subject alternative names a certificate carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanRule {
    /// None (client certificates).
    None,
    /// `DNS:<common name>` (certificate authorities).
    CommonName,
    /// The API server's names and addresses (see [`crate::sans::api_server`]).
    ApiServer,
    /// etcd server: node name, localhost, advertise IP, loopbacks, `serverCertSANs`.
    EtcdServer,
    /// etcd peer: node name, localhost, advertise IP, loopbacks, `peerCertSANs`.
    EtcdPeer,
}

/// One certificate kubeadm manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertSpec {
    /// Phase and `certs renew` name (`etcd-server`).
    pub name: &'static str,
    /// File base name under the certificates directory (`etcd/server` → `etcd/server.crt|key`).
    pub base: &'static str,
    /// The signing CA's `name`; `None` for self-signed authorities.
    pub ca: Option<&'static str>,
    /// Subject common name.
    pub cn: CommonName,
    /// Subject organizations.
    pub orgs: &'static [&'static str],
    /// Key usage class.
    pub usage: Usage,
    /// Subject alternative names.
    pub sans: SanRule,
    /// Only generated when etcd runs locally.
    pub local_etcd: bool,
    /// One-line help of the phase.
    pub help: &'static str,
}

impl CertSpec {
    /// True for a certificate authority.
    pub fn is_ca(&self) -> bool {
        self.usage.is_ca()
    }

    /// Path of the certificate relative to the certificates directory.
    pub fn cert_file(&self) -> String {
        format!("{}.crt", self.base)
    }

    /// Path of the key relative to the certificates directory.
    pub fn key_file(&self) -> String {
        format!("{}.key", self.base)
    }

    /// The common name for a node.
    pub fn common_name<'a>(&self, node_name: &'a str) -> &'a str
    where
        'static: 'a,
    {
        match self.cn {
            CommonName::Fixed(n) => n,
            CommonName::NodeName => node_name,
        }
    }
}

const MASTERS: &[&str] = &["system:masters"];

/// Every certificate, in upstream's phase order.
pub const CERTS: &[CertSpec] = &[
    CertSpec {
        name: "ca",
        base: "ca",
        ca: None,
        cn: CommonName::Fixed("kubernetes"),
        orgs: &[],
        usage: Usage::Ca,
        sans: SanRule::CommonName,
        local_etcd: false,
        help: "Generate the self-signed Kubernetes CA to provision identities for other Kubernetes components",
    },
    CertSpec {
        name: "apiserver",
        base: "apiserver",
        ca: Some("ca"),
        cn: CommonName::Fixed("kube-apiserver"),
        orgs: &[],
        usage: Usage::Server,
        sans: SanRule::ApiServer,
        local_etcd: false,
        help: "Generate the certificate for serving the Kubernetes API",
    },
    CertSpec {
        name: "apiserver-kubelet-client",
        base: "apiserver-kubelet-client",
        ca: Some("ca"),
        cn: CommonName::Fixed("kube-apiserver-kubelet-client"),
        orgs: MASTERS,
        usage: Usage::Client,
        sans: SanRule::None,
        local_etcd: false,
        help: "Generate the certificate for the API server to connect to kubelet",
    },
    CertSpec {
        name: "front-proxy-ca",
        base: "front-proxy-ca",
        ca: None,
        cn: CommonName::Fixed("front-proxy-ca"),
        orgs: &[],
        usage: Usage::Ca,
        sans: SanRule::CommonName,
        local_etcd: false,
        help: "Generate the self-signed CA to provision identities for front proxy",
    },
    CertSpec {
        name: "front-proxy-client",
        base: "front-proxy-client",
        ca: Some("front-proxy-ca"),
        cn: CommonName::Fixed("front-proxy-client"),
        orgs: &[],
        usage: Usage::Client,
        sans: SanRule::None,
        local_etcd: false,
        help: "Generate the certificate for the front proxy client",
    },
    CertSpec {
        name: "etcd-ca",
        base: "etcd/ca",
        ca: None,
        cn: CommonName::Fixed("etcd-ca"),
        orgs: &[],
        usage: Usage::Ca,
        sans: SanRule::CommonName,
        local_etcd: true,
        help: "Generate the self-signed CA to provision identities for etcd",
    },
    CertSpec {
        name: "etcd-server",
        base: "etcd/server",
        ca: Some("etcd-ca"),
        cn: CommonName::NodeName,
        orgs: &[],
        usage: Usage::ServerClient,
        sans: SanRule::EtcdServer,
        local_etcd: true,
        help: "Generate the certificate for serving etcd",
    },
    CertSpec {
        name: "etcd-peer",
        base: "etcd/peer",
        ca: Some("etcd-ca"),
        cn: CommonName::NodeName,
        orgs: &[],
        usage: Usage::ServerClient,
        sans: SanRule::EtcdPeer,
        local_etcd: true,
        help: "Generate the certificate for etcd nodes to communicate with each other",
    },
    CertSpec {
        name: "etcd-healthcheck-client",
        base: "etcd/healthcheck-client",
        ca: Some("etcd-ca"),
        cn: CommonName::Fixed("kube-etcd-healthcheck-client"),
        orgs: MASTERS,
        usage: Usage::Client,
        sans: SanRule::None,
        local_etcd: true,
        help: "Generate the certificate for liveness probes to healthcheck etcd",
    },
    CertSpec {
        name: "apiserver-etcd-client",
        base: "apiserver-etcd-client",
        ca: Some("etcd-ca"),
        cn: CommonName::Fixed("kube-apiserver-etcd-client"),
        orgs: MASTERS,
        usage: Usage::Client,
        sans: SanRule::None,
        local_etcd: true,
        help: "Generate the certificate the apiserver uses to access etcd",
    },
];

/// The service-account key pair's file base name (`sa.key`, `sa.pub`).
pub const SA_BASE: &str = "sa";

/// Upstream's mode for a PKI file by its name: private keys, public keys (`sa.pub`, written
/// with keyutil.WriteKey) and CSRs (WriteCSR) 0600; certificates 0644 (certutil.WriteCert).
pub fn file_mode(file_name: &str) -> u32 {
    let private = [".key", ".pub", ".csr"]
        .iter()
        .any(|ext| file_name.ends_with(ext));
    if private { 0o600 } else { 0o644 }
}

/// Looks a certificate up by name (`etcd-server`) or file base (`etcd/server`).
pub fn find(name: &str) -> Option<&'static CertSpec> {
    CERTS.iter().find(|c| c.name == name || c.base == name)
}

/// The CA row that signs `spec` (itself for a CA).
pub fn ca_of(spec: &CertSpec) -> &'static CertSpec {
    let ca = spec.ca.unwrap_or(spec.name);
    CERTS.iter().find(|c| c.name == ca).unwrap_or(&CERTS[0])
}

/// Whose API server a kubeconfig talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// `controlPlaneEndpoint`, else this node's advertise address.
    ControlPlane,
    /// This node's advertise address and bind port.
    Local,
}

/// The client identity of a kubeconfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientName {
    /// A fixed user name.
    Fixed(&'static str),
    /// `system:node:<node name>`.
    Node,
}

/// One kubeconfig file kubeadm writes under /etc/kubernetes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeconfigSpec {
    /// Phase name (`controller-manager`).
    pub name: &'static str,
    /// File name (`controller-manager.conf`).
    pub file: &'static str,
    /// The user (client certificate CN).
    pub client: ClientName,
    /// Which server it points at.
    pub server: ServerKind,
    /// One-line help of the phase.
    pub help: &'static str,
}

/// Every kubeconfig file, in upstream's phase order (`super-admin` only from 1.29).
pub const KUBECONFIGS: &[KubeconfigSpec] = &[
    KubeconfigSpec {
        name: "admin",
        file: "admin.conf",
        client: ClientName::Fixed("kubernetes-admin"),
        server: ServerKind::ControlPlane,
        help: "Generate a kubeconfig file for the admin to use and for kubeadm itself",
    },
    KubeconfigSpec {
        name: "super-admin",
        file: "super-admin.conf",
        client: ClientName::Fixed("kubernetes-super-admin"),
        server: ServerKind::ControlPlane,
        help: "Generate a kubeconfig file for the super-admin",
    },
    KubeconfigSpec {
        name: "kubelet",
        file: "kubelet.conf",
        client: ClientName::Node,
        server: ServerKind::ControlPlane,
        help: "Generate a kubeconfig file for the kubelet to use *only* for cluster bootstrapping purposes",
    },
    KubeconfigSpec {
        name: "controller-manager",
        file: "controller-manager.conf",
        client: ClientName::Fixed("system:kube-controller-manager"),
        server: ServerKind::Local,
        help: "Generate a kubeconfig file for the controller manager to use",
    },
    KubeconfigSpec {
        name: "scheduler",
        file: "scheduler.conf",
        client: ClientName::Fixed("system:kube-scheduler"),
        server: ServerKind::Local,
        help: "Generate a kubeconfig file for the scheduler to use",
    },
];

impl KubeconfigSpec {
    /// The user name for a node.
    pub fn user(&self, node_name: &str) -> String {
        match self.client {
            ClientName::Fixed(n) => n.to_string(),
            ClientName::Node => format!("system:node:{node_name}"),
        }
    }

    /// The client certificate's organizations for a cluster minor (`has_super_admin` = ≥1.29).
    pub fn orgs(&self, has_super_admin: bool) -> Vec<String> {
        match self.name {
            "admin" if has_super_admin => vec!["kubeadm:cluster-admins".into()],
            "admin" | "super-admin" => vec!["system:masters".into()],
            "kubelet" => vec!["system:nodes".into()],
            _ => Vec::new(),
        }
    }
}

/// Looks a kubeconfig up by phase name or file name.
pub fn find_kubeconfig(name: &str) -> Option<&'static KubeconfigSpec> {
    KUBECONFIGS
        .iter()
        .find(|k| k.name == name || k.file == name)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_signer_is_a_ca_listed_before_its_leaves() {
        for (i, c) in CERTS.iter().enumerate() {
            if let Some(ca) = c.ca {
                let pos = CERTS.iter().position(|x| x.name == ca).unwrap();
                assert!(pos < i && CERTS[pos].is_ca(), "{}", c.name);
                assert_eq!(
                    CERTS[pos].local_etcd,
                    c.local_etcd && CERTS[pos].local_etcd,
                    "{}",
                    c.name
                );
            } else {
                assert!(c.is_ca());
            }
        }
        assert_eq!(find("etcd/server").unwrap().name, "etcd-server");
        assert_eq!(
            ca_of(find("apiserver-etcd-client").unwrap()).base,
            "etcd/ca"
        );
    }
}
