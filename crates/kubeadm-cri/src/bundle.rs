//! Image bundles: OCI image-layout archives (`oci-layout`, `index.json`, `blobs/sha256/…` in
//! one tar) as `kubeadm config images export` writes them and `import` loads them, checked
//! before anything uses them: every blob's SHA-256 matches its name, every image named in
//! `index.json` has its manifest, config and layers in the archive with the declared sizes.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use aws_lc_rs::digest;
use serde::Deserialize;

/// Blobs up to this size are kept in memory while reading (manifests, indexes and configs
/// are a few KiB); larger ones are only hashed.
const KEEP_BELOW: u64 = 1 << 20;

/// A bundle that failed its checks.
#[derive(Debug, Clone, thiserror::Error)]
#[error("image bundle {file}: {message}")]
pub struct BundleError {
    /// The archive.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

impl kubeadm_errors::Hint for BundleError {
    fn hint(&self) -> Option<String> {
        Some("write the archive again with `kubeadm config images export --output FILE` and copy it whole (compare its sha256sum)".into())
    }
}

/// What a checked bundle holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// The image references it carries (from `index.json`'s annotations), in its order.
    pub images: Vec<String>,
    /// Number of blobs.
    pub blobs: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

#[derive(Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: HashMap<String, String>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

/// The annotations naming an image in `index.json` (containerd's, then OCI's).
const NAME_ANNOTATIONS: [&str; 2] = [
    "io.containerd.image.name",
    "org.opencontainers.image.ref.name",
];

fn is_index(media_type: &str) -> bool {
    media_type == "application/vnd.oci.image.index.v1+json"
        || media_type == "application/vnd.docker.distribution.manifest.list.v2+json"
}

/// Checks the archive at `path` (read from the invoking file system).
pub fn check(path: &Path) -> Result<Contents, BundleError> {
    let file = path.display().to_string();
    let fail = |message: String| BundleError {
        file: file.clone(),
        message,
    };
    let f = std::fs::File::open(path).map_err(|e| fail(format!("cannot open it: {e}")))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(f));
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let mut kept: HashMap<String, Vec<u8>> = HashMap::new();
    let mut index: Option<Vec<u8>> = None;
    let mut layout = false;
    let entries = archive
        .entries()
        .map_err(|e| fail(format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| fail(format!("broken tar archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| fail(format!("bad entry name: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        match name.as_str() {
            "oci-layout" => layout = true,
            "index.json" => {
                let mut buf = Vec::new();
                (&mut entry)
                    .take(KEEP_BELOW)
                    .read_to_end(&mut buf)
                    .map_err(|e| fail(format!("reading index.json: {e}")))?;
                index = Some(buf);
            }
            _ => {
                let Some(hex) = name.strip_prefix("blobs/sha256/") else {
                    continue;
                };
                let digest_name = format!("sha256:{hex}");
                let size = entry.header().size().unwrap_or(0);
                let mut ctx = digest::Context::new(&digest::SHA256);
                let mut keep = (size <= KEEP_BELOW).then(Vec::new);
                let mut buf = vec![0u8; 64 << 10];
                let mut total = 0u64;
                loop {
                    let n = entry
                        .read(&mut buf)
                        .map_err(|e| fail(format!("reading {name}: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    ctx.update(&buf[..n]);
                    if let Some(k) = keep.as_mut() {
                        k.extend_from_slice(&buf[..n]);
                    }
                    total += n as u64;
                }
                let got = hex_of(ctx.finish().as_ref());
                if got != hex {
                    return Err(fail(format!(
                        "blob {name} is corrupted: its SHA-256 is {got}"
                    )));
                }
                sizes.insert(digest_name.clone(), total);
                if let Some(k) = keep {
                    kept.insert(digest_name, k);
                }
            }
        }
    }
    if !layout {
        return Err(fail(
            "no oci-layout file: not an OCI image archive (make one with `kubeadm config images export`)".into(),
        ));
    }
    let index = index.ok_or_else(|| fail("no index.json".into()))?;
    let index: Index = serde_json::from_slice(&index)
        .map_err(|e| fail(format!("index.json is not an OCI index: {e}")))?;
    let present = |d: &Descriptor, what: &str| -> Result<(), BundleError> {
        match sizes.get(&d.digest) {
            None => Err(fail(format!("{what} {} is missing", d.digest))),
            Some(s) if *s != d.size => Err(fail(format!(
                "{what} {} has {s} bytes, {} declared",
                d.digest, d.size
            ))),
            Some(_) => Ok(()),
        }
    };
    let mut images = Vec::new();
    let mut seen = HashSet::new();
    for top in &index.manifests {
        let name = NAME_ANNOTATIONS
            .iter()
            .find_map(|a| top.annotations.get(*a))
            .cloned()
            .unwrap_or_else(|| top.digest.clone());
        present(top, &format!("the manifest of {name}"))?;
        let mut manifests = Vec::new();
        let body = kept
            .get(&top.digest)
            .ok_or_else(|| fail(format!("the manifest of {name} is too large")))?;
        if is_index(&top.media_type) {
            let inner: Index = serde_json::from_slice(body)
                .map_err(|e| fail(format!("the index of {name} does not parse: {e}")))?;
            // An export for one platform carries that platform's manifest only.
            for d in inner.manifests {
                if sizes.contains_key(&d.digest) {
                    manifests.push(d.digest);
                }
            }
            if manifests.is_empty() {
                return Err(fail(format!(
                    "no manifest of {name} for any platform is in the archive"
                )));
            }
        } else {
            manifests.push(top.digest.clone());
        }
        for m in manifests {
            let body = kept
                .get(&m)
                .ok_or_else(|| fail(format!("the manifest {m} of {name} is too large")))?;
            let man: Manifest = serde_json::from_slice(body)
                .map_err(|e| fail(format!("the manifest {m} of {name} does not parse: {e}")))?;
            present(&man.config, &format!("the config of {name}"))?;
            for l in &man.layers {
                present(l, &format!("a layer of {name}"))?;
            }
        }
        if seen.insert(name.clone()) {
            images.push(name);
        }
    }
    if images.is_empty() {
        return Err(fail("index.json names no image".into()));
    }
    Ok(Contents {
        images,
        blobs: sizes.len(),
        bytes: sizes.values().sum(),
    })
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> String {
        hex_of(digest::digest(&digest::SHA256, data).as_ref())
    }

    fn archive(entries: &[(&str, Vec<u8>)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(f.reopen().unwrap());
        for (name, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data.as_slice()).unwrap();
        }
        b.finish().unwrap();
        f
    }

    fn image() -> Vec<(String, Vec<u8>)> {
        let layer = b"layer bytes".to_vec();
        let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{}","size":{}}}]}}"#,
            sha(&config),
            config.len(),
            sha(&layer),
            layer.len()
        )
        .into_bytes();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":{},"annotations":{{"io.containerd.image.name":"example.test/pause:3.10"}}}}]}}"#,
            sha(&manifest),
            manifest.len()
        )
        .into_bytes();
        vec![
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index),
            (format!("blobs/sha256/{}", sha(&manifest)), manifest),
            (format!("blobs/sha256/{}", sha(&config)), config),
            (format!("blobs/sha256/{}", sha(&layer)), layer),
        ]
    }

    fn build(entries: &[(String, Vec<u8>)]) -> tempfile::NamedTempFile {
        let e: Vec<(&str, Vec<u8>)> = entries
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect();
        archive(&e)
    }

    #[test]
    fn a_whole_bundle_lists_its_images() {
        let f = build(&image());
        let c = check(f.path()).unwrap();
        assert_eq!(c.images, vec!["example.test/pause:3.10".to_string()]);
        assert_eq!(c.blobs, 3);
    }

    #[test]
    fn a_flipped_byte_is_refused_naming_the_blob() {
        let mut e = image();
        e[4].1[0] ^= 1;
        let f = build(&e);
        let err = check(f.path()).unwrap_err().to_string();
        assert!(err.contains("is corrupted"), "{err}");
        assert!(err.contains(&e[4].0), "{err}");
    }

    #[test]
    fn a_missing_layer_is_refused_naming_the_image() {
        let mut e = image();
        e.remove(4);
        let f = build(&e);
        let err = check(f.path()).unwrap_err().to_string();
        assert!(
            err.contains("a layer of example.test/pause:3.10") && err.contains("is missing"),
            "{err}"
        );
    }

    #[test]
    fn a_file_that_is_no_oci_archive_is_refused() {
        let f = archive(&[("hello.txt", b"hi".to_vec())]);
        let err = check(f.path()).unwrap_err().to_string();
        assert!(err.contains("no oci-layout"), "{err}");
        let g = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(g.path(), b"definitely not a tar archive, just text").unwrap();
        assert!(check(g.path()).is_err());
    }
}
