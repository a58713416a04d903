//! A read-only walk of a bbolt database file (etcd's backend, and what a snapshot holds): enough
//! to report a snapshot's revision and key count as `etcdutl snapshot status` does, and to
//! refuse a file whose pages do not hold together.
//!
//! Only reading: restore goes through `etcdutl`, so nothing here ever writes bbolt pages.
//! Layout (bbolt's `page.go`, `node.go`, `db.go`; little-endian as bbolt writes it on the
//! platforms Kubernetes runs on): every page starts with a 16-byte header (id, flags, count,
//! overflow); pages 0 and 1 are meta pages (the one with the higher transaction id and a
//! valid FNV-1a checksum wins); branch elements are (pos, ksize, pgid), leaf elements
//! (flags, pos, ksize, vsize), `pos` counted from the element itself; a leaf value flagged as a
//! bucket starts with the bucket's root page id, 0 meaning the bucket's page is inline in the value.

/// What a database holds, as `etcdutl snapshot status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbStatus {
    /// The newest main revision in etcd's `key` bucket (0 for an empty store).
    pub revision: i64,
    /// Keys over every bucket (etcdutl's `totalKey`).
    pub total_keys: u64,
}

const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const BRANCH: u16 = 0x01;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const BUCKET_LEAF: u32 = 0x01;
const MAGIC: u32 = 0xED0C_DAED;
/// Deeper than any real tree (bbolt splits at page size): a cycle in a corrupted file ends here.
const MAX_DEPTH: usize = 64;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

struct Db<'a> {
    data: &'a [u8],
    page_size: usize,
}

/// A valid meta page at `offset`: (txid, root page of the root bucket, page size).
fn meta_at(data: &[u8], offset: usize) -> Option<(u64, u64, usize)> {
    let page = data.get(offset..)?;
    if u16_at(page, 8)? & META == 0 {
        return None;
    }
    let m = page.get(PAGE_HEADER..PAGE_HEADER + 64)?;
    if u32_at(m, 0)? != MAGIC || u32_at(m, 4)? != 2 {
        return None;
    }
    if fnv1a64(&m[..56]) != u64_at(m, 56)? {
        return None;
    }
    let page_size = u32_at(m, 8)? as usize;
    Some((u64_at(m, 48)?, u64_at(m, 16)?, page_size))
}

impl<'a> Db<'a> {
    /// The bytes of page `id` with its overflow pages.
    fn page(&self, id: u64) -> Result<&'a [u8], String> {
        let start = usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_mul(self.page_size))
            .filter(|s| *s < self.data.len())
            .ok_or_else(|| format!("page {id} lies beyond the end of the file"))?;
        let head = &self.data[start..];
        let overflow = u32_at(head, 12).ok_or("truncated page header")? as usize;
        let len = (overflow + 1)
            .checked_mul(self.page_size)
            .ok_or("page too large")?;
        self.data
            .get(start..start + len)
            .ok_or_else(|| format!("page {id} (with {overflow} overflow pages) is truncated"))
    }

    /// Calls `leaf` for each (flags, key, value) of the tree rooted in `page`.
    fn walk(
        &self,
        page: &'a [u8],
        depth: usize,
        leaf: &mut dyn FnMut(u32, &'a [u8], &'a [u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("the page tree is deeper than any real database (a cycle?)".into());
        }
        let flags = u16_at(page, 8).ok_or("truncated page header")?;
        let count = u16_at(page, 10).ok_or("truncated page header")? as usize;
        for i in 0..count {
            let at = PAGE_HEADER + i * ELEMENT;
            let elem = page.get(at..at + ELEMENT).ok_or("truncated element")?;
            if flags & BRANCH != 0 {
                let child = u64_at(elem, 8).ok_or("truncated element")?;
                self.walk(self.page(child)?, depth + 1, leaf)?;
            } else if flags & LEAF != 0 {
                let eflags = u32_at(elem, 0).ok_or("truncated element")?;
                let pos = u32_at(elem, 4).ok_or("truncated element")? as usize;
                let ksize = u32_at(elem, 8).ok_or("truncated element")? as usize;
                let vsize = u32_at(elem, 12).ok_or("truncated element")? as usize;
                let k0 = at.checked_add(pos).ok_or("element out of range")?;
                let key = page.get(k0..k0 + ksize).ok_or("key out of range")?;
                let value = page
                    .get(k0 + ksize..k0 + ksize + vsize)
                    .ok_or("value out of range")?;
                leaf(eflags, key, value)?;
            } else {
                return Err(format!("unexpected page type {flags:#x} inside a tree"));
            }
        }
        Ok(())
    }

    /// The root page of a bucket whose header is `value`.
    fn bucket_root(&self, value: &'a [u8]) -> Result<&'a [u8], String> {
        let root = u64_at(value, 0).ok_or("truncated bucket header")?;
        if root == 0 {
            value
                .get(16..)
                .filter(|p| p.len() >= PAGE_HEADER)
                .ok_or_else(|| "truncated inline bucket".to_string())
        } else {
            self.page(root)
        }
    }
}

/// Reads revision and key count from a whole database file (without etcd's appended hash).
pub fn status(data: &[u8]) -> Result<DbStatus, String> {
    let first = meta_at(data, 0);
    let page_size = first
        .map(|m| m.2)
        .filter(|s| s.is_power_of_two() && *s >= 512)
        .or_else(|| {
            // Page 0 damaged: page 1 sits at the page size, which the common sizes cover.
            [4096usize, 8192, 16384, 65536]
                .into_iter()
                .find(|s| meta_at(data, *s).is_some())
        })
        .ok_or("no valid bbolt meta page (not an etcd database, or damaged)")?;
    let second = meta_at(data, page_size);
    let (_, root, _) = [first, second]
        .into_iter()
        .flatten()
        .max_by_key(|m| m.0)
        .ok_or("no valid bbolt meta page")?;
    let db = Db { data, page_size };
    let mut out = DbStatus {
        revision: 0,
        total_keys: 0,
    };
    let mut buckets: Vec<(&[u8], &[u8])> = Vec::new();
    db.walk(db.page(root)?, 0, &mut |flags, name, value| {
        if flags & BUCKET_LEAF != 0 {
            buckets.push((name, value));
        }
        Ok(())
    })?;
    for (name, header) in buckets {
        let is_key = name == b"key";
        let bucket = db.bucket_root(header)?;
        db.walk(bucket, 0, &mut |flags, k, _| {
            if flags & BUCKET_LEAF == 0 {
                out.total_keys += 1;
                // etcd's revision keys: 8-byte big-endian main revision, '_', sub revision.
                if is_key && let Some(main) = k.get(..8) {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(main);
                    out.revision = out.revision.max(i64::from_be_bytes(b));
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panicking() {
        assert!(status(&[]).is_err());
        assert!(status(&[0u8; 8192]).is_err());
        assert!(status(b"not a database at all").is_err());
        let mut noise = vec![0u8; 16384];
        for (i, b) in noise.iter_mut().enumerate() {
            *b = (i * 7919 % 251) as u8;
        }
        assert!(status(&noise).is_err());
    }

    #[test]
    fn fnv_matches_the_reference_vector() {
        // FNV-1a 64 of "a" (from the FNV reference).
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
