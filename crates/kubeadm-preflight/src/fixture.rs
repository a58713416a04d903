//! Test support: host trees that pass (or, after one edit, fail) the pre-flight checks, for
//! unit tests here and whole-command tests of the binary under `--rootfs`.
//!
//! Not used by kubeadm itself. A fixture holds a real unix socket listener for the CRI check
//! and fake `kubelet` / `systemctl` scripts, so keep the [`HostFixture`] alive while the checks
//! run.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::grpc;

/// The CRI socket path a fixture listens on.
pub const CRI_SOCKET: &str = "/var/run/containerd/containerd.sock";

/// A fake host tree under `root`.
pub struct HostFixture {
    /// The root directory (pass it as `--rootfs`).
    pub root: PathBuf,
    cri: Option<FakeCri>,
    silent: Option<UnixListener>,
}

/// A CRI server answering `RuntimeService/Version` and `Status` as a ready runtime, and
/// `ImageService/ImageStatus` as a runtime holding every image, on a thread, until dropped.
/// It keeps the names of the images it was asked about, so a test sees what a command checked.
pub struct FakeCri {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl FakeCri {
    /// Serves on a unix socket at `socket` (its directory made, a stale socket file replaced)
    /// until dropped: the node's runtime for whole-command tests that need one to answer.
    pub fn serve(socket: &Path) -> io::Result<Self> {
        if let Some(d) = socket.parent() {
            fs::create_dir_all(d)?;
        }
        let _ = fs::remove_file(socket);
        Self::start(UnixListener::bind(socket)?)
    }

    /// The images asked about through `ImageService/ImageStatus`, in the order asked.
    pub fn images_asked(&self) -> Vec<String> {
        self.asked.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn start(listener: UnixListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // RuntimeService/Version (its request sets field 1, the API version) and Status
        // (empty or `verbose`): the answers of a ready runtime.
        let mut version = Vec::new();
        for (field, value) in [(1, "0.1.0"), (2, "fake-cri"), (3, "1.0.0"), (4, "v1")] {
            grpc::proto_bytes(&mut version, field, value.as_bytes());
        }
        let mut condition = Vec::new();
        grpc::proto_bytes(&mut condition, 1, b"RuntimeReady");
        condition.extend_from_slice(&[0x10, 0x01]); // status: true
        let mut runtime_status = Vec::new();
        grpc::proto_bytes(&mut runtime_status, 1, &condition);
        let mut status = Vec::new();
        grpc::proto_bytes(&mut status, 1, &runtime_status);
        // ImageService/ImageStatus (field 1 is the ImageSpec, itself a message whose field 1 is
        // the name): every image is present, so init's ImagePull check passes without pulling.
        let mut image = Vec::new();
        grpc::proto_bytes(&mut image, 1, b"sha256:fixture");
        let mut image_status = Vec::new();
        grpc::proto_bytes(&mut image_status, 1, &image);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let thread = std::thread::spawn(move || {
            let answer = |request: &[u8]| {
                // After field 1's tag and its varint length: a nested message, or text.
                let len_bytes = request
                    .iter()
                    .skip(1)
                    .position(|b| b & 0x80 == 0)
                    .map_or(0, |p| p + 1);
                match (request.first(), request.get(1 + len_bytes)) {
                    (Some(0x0a), Some(0x0a)) => {
                        if let (Some(name), Ok(mut l)) = (image_name(request), log.lock()) {
                            l.push(name);
                        }
                        image_status.clone()
                    }
                    (Some(0x0a), _) => version.clone(),
                    _ => status.clone(),
                }
            };
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                        let _ = grpc::serve(&mut conn, &answer);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(FakeCri {
            stop,
            thread: Some(thread),
            asked,
        })
    }
}

/// The image name of an `ImageStatusRequest` (field 1, an ImageSpec whose field 1 is the name).
fn image_name(request: &[u8]) -> Option<String> {
    let field = |buf: &[u8]| {
        grpc::proto_fields(buf)?
            .into_iter()
            .find(|(n, _)| *n == 1)
            .map(|(_, v)| v)
    };
    String::from_utf8(field(&field(request)?)?).ok()
}

impl Drop for FakeCri {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl HostFixture {
    /// A tree under `root` on which every init check passes (kernel 6.1, cgroups v2, 2 CPUs,
    /// 4 GiB, no swap, sysctls set, binaries present, kubelet `kubelet_version`, kubelet service
    /// enabled, firewalld absent, `node` resolvable, a CRI socket accepting connections).
    pub fn good(root: &Path, node: &str, kubelet_version: &str) -> io::Result<Self> {
        let mut f = HostFixture {
            root: root.to_path_buf(),
            cri: None,
            silent: None,
        };
        f.write(
            "/proc/cpuinfo",
            "processor\t: 0\nmodel name\t: test\n\nprocessor\t: 1\nmodel name\t: test\n",
        )?;
        f.write(
            "/proc/meminfo",
            "MemTotal:        4039228 kB\nMemFree:         1000000 kB\n",
        )?;
        f.write(
            "/proc/swaps",
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        )?;
        f.write("/proc/modules", "br_netfilter 32768 0 - Live 0x0000000000000000\noverlay 151552 0 - Live 0x0000000000000000\n")?;
        f.write("/proc/sys/kernel/osrelease", "6.1.0-18-amd64\n")?;
        for key in [
            "net/ipv4/ip_forward",
            "net/bridge/bridge-nf-call-iptables",
            "net/bridge/bridge-nf-call-ip6tables",
            "net/ipv6/conf/default/forwarding",
        ] {
            f.write(&format!("/proc/sys/{key}"), "1\n")?;
        }
        f.write(
            "/sys/fs/cgroup/cgroup.controllers",
            "cpuset cpu io memory hugetlb pids rdma misc\n",
        )?;
        f.write(
            "/etc/hosts",
            &format!("127.0.0.1\tlocalhost\n127.0.1.1\t{node}\n"),
        )?;
        f.write("/etc/fstab", "UUID=1234 / ext4 defaults 0 1\n")?;
        for b in [
            "crictl",
            "conntrack",
            "ip",
            "iptables",
            "mount",
            "nsenter",
            "ebtables",
            "ethtool",
            "socat",
            "tc",
            "touch",
        ] {
            f.script(&format!("/usr/bin/{b}"), "exit 0")?;
        }
        f.script(
            "/usr/bin/kubelet",
            &format!("echo 'Kubernetes {kubelet_version}'"),
        )?;
        f.script(
            "/usr/bin/systemctl",
            "case \"$1 $2\" in\n  'status kubelet') echo '  Loaded: loaded (/lib/systemd/system/kubelet.service; enabled)'; exit 0;;\n  'is-enabled kubelet') echo enabled; exit 0;;\n  'status firewalld') echo 'Unit firewalld.service could not be found.' >&2; echo '  Loaded: not-found'; exit 4;;\n  *) exit 3;;\nesac",
        )?;
        f.listen_cri()?;
        Ok(f)
    }

    /// The real path of a host path.
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    /// Writes a host file (creating parents).
    pub fn write(&mut self, host_path: &str, content: &str) -> io::Result<()> {
        let p = self.path(host_path);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d)?;
        }
        fs::write(p, content)
    }

    /// Writes an executable `/bin/sh` script.
    pub fn script(&mut self, host_path: &str, body: &str) -> io::Result<()> {
        self.write(host_path, &format!("#!/bin/sh\n{body}\n"))?;
        fs::set_permissions(self.path(host_path), fs::Permissions::from_mode(0o755))
    }

    /// Removes a host file.
    pub fn remove(&mut self, host_path: &str) -> io::Result<()> {
        fs::remove_file(self.path(host_path))
    }

    fn bind_cri(&mut self) -> io::Result<UnixListener> {
        self.stop_cri();
        let p = self.path(CRI_SOCKET);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d)?;
        }
        let _ = fs::remove_file(&p);
        UnixListener::bind(&p)
    }

    /// Serves the CRI Version and Status calls on the CRI socket (replacing a stale one).
    pub fn listen_cri(&mut self) -> io::Result<()> {
        let l = self.bind_cri()?;
        self.cri = Some(FakeCri::start(l)?);
        Ok(())
    }

    /// Listens on the CRI socket but never answers (a hung runtime).
    pub fn listen_silent(&mut self) -> io::Result<()> {
        self.silent = Some(self.bind_cri()?);
        Ok(())
    }

    /// Stops listening but leaves the socket file (a runtime that died).
    pub fn stop_cri(&mut self) {
        self.cri = None;
        self.silent = None;
    }
}
