//! `kubeadm version`.

use serde::Serialize;

use crate::cli::{VersionArgs, VersionFormat};
use crate::error::{Error, Result};

/// The version information upstream prints (`version.Info`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    major: String,
    minor: String,
    git_version: String,
    git_commit: String,
    git_tree_state: String,
    build_date: String,
    go_version: String,
    compiler: String,
    platform: String,
}

fn info() -> Info {
    // We report the newest Kubernetes minor we implement, so that tools comparing kubeadm's
    // version with the cluster's see what this binary can deploy.
    let v = kubeadm_api::version::default_version();
    Info {
        major: v.major.to_string(),
        minor: v.minor.to_string(),
        git_version: format!("v{}.{}.0", v.major, v.minor),
        git_commit: format!("kubeadm-rs-{}", env!("CARGO_PKG_VERSION")),
        git_tree_state: "clean".into(),
        build_date: String::new(),
        go_version: String::new(),
        compiler: "rustc".into(),
        platform: format!("{}/{}", std::env::consts::OS, go_arch()),
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Prints the version in the requested format.
pub fn run(args: VersionArgs) -> Result<()> {
    let info = info();
    match args.output {
        None => println!(
            "kubeadm version: &version.Info{{Major:{:?}, Minor:{:?}, GitVersion:{:?}, GitCommit:{:?}, GitTreeState:{:?}, BuildDate:{:?}, GoVersion:{:?}, Compiler:{:?}, Platform:{:?}}}",
            info.major,
            info.minor,
            info.git_version,
            info.git_commit,
            info.git_tree_state,
            info.build_date,
            info.go_version,
            info.compiler,
            info.platform
        ),
        Some(VersionFormat::Short) => println!("{}", info.git_version),
        Some(VersionFormat::Json) => {
            let v = serde_json::json!({ "clientVersion": info });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| Error::msg(e.to_string()))?
            );
        }
        Some(VersionFormat::Yaml) => {
            let v = serde_json::json!({ "clientVersion": info });
            print!("{}", kubeadm_api::encode::to_yaml(&v)?);
        }
    }
    Ok(())
}
