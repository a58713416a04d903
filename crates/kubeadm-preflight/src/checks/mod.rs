//! The checks themselves, one value type per upstream checker.

mod etcd;
mod files;
mod net;
mod runtime;
mod system;

pub use etcd::{ExternalEtcdVersion, MIN_EXTERNAL_ETCD};
pub use files::{DirAvailable, FileAvailable, FileContent, FileExisting, InPath, ServiceBinary};
pub use net::{HttpProxy, HttpProxyCidr, Port, proxy_for};
pub use runtime::{
    Cri, Firewalld, IPVS_MODULES, ImagePull, IpvsModules, KubeletVersion, KubernetesVersion,
    Service, min_kubelet_minor, parse_kubelet_version,
};
pub use system::{Hostname, IsPrivilegedUser, Mem, NumCpu, Swap, SystemVerification};

/// Upstream's name for a path-derived check: every `/` becomes `-` (`/var/lib/etcd` →
/// `-var-lib-etcd`, so the check is `DirAvailable--var-lib-etcd`).
pub fn path_label(path: &str) -> String {
    path.replace('/', "-")
}

/// Reads a host file as text through the effects layer; `None` when absent or unreadable.
pub(crate) fn read_text(ctx: &crate::Context<'_>, path: &str) -> Result<Option<String>, String> {
    match ctx.fx.read(std::path::Path::new(path)) {
        Ok(Some(bytes)) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}
