//! A control plane to init against, for the crash-recovery tests: the operator's CA and the
//! apiserver serving certificate (outside every root), health stand-ins of the kubelet,
//! controller-manager and scheduler, one test API server per case trusting that CA (so every
//! server trusts what every init signs), and the init configuration of `init_config.rs`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

#[path = "init_config.rs"]
mod init_config;

use init_config::InitConfig;
use kubeadm_testapi::health::HealthServer;
use kubeadm_testapi::support::kubeadm_cmd;
use kubeadm_testapi::{TestApiConfig, TestApiServer};

/// The Kubernetes version deployed.
pub const VERSION: &str = "v1.33.13";

/// stdout then stderr of a run, for failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// What every case shares: the operator's CA and the apiserver serving certificate (outside
/// every root), and the health stand-ins of the kubelet, controller-manager and scheduler.
pub struct World {
    pki: tempfile::TempDir,
    kubelet: HealthServer,
    kcm: HealthServer,
    sched: HealthServer,
}

impl World {
    /// The CA, the serving certificate and the health stand-ins.
    pub fn new() -> Self {
        let pki = tempfile::tempdir().unwrap();
        for cert in ["ca", "apiserver"] {
            let out = kubeadm_cmd(pki.path())
                .args(["init", "phase", "certs", cert])
                .args(["--apiserver-advertise-address", "127.0.0.1"])
                .args(["--node-name", "cp-1", "--kubernetes-version", VERSION])
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", text(&out));
        }
        let dir = pki.path().join("etc/kubernetes/pki");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
        let (cert, key) = (read("apiserver.crt"), read("apiserver.key"));
        World {
            kubelet: HealthServer::http(true).unwrap(),
            kcm: HealthServer::https(&cert, &key, true).unwrap(),
            sched: HealthServer::https(&cert, &key, true).unwrap(),
            pki,
        }
    }

    /// The operator's certificates directory.
    pub fn pki_dir(&self) -> PathBuf {
        self.pki.path().join("etc/kubernetes/pki")
    }

    /// A test API server of its own for one case, with a registered node.
    pub fn server(&self) -> TestApiServer {
        let server =
            TestApiServer::start(TestApiConfig::from_pki_dir(&self.pki_dir(), VERSION).unwrap())
                .unwrap();
        server.register_node("cp-1").unwrap();
        server
    }

    /// Puts into `root` what the operator and the kubelet provide: the cluster CA, and the
    /// kubelet's rotating client certificate (kubelet-finalize points kubelet.conf at it).
    pub fn prepare(&self, root: &Path) {
        let pki = root.join("etc/kubernetes/pki");
        std::fs::create_dir_all(&pki).unwrap();
        for f in ["ca.crt", "ca.key"] {
            std::fs::copy(self.pki_dir().join(f), pki.join(f)).unwrap();
        }
        std::fs::set_permissions(pki.join("ca.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        // The kubelet's directory as kubeadm itself would create it (0700): what the kubelet
        // adds below it is the kubelet's.
        std::fs::create_dir_all(root.join("var/lib")).unwrap();
        let _ = std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .create(root.join("var/lib/kubelet"));
        let kpki = root.join("var/lib/kubelet/pki");
        std::fs::create_dir_all(&kpki).unwrap();
        std::fs::write(kpki.join("kubelet-client-current.pem"), "placeholder").unwrap();
    }

    /// The init configuration for a server (node cp-1, bootstrap token abcdef.0123456789abcdef).
    pub fn config(&self, dir: &Path, server: &TestApiServer) -> PathBuf {
        InitConfig::new(VERSION, server.addr().port())
            .with_token()
            .health_ports(self.kubelet.port(), self.kcm.port(), self.sched.port())
            .write(&dir.join("kubeadm.yaml"))
    }
}
