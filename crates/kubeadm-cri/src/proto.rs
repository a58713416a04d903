//! The CRI v1 messages kubeadm uses (package `runtime.v1` of `k8s.io/cri-api`'s `api.proto`),
//! declared by hand for prost with the published field numbers; fields kubeadm never sets or
//! reads are left out (protobuf skips unknown fields, so answers still decode).

use std::collections::HashMap;

/// `VersionRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionRequest {
    /// The kubelet's CRI API version (`v1`).
    #[prost(string, tag = "1")]
    pub version: String,
}

/// `VersionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionResponse {
    /// The CRI API version.
    #[prost(string, tag = "1")]
    pub version: String,
    /// The runtime's name (`containerd`, `cri-o`).
    #[prost(string, tag = "2")]
    pub runtime_name: String,
    /// The runtime's version.
    #[prost(string, tag = "3")]
    pub runtime_version: String,
    /// The runtime's API version.
    #[prost(string, tag = "4")]
    pub runtime_api_version: String,
}

/// `StatusRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {
    /// Ask for the `info` map (the runtime's configuration).
    #[prost(bool, tag = "1")]
    pub verbose: bool,
}

/// `RuntimeCondition`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeCondition {
    /// `RuntimeReady` or `NetworkReady`.
    #[prost(string, tag = "1")]
    pub r#type: String,
    /// Whether the condition holds.
    #[prost(bool, tag = "2")]
    pub status: bool,
    /// CamelCase reason.
    #[prost(string, tag = "3")]
    pub reason: String,
    /// Human-readable message.
    #[prost(string, tag = "4")]
    pub message: String,
}

/// `RuntimeStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeStatus {
    /// The conditions.
    #[prost(message, repeated, tag = "1")]
    pub conditions: Vec<RuntimeCondition>,
}

/// `StatusResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    /// The runtime's status.
    #[prost(message, optional, tag = "1")]
    pub status: Option<RuntimeStatus>,
    /// Verbose information (JSON values; containerd's `config` holds `sandboxImage`).
    #[prost(map = "string, string", tag = "2")]
    pub info: HashMap<String, String>,
}

/// `ImageSpec`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageSpec {
    /// The image reference.
    #[prost(string, tag = "1")]
    pub image: String,
}

/// `Image`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// The image id (`sha256:…` of its config).
    #[prost(string, tag = "1")]
    pub id: String,
    /// Tags.
    #[prost(string, repeated, tag = "2")]
    pub repo_tags: Vec<String>,
    /// Digests.
    #[prost(string, repeated, tag = "3")]
    pub repo_digests: Vec<String>,
    /// Size in bytes.
    #[prost(uint64, tag = "4")]
    pub size: u64,
}

/// `ImageStatusRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageStatusRequest {
    /// The image.
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
    /// Ask for extra information.
    #[prost(bool, tag = "2")]
    pub verbose: bool,
}

/// `ImageStatusResponse`: `image` is absent when the runtime does not have it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageStatusResponse {
    /// The image, when present.
    #[prost(message, optional, tag = "1")]
    pub image: Option<Image>,
}

/// `PullImageRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PullImageRequest {
    /// The image to pull.
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
}

/// `PullImageResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PullImageResponse {
    /// The pulled image's reference (its id or digest).
    #[prost(string, tag = "1")]
    pub image_ref: String,
}

/// `ListImagesRequest` (no filter).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListImagesRequest {}

/// `ListImagesResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListImagesResponse {
    /// The images.
    #[prost(message, repeated, tag = "1")]
    pub images: Vec<Image>,
}

/// `RemoveImageRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RemoveImageRequest {
    /// The image.
    #[prost(message, optional, tag = "1")]
    pub image: Option<ImageSpec>,
}

/// An empty answer (`StopPodSandboxResponse`, `RemovePodSandboxResponse`, `RemoveImageResponse`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `PodSandboxMetadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxMetadata {
    /// Pod name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Pod UID.
    #[prost(string, tag = "2")]
    pub uid: String,
    /// Pod namespace.
    #[prost(string, tag = "3")]
    pub namespace: String,
    /// Attempt number.
    #[prost(uint32, tag = "4")]
    pub attempt: u32,
}

/// `NamespaceMode` values.
pub mod namespace_mode {
    /// The Pod's own namespace.
    pub const POD: i32 = 0;
    /// The node's namespace (host network).
    pub const NODE: i32 = 2;
}

/// `NamespaceOption`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamespaceOption {
    /// Network namespace mode.
    #[prost(int32, tag = "1")]
    pub network: i32,
    /// PID namespace mode.
    #[prost(int32, tag = "2")]
    pub pid: i32,
    /// IPC namespace mode.
    #[prost(int32, tag = "3")]
    pub ipc: i32,
}

/// `LinuxSandboxSecurityContext` (namespaces only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxSandboxSecurityContext {
    /// The sandbox's namespaces.
    #[prost(message, optional, tag = "1")]
    pub namespace_options: Option<NamespaceOption>,
}

/// `LinuxPodSandboxConfig`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LinuxPodSandboxConfig {
    /// Parent cgroup.
    #[prost(string, tag = "1")]
    pub cgroup_parent: String,
    /// Security context.
    #[prost(message, optional, tag = "2")]
    pub security_context: Option<LinuxSandboxSecurityContext>,
}

/// `PodSandboxConfig`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxConfig {
    /// Metadata.
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<PodSandboxMetadata>,
    /// Hostname (empty with the node's network).
    #[prost(string, tag = "2")]
    pub hostname: String,
    /// Log directory.
    #[prost(string, tag = "3")]
    pub log_directory: String,
    /// Labels.
    #[prost(map = "string, string", tag = "6")]
    pub labels: HashMap<String, String>,
    /// Linux options.
    #[prost(message, optional, tag = "8")]
    pub linux: Option<LinuxPodSandboxConfig>,
}

/// `RunPodSandboxRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunPodSandboxRequest {
    /// The sandbox.
    #[prost(message, optional, tag = "1")]
    pub config: Option<PodSandboxConfig>,
    /// Runtime handler (empty: the default).
    #[prost(string, tag = "2")]
    pub runtime_handler: String,
}

/// `RunPodSandboxResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RunPodSandboxResponse {
    /// The new sandbox's id.
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}

/// `StopPodSandboxRequest` and `RemovePodSandboxRequest` (same shape).
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandboxIdRequest {
    /// The sandbox's id.
    #[prost(string, tag = "1")]
    pub pod_sandbox_id: String,
}

/// `ListPodSandboxRequest` (no filter: every sandbox, as upstream's reset lists them).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxRequest {}

/// `PodSandbox`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandbox {
    /// Id.
    #[prost(string, tag = "1")]
    pub id: String,
    /// Metadata.
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<PodSandboxMetadata>,
    /// `SANDBOX_READY` (0) or `SANDBOX_NOTREADY` (1).
    #[prost(int32, tag = "3")]
    pub state: i32,
    /// Labels.
    #[prost(map = "string, string", tag = "5")]
    pub labels: HashMap<String, String>,
}

/// `ListPodSandboxResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxResponse {
    /// The sandboxes.
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<PodSandbox>,
}
