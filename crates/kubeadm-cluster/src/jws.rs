//! The detached-payload compact JWS (HS256) the bootstrapsigner writes into cluster-info as
//! `jws-kubeconfig-<token-id>`, keyed with the token's secret part.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Signs `content`: `b64(header) + ".." + b64(HMAC-SHA256(secret, b64(header) + "." + b64(content)))`.
pub fn sign(content: &str, token_id: &str, token_secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{token_id}"}}"#));
    let payload = URL_SAFE_NO_PAD.encode(content);
    let key = hmac::Key::new(hmac::HMAC_SHA256, token_secret.as_bytes());
    let sig = hmac::sign(&key, format!("{header}.{payload}").as_bytes());
    format!("{header}..{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// True when `jws` is the signature of `content` with this token; compared in constant time.
pub fn verify(content: &str, jws: &str, token_id: &str, token_secret: &str) -> bool {
    let want = sign(content, token_id, token_secret);
    aws_lc_rs::constant_time::verify_slices_are_equal(want.as_bytes(), jws.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTENT: &str = "Hello from the other side. I must have called a thousand times.";
    const VECTOR: &str =
        "eyJhbGciOiJIUzI1NiIsImtpZCI6Impvc2h1YSJ9..VShe2taLd-YTrmWuRkcL_8QTNDHYxQIEBsAYYiIj1_8";

    #[test]
    fn upstream_vector() {
        assert_eq!(sign(CONTENT, "joshua", "my voice is my passcode"), VECTOR);
        assert!(verify(CONTENT, VECTOR, "joshua", "my voice is my passcode"));
    }

    #[test]
    fn rejects_wrong_secret_kid_and_content() {
        assert!(!verify(
            CONTENT,
            VECTOR,
            "joshua",
            "my voice is my passcodf"
        ));
        assert!(!verify(
            CONTENT,
            VECTOR,
            "joshub",
            "my voice is my passcode"
        ));
        assert!(!verify(
            "other",
            VECTOR,
            "joshua",
            "my voice is my passcode"
        ));
        assert!(!verify(CONTENT, "", "joshua", "my voice is my passcode"));
    }
}
