//! Dates as kubeadm prints them, from Unix seconds, in UTC: one owner for the formats the
//! snapshot records, `certs check-expiration` and certificate errors share. Our code keeps
//! times as `jiff` values (the crate k8s-openapi's `Time` already uses); `time` stays behind
//! `kubeadm-pki`'s one conversion into rcgen.

use jiff::Timestamp;

/// `2026-01-02T03:04:05Z`; `None` for seconds outside the years -9999..=9999.
pub fn rfc3339(unix: i64) -> Option<String> {
    Timestamp::from_second(unix).ok().map(|t| t.to_string())
}

/// `Jan 02, 2027 03:04 UTC`, as upstream's `certs check-expiration` prints an expiry; `None`
/// out of range.
pub fn expiry(unix: i64) -> Option<String> {
    Timestamp::from_second(unix)
        .ok()
        .map(|t| t.strftime("%b %d, %Y %H:%M UTC").to_string())
}

/// The current time in Unix seconds.
pub fn now_unix() -> i64 {
    Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_upstreams() {
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(1_767_323_045).as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
        assert_eq!(
            expiry(1_798_859_040).as_deref(),
            Some("Jan 02, 2027 03:04 UTC")
        );
        assert_eq!(
            expiry(1_800_000_000).as_deref(),
            Some("Jan 15, 2027 08:00 UTC")
        );
        assert_eq!(rfc3339(i64::MAX), None);
        assert_eq!(expiry(i64::MIN), None);
    }
}
