//! Bootstrap tokens: `[a-z0-9]{6}.[a-z0-9]{16}`, the id before the dot and the secret after.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The regular expression upstream documents for a token, used in error messages.
pub const TOKEN_PATTERN: &str = r"\A([a-z0-9]{6})\.([a-z0-9]{16})\z";

/// The alphabet tokens are drawn from.
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// A well-formed bootstrap token. Its `Debug` form hides the secret so that tokens never reach
/// logs by accident; `Display` prints the whole token (for the join command, on purpose).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct BootstrapTokenString {
    id: String,
    secret: String,
}

impl BootstrapTokenString {
    /// Parses and validates `id.secret`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let err = || {
            format!(
                "the bootstrap token {:?} was not of the form {TOKEN_PATTERN:?}",
                redact(s)
            )
        };
        let (id, secret) = s.split_once('.').ok_or_else(err)?;
        let ok = |part: &str, len: usize| {
            part.len() == len
                && part
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        };
        if !ok(id, 6) || !ok(secret, 16) {
            return Err(err());
        }
        Ok(BootstrapTokenString {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }

    /// A new random token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, String> {
        let mut raw = [0u8; 22];
        getrandom::fill(&mut raw).map_err(|e| format!("cannot read random bytes: {e}"))?;
        // Rejection-free mapping: 256 is not a multiple of 36, so draw more bytes than needed and
        // reject the biased top of the range to keep every character equally likely.
        let mut out = Vec::with_capacity(22);
        let mut pool = raw.to_vec();
        while out.len() < 22 {
            if pool.is_empty() {
                let mut more = [0u8; 32];
                getrandom::fill(&mut more).map_err(|e| format!("cannot read random bytes: {e}"))?;
                pool.extend_from_slice(&more);
            }
            let b = pool.remove(0);
            if (b as usize) < 252 {
                out.push(ALPHABET[b as usize % 36]);
            }
        }
        let text = String::from_utf8_lossy(&out).into_owned();
        Ok(BootstrapTokenString {
            id: text[..6].to_string(),
            secret: text[6..].to_string(),
        })
    }

    /// The public token id (the part before the dot).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret part (after the dot).
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// True for the all-empty default value.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
}

/// Hides a would-be token's secret in error messages: only the id part is shown.
pub fn redact(s: &str) -> String {
    match s.split_once('.') {
        Some((id, _)) => format!("{id}.<redacted>"),
        None if s.len() > 6 => format!(
            "{}<redacted>",
            &s[..s.char_indices().nth(6).map_or(s.len(), |(i, _)| i)]
        ),
        None => s.to_string(),
    }
}

impl fmt::Display for BootstrapTokenString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

impl fmt::Debug for BootstrapTokenString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootstrapTokenString({}.<redacted>)", self.id)
    }
}

impl Serialize for BootstrapTokenString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for BootstrapTokenString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        BootstrapTokenString::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Validates a certificate key: 32 bytes as 64 hex characters.
pub fn validate_certificate_key(key: &str) -> Result<(), String> {
    if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "certificate key must be 64 hexadecimal characters (32 bytes), got {} characters",
            key.len()
        ));
    }
    Ok(())
}

/// A new random certificate key: 32 random bytes, hex encoded.
pub fn generate_certificate_key() -> Result<String, String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| format!("cannot read random bytes: {e}"))?;
    Ok(hex::encode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_and_rejects_invalid() {
        let t = BootstrapTokenString::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(t.id(), "abcdef");
        assert_eq!(t.secret(), "0123456789abcdef");
        for bad in [
            "",
            "abcdef",
            "abcdef.0123456789abcde",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdefg",
            "abcdef:0123456789abcdef",
        ] {
            assert!(BootstrapTokenString::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_tokens_are_valid_and_differ() {
        let a = BootstrapTokenString::generate().unwrap();
        let b = BootstrapTokenString::generate().unwrap();
        assert!(BootstrapTokenString::parse(&a.to_string()).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn debug_and_errors_hide_the_secret() {
        let t = BootstrapTokenString::parse("abcdef.0123456789abcdef").unwrap();
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
        let e = BootstrapTokenString::parse("abcdef.SECRETSECRETSECRET").unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
    }

    #[test]
    fn certificate_keys() {
        let k = generate_certificate_key().unwrap();
        assert!(validate_certificate_key(&k).is_ok());
        assert!(validate_certificate_key("abc").is_err());
        assert!(validate_certificate_key(&"g".repeat(64)).is_err());
    }
}
