//! [`CriClient`]: the CRI v1 calls over one HTTP/2 connection on the runtime's unix socket.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use kubeadm_grpc::{CallError, Channel};

use crate::proto::*;
use crate::{
    CriError, DEFAULT_TIMEOUT, PULL_IMAGE_RETRY, REMOVE_CONTAINER_RETRY, Runtime, Sandbox,
    registry_of,
};

const RUNTIME: &str = "/runtime.v1.RuntimeService/";
const IMAGES: &str = "/runtime.v1.ImageService/";

/// A connected CRI client. Calls block; it may be shared between threads (parallel pulls
/// multiplex on the one connection).
pub struct CriClient {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    endpoint: String,
    timeout: Duration,
    version: VersionResponse,
}

impl CriClient {
    /// Connects to `socket` (the host path of `endpoint`, already resolved under the root) and
    /// asks the runtime's version: something that does not answer the CRI v1 `Version` call is
    /// refused here, with what it answered.
    pub fn connect(endpoint: &str, socket: &Path) -> Result<CriClient, CriError> {
        Self::connect_timeout(endpoint, socket, DEFAULT_TIMEOUT)
    }

    /// [`CriClient::connect`] with `timeout` for the connection and every call but pulls.
    pub fn connect_timeout(
        endpoint: &str,
        socket: &Path,
        timeout: Duration,
    ) -> Result<CriClient, CriError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| CriError::Connect {
                endpoint: endpoint.to_string(),
                message: format!("cannot start the I/O runtime: {e}"),
            })?;
        let connect_error = |message: String| CriError::Connect {
            endpoint: endpoint.to_string(),
            message,
        };
        let channel = runtime.block_on(async {
            let stream =
                tokio::time::timeout(DEFAULT_TIMEOUT, tokio::net::UnixStream::connect(socket))
                    .await
                    .map_err(|_| {
                        connect_error(format!("no connection within {DEFAULT_TIMEOUT:?}"))
                    })?
                    .map_err(|e| connect_error(e.to_string()))?;
            tokio::time::timeout(timeout, Channel::handshake(stream, "localhost"))
                .await
                .map_err(|_| CriError::NotCri {
                    endpoint: endpoint.to_string(),
                    message: format!("no HTTP/2 handshake within {timeout:?}"),
                })?
                .map_err(|e| CriError::NotCri {
                    endpoint: endpoint.to_string(),
                    message: e.to_string(),
                })
        })?;
        let mut client = CriClient {
            runtime,
            channel,
            endpoint: endpoint.to_string(),
            timeout,
            version: VersionResponse::default(),
        };
        let version: VersionResponse = client
            .call(
                RUNTIME,
                "Version",
                &VersionRequest {
                    version: "v1".into(),
                },
            )
            .map_err(|e| match e {
                CriError::Call { message, .. } => CriError::NotCri {
                    endpoint: endpoint.to_string(),
                    message,
                },
                other => other,
            })?;
        if version.runtime_name.is_empty() {
            return Err(CriError::NotCri {
                endpoint: endpoint.to_string(),
                message: "its VersionResponse names no runtime".into(),
            });
        }
        client.version = version;
        Ok(client)
    }

    /// The runtime's name and version (`containerd`, `1.6.20`) and its CRI API version.
    pub fn version(&self) -> (&str, &str, &str) {
        (
            &self.version.runtime_name,
            &self.version.runtime_version,
            &self.version.runtime_api_version,
        )
    }

    fn block<F: Future>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
    }

    fn call_error(&self, method: &str, e: CallError) -> CriError {
        CriError::Call {
            endpoint: self.endpoint.clone(),
            method: method.to_string(),
            message: e.to_string(),
        }
    }

    fn call_with<Req, Resp>(
        &self,
        service: &str,
        method: &str,
        req: &Req,
        timeout: Option<Duration>,
    ) -> Result<Resp, CriError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        let path = format!("{service}{method}");
        let name = format!(
            "{}/{method}",
            service.trim_matches('/').trim_start_matches("runtime.v1.")
        );
        let fut = self.channel.unary::<Req, Resp>(&path, req, &[]);
        let out = match timeout {
            Some(t) => self.block(async {
                tokio::time::timeout(t, fut).await.unwrap_or_else(|_| {
                    Err(CallError::Transport(format!("no answer within {t:?}")))
                })
            }),
            None => self.block(fut),
        };
        out.map_err(|e| self.call_error(&name, e))
    }

    fn call<Req, Resp>(&self, service: &str, method: &str, req: &Req) -> Result<Resp, CriError>
    where
        Req: prost::Message,
        Resp: prost::Message + Default,
    {
        self.call_with(service, method, req, Some(self.timeout))
    }

    /// `RuntimeService/Status` (verbose: with the `info` map).
    pub fn status(&self, verbose: bool) -> Result<StatusResponse, CriError> {
        self.call(RUNTIME, "Status", &StatusRequest { verbose })
    }

    /// Every image the runtime holds.
    pub fn list_images(&self) -> Result<Vec<Image>, CriError> {
        let r: ListImagesResponse = self.call(IMAGES, "ListImages", &ListImagesRequest {})?;
        Ok(r.images)
    }

    /// Removes an image (absent is fine, as the CRI says).
    pub fn remove_image(&self, image: &str) -> Result<(), CriError> {
        let _: Empty = self.call(
            IMAGES,
            "RemoveImage",
            &RemoveImageRequest {
                image: Some(ImageSpec {
                    image: image.to_string(),
                }),
            },
        )?;
        Ok(())
    }

    /// Creates and starts a Pod sandbox; its id.
    pub fn run_pod_sandbox(&self, config: PodSandboxConfig) -> Result<String, CriError> {
        // Starting a sandbox may pull the pause image first: no short timeout.
        let r: RunPodSandboxResponse = self.call_with(
            RUNTIME,
            "RunPodSandbox",
            &RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            },
            Some(Duration::from_secs(120)),
        )?;
        Ok(r.pod_sandbox_id)
    }

    fn sandbox_call(&self, method: &str, id: &str) -> Result<(), CriError> {
        let _: Empty = self.call_with(
            RUNTIME,
            method,
            &PodSandboxIdRequest {
                pod_sandbox_id: id.to_string(),
            },
            // Stopping waits for the sandbox's processes to end.
            Some(Duration::from_secs(30)),
        )?;
        Ok(())
    }
}

impl Runtime for CriClient {
    fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn is_running(&self) -> Result<(), CriError> {
        let status = self.status(false)?;
        for c in status.status.unwrap_or_default().conditions {
            if c.r#type == "RuntimeReady" && !c.status {
                return Err(CriError::NotReady {
                    endpoint: self.endpoint.clone(),
                    condition: c.r#type,
                    reason: c.reason,
                    message: c.message,
                });
            }
        }
        Ok(())
    }

    fn sandbox_image(&self) -> Result<String, CriError> {
        let status = self.status(true)?;
        let fail = |message: String| CriError::Call {
            endpoint: self.endpoint.clone(),
            method: "RuntimeService/Status".into(),
            message,
        };
        let config = status
            .info
            .get("config")
            .ok_or_else(|| fail("no 'config' field in CRI info".into()))?;
        let v: serde_json::Value = serde_json::from_str(config)
            .map_err(|e| fail(format!("failed to unmarshal CRI info config: {e}")))?;
        match v.get("sandboxImage").and_then(|s| s.as_str()) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(fail("no 'sandboxImage' field in CRI info config".into())),
        }
    }

    fn image_exists(&self, image: &str) -> Result<bool, CriError> {
        let r: ImageStatusResponse = self.call(
            IMAGES,
            "ImageStatus",
            &ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.to_string(),
                }),
                verbose: false,
            },
        )?;
        Ok(r.image.is_some())
    }

    fn pull_image(&self, image: &str) -> Result<(), CriError> {
        let req = PullImageRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
            }),
        };
        let mut last = String::new();
        for attempt in 1..=PULL_IMAGE_RETRY {
            // As upstream, a pull has no deadline (large images on slow links).
            match self.call_with::<_, PullImageResponse>(IMAGES, "PullImage", &req, None) {
                Ok(_) => return Ok(()),
                Err(CriError::Call { message, .. }) => {
                    tracing::debug!(image, attempt, error = %message, "pull failed");
                    last = message;
                }
                Err(other) => return Err(other),
            }
        }
        Err(CriError::Pull {
            image: image.to_string(),
            registry: registry_of(image),
            endpoint: self.endpoint.clone(),
            message: format!("{last} (tried {PULL_IMAGE_RETRY} times)"),
        })
    }

    fn list_pod_sandboxes(&self) -> Result<Vec<Sandbox>, CriError> {
        let r: ListPodSandboxResponse =
            self.call(RUNTIME, "ListPodSandbox", &ListPodSandboxRequest {})?;
        Ok(r.items
            .into_iter()
            .map(|p| {
                let m = p.metadata.unwrap_or_default();
                Sandbox {
                    id: p.id,
                    pod: format!("{}/{}", m.namespace, m.name),
                    ready: p.state == 0,
                }
            })
            .collect())
    }

    fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let mut last = None;
        for _ in 0..REMOVE_CONTAINER_RETRY {
            tracing::debug!(id, "removing Pod sandbox");
            if let Err(e) = self.sandbox_call("StopPodSandbox", id) {
                last = Some(e);
                continue;
            }
            if let Err(e) = self.sandbox_call("RemovePodSandbox", id) {
                last = Some(e);
                continue;
            }
            return Ok(());
        }
        Err(last.unwrap_or_else(|| CriError::Call {
            endpoint: self.endpoint.clone(),
            method: "RuntimeService/RemovePodSandbox".into(),
            message: format!("failed to remove pod {id}"),
        }))
    }
}
