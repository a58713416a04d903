//! The container runtime through the CRI (Kubernetes' Container Runtime Interface v1: gRPC
//! `runtime.v1.RuntimeService` and `runtime.v1.ImageService` on a unix socket), as upstream's
//! `cmd/kubeadm/app/util/runtime` uses it: is the runtime ready, its sandbox image, image
//! presence and pulls (parallel unless serial, retried), and the removal of every Pod sandbox
//! on reset. [`Runtime`] is the seam: [`CriClient`] talks to the runtime, [`DryRun`] reads
//! through it and prints what it would change.

pub mod bundle;
mod client;
pub mod proto;

use kubeadm_errors::Hint;
use std::time::Duration;

pub use client::CriClient;
pub use kubeadm_grpc::Status;

/// Upstream `constants.PullImageRetry`: attempts per image.
pub const PULL_IMAGE_RETRY: usize = 5;
/// Upstream `constants.RemoveContainerRetry`: attempts per Pod sandbox.
pub const REMOVE_CONTAINER_RETRY: usize = 5;
/// Upstream's timeout for every call but a pull (crictl's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a runtime operation failed; every variant names the CRI endpoint.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CriError {
    /// Only `unix://` endpoints (or absolute socket paths) are supported.
    #[error(
        "unsupported CRI endpoint {endpoint:?}: only unix sockets (unix:///path or /path) are supported"
    )]
    Endpoint {
        /// The endpoint as configured.
        endpoint: String,
    },
    /// Nothing accepts connections at the socket.
    #[error("container runtime is not running: cannot connect to {endpoint}: {message}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// Something listens, but it does not answer the CRI v1 API.
    #[error("{endpoint} is not a CRI v1 container runtime: {message}")]
    NotCri {
        /// The endpoint.
        endpoint: String,
        /// What it answered.
        message: String,
    },
    /// A call was refused or failed.
    #[error("the CRI call {method} on {endpoint} failed: {message}")]
    Call {
        /// The endpoint.
        endpoint: String,
        /// The gRPC method (`RuntimeService/Status`).
        method: String,
        /// What went wrong.
        message: String,
    },
    /// The runtime answers but says it is not ready.
    #[error(
        "container runtime condition {condition:?} is not true on {endpoint}. reason: {reason}, message: {message}"
    )]
    NotReady {
        /// The endpoint.
        endpoint: String,
        /// The condition (`RuntimeReady`).
        condition: String,
        /// Its reason.
        reason: String,
        /// Its message.
        message: String,
    },
    /// Pulling an image failed (after the retries).
    #[error(
        "failed to pull image {image} from registry {registry} through the container runtime at {endpoint}: {message}"
    )]
    Pull {
        /// The image.
        image: String,
        /// The registry it lives in.
        registry: String,
        /// The endpoint.
        endpoint: String,
        /// The runtime's error.
        message: String,
    },
}

impl Hint for CriError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            CriError::Endpoint { .. } => {
                "give the socket as unix:///path (--cri-socket or nodeRegistration.criSocket)".into()
            }
            CriError::Connect { .. } => "start the container runtime (containerd or CRI-O), or choose its socket with --cri-socket / nodeRegistration.criSocket".into(),
            CriError::NotCri { .. } => "point --cri-socket at the runtime's CRI socket (containerd: its grpc address with the \"io.containerd.grpc.v1.cri\" plugin enabled)".into(),
            CriError::Call { .. } | CriError::NotReady { .. } => {
                "look at the container runtime's log (`journalctl -u containerd` or `journalctl -u crio`)".into()
            }
            CriError::Pull { .. } => "check that the image exists in that registry and that the runtime can reach it (its proxy and mirror settings); choose another registry with --image-repository, or load the images with `kubeadm config images import`".into(),
        })
    }
}

/// A Pod sandbox as the runtime lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// Its id.
    pub id: String,
    /// `namespace/name` of its Pod.
    pub pod: String,
    /// Whether it is ready (running).
    pub ready: bool,
}

/// What kubeadm asks of a container runtime. [`CriClient`] does it; [`DryRun`] reads through
/// a client and prints the changes instead of making them.
pub trait Runtime: Send + Sync {
    /// The CRI endpoint (`unix:///run/containerd/containerd.sock`), for messages.
    fn endpoint(&self) -> &str;
    /// Ok when the runtime's `RuntimeReady` condition holds (upstream `IsRunning`; network
    /// readiness is not looked at, as upstream).
    fn is_running(&self) -> Result<(), CriError>;
    /// The sandbox (pause) image the runtime is configured with.
    fn sandbox_image(&self) -> Result<String, CriError>;
    /// Whether the runtime has `image`.
    fn image_exists(&self, image: &str) -> Result<bool, CriError>;
    /// Pulls `image`, retried [`PULL_IMAGE_RETRY`] times.
    fn pull_image(&self, image: &str) -> Result<(), CriError>;
    /// Every Pod sandbox (upstream `ListKubeContainers`).
    fn list_pod_sandboxes(&self) -> Result<Vec<Sandbox>, CriError>;
    /// Stops then removes one sandbox, retried [`REMOVE_CONTAINER_RETRY`] times.
    fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError>;
}

/// The registry an image reference points at (its first path component when that looks like
/// a host, else Docker Hub), for error messages.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

/// The socket path of a CRI endpoint: `unix:///path` or `/path`.
pub fn socket_path(endpoint: &str) -> Result<&str, CriError> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.starts_with('/') {
        Ok(path)
    } else {
        Err(CriError::Endpoint {
            endpoint: endpoint.to_string(),
        })
    }
}

/// `imagePullPolicy` as kubeadm honours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull every image.
    Always,
    /// Pull only the missing ones (the default).
    #[default]
    IfNotPresent,
    /// Pull nothing; a missing image is an error.
    Never,
}

impl PullPolicy {
    /// From the config's spelling (`Always`, `IfNotPresent`, `Never`; empty = default).
    pub fn parse(s: &str) -> Option<PullPolicy> {
        match s {
            "" | "IfNotPresent" => Some(PullPolicy::IfNotPresent),
            "Always" => Some(PullPolicy::Always),
            "Never" => Some(PullPolicy::Never),
            _ => None,
        }
    }
}

/// What happened to one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pulled {
    /// It was pulled.
    Pulled,
    /// It was present and the policy did not ask for a pull.
    Present,
}

/// Ensures `images` under `policy`: upstream's `ImagePullCheck` (serial) and
/// `PullImagesInParallel` (one thread per image) in one place. Results come back in the order
/// of `images`; a failure of one image does not stop the others.
pub fn ensure_images(
    rt: &dyn Runtime,
    images: &[String],
    policy: PullPolicy,
    serial: bool,
) -> Vec<(String, Result<Pulled, CriError>)> {
    let one = |image: &str| -> Result<Pulled, CriError> {
        match policy {
            PullPolicy::Never => {
                if rt.image_exists(image)? {
                    Ok(Pulled::Present)
                } else {
                    Err(CriError::Pull {
                        image: image.to_string(),
                        registry: registry_of(image),
                        endpoint: rt.endpoint().to_string(),
                        message: "the image does not exist and imagePullPolicy is Never".into(),
                    })
                }
            }
            PullPolicy::IfNotPresent => {
                // As upstream: a failed presence check falls through to a pull.
                if rt.image_exists(image).unwrap_or(false) {
                    tracing::debug!(image, "image exists");
                    return Ok(Pulled::Present);
                }
                rt.pull_image(image).map(|()| Pulled::Pulled)
            }
            PullPolicy::Always => rt.pull_image(image).map(|()| Pulled::Pulled),
        }
    };
    if serial {
        return images
            .iter()
            .map(|i| (i.clone(), one(i.as_str())))
            .collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = images
            .iter()
            .map(|i| (i.clone(), s.spawn(|| one(i.as_str()))))
            .collect();
        handles
            .into_iter()
            .map(|(i, h)| {
                let r = h.join().unwrap_or_else(|_| {
                    Err(CriError::Pull {
                        image: i.clone(),
                        registry: registry_of(&i),
                        endpoint: rt.endpoint().to_string(),
                        message: "the pulling thread panicked".into(),
                    })
                });
                (i, r)
            })
            .collect()
    })
}

/// Stops and removes every Pod sandbox (upstream `RemoveContainers` after
/// `ListKubeContainers`): every sandbox is tried, the errors are returned together.
pub fn remove_all_pod_sandboxes(rt: &dyn Runtime) -> Result<Vec<Sandbox>, Vec<CriError>> {
    let sandboxes = rt.list_pod_sandboxes().map_err(|e| vec![e])?;
    let errors: Vec<CriError> = sandboxes
        .iter()
        .filter_map(|s| rt.remove_pod_sandbox(&s.id).err())
        .collect();
    if errors.is_empty() {
        Ok(sandboxes)
    } else {
        Err(errors)
    }
}

/// The dry-run twin: reads through the real client when the runtime answers (so the plan
/// shows what is really there), and prints each change instead of making it.
pub struct DryRun {
    endpoint: String,
    real: Option<CriClient>,
}

impl DryRun {
    /// A twin for `endpoint`, reading through `real` when given.
    pub fn new(endpoint: &str, real: Option<CriClient>) -> Self {
        DryRun {
            endpoint: endpoint.to_string(),
            real,
        }
    }
}

impl Runtime for DryRun {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn is_running(&self) -> Result<(), CriError> {
        match &self.real {
            Some(r) => r.is_running(),
            None => Ok(()),
        }
    }

    fn sandbox_image(&self) -> Result<String, CriError> {
        match &self.real {
            Some(r) => r.sandbox_image(),
            None => Err(CriError::Connect {
                endpoint: self.endpoint.clone(),
                message: "dry run without a reachable runtime".into(),
            }),
        }
    }

    fn image_exists(&self, image: &str) -> Result<bool, CriError> {
        match &self.real {
            Some(r) => r.image_exists(image),
            None => Ok(false),
        }
    }

    fn pull_image(&self, image: &str) -> Result<(), CriError> {
        println!(
            "[dryrun] Would pull image {image} through the container runtime at {}",
            self.endpoint
        );
        Ok(())
    }

    fn list_pod_sandboxes(&self) -> Result<Vec<Sandbox>, CriError> {
        match &self.real {
            Some(r) => r.list_pod_sandboxes(),
            None => {
                println!(
                    "[dryrun] Would list the Pod sandboxes of the container runtime at {} (it does not answer now)",
                    self.endpoint
                );
                Ok(vec![])
            }
        }
    }

    fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        println!(
            "[dryrun] Would stop and remove Pod sandbox {id} through the container runtime at {}",
            self.endpoint
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_are_read_from_the_reference() {
        assert_eq!(
            registry_of("registry.k8s.io/kube-apiserver:v1.33.0"),
            "registry.k8s.io"
        );
        assert_eq!(
            registry_of("127.0.0.1:5000/k8s/pause:3.10"),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_of("localhost/pause:3.10"), "localhost");
        assert_eq!(registry_of("library/busybox"), "docker.io");
        assert_eq!(registry_of("busybox"), "docker.io");
    }

    #[test]
    fn endpoints_must_be_unix_sockets() {
        assert_eq!(
            socket_path("unix:///run/containerd/containerd.sock").unwrap(),
            "/run/containerd/containerd.sock"
        );
        assert_eq!(
            socket_path("/run/crio/crio.sock").unwrap(),
            "/run/crio/crio.sock"
        );
        assert!(socket_path("tcp://127.0.0.1:1234").is_err());
        assert!(socket_path("npipe:////./pipe/containerd").is_err());
    }

    #[test]
    fn pull_policies_parse_as_the_config_spells_them() {
        assert_eq!(PullPolicy::parse(""), Some(PullPolicy::IfNotPresent));
        assert_eq!(PullPolicy::parse("Always"), Some(PullPolicy::Always));
        assert_eq!(PullPolicy::parse("Never"), Some(PullPolicy::Never));
        assert_eq!(PullPolicy::parse("always"), None);
    }
}
