//! Go `time.Duration` / `metav1.Duration` in its text form (`24h0m0s`, `90s`, `1.5h`).
//!
//! Hand-written because the format must round-trip exactly with Go: parsing accepts everything
//! `time.ParseDuration` accepts, and printing reproduces `Duration.String()` (`24h0m0s`, `1m30s`,
//! `500ms`, `0s`). No crate does both halves to the letter.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration with nanosecond resolution, printed and parsed like Go's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub i64);

const NS: i64 = 1;
const US: i64 = 1_000;
const MS: i64 = 1_000_000;
const SEC: i64 = 1_000_000_000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

impl Duration {
    /// A duration of `s` seconds.
    pub const fn from_secs(s: i64) -> Self {
        Duration(s * SEC)
    }

    /// A duration of `m` minutes.
    pub const fn from_mins(m: i64) -> Self {
        Duration(m * MIN)
    }

    /// A duration of `h` hours.
    pub const fn from_hours(h: i64) -> Self {
        Duration(h * HOUR)
    }

    /// Whole nanoseconds.
    pub fn as_nanos(self) -> i64 {
        self.0
    }

    /// As a `std::time::Duration` (negative durations become zero).
    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }

    /// Parses Go's duration syntax: an optional sign, then one or more decimal numbers each
    /// followed by a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`). `0` alone is allowed.
    pub fn parse(input: &str) -> Result<Self, String> {
        let err = || {
            format!("invalid duration {input:?}: expected e.g. \"24h0m0s\", \"90s\" or \"1.5h\"")
        };
        let (neg, mut s) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input.strip_prefix('+').unwrap_or(input)),
        };
        if s == "0" {
            return Ok(Duration(0));
        }
        if s.is_empty() {
            return Err(err());
        }
        let mut total: i128 = 0;
        while !s.is_empty() {
            let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let int_part = &s[..int_end];
            s = &s[int_end..];
            let mut frac_part = "";
            if let Some(rest) = s.strip_prefix('.') {
                let frac_end = rest
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len());
                frac_part = &rest[..frac_end];
                s = &rest[frac_end..];
            }
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(err());
            }
            let unit_end = s
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(s.len());
            let unit = match &s[..unit_end] {
                "ns" => NS,
                "us" | "µs" | "μs" => US,
                "ms" => MS,
                "s" => SEC,
                "m" => MIN,
                "h" => HOUR,
                _ => return Err(err()),
            };
            s = &s[unit_end..];
            let whole: i128 = if int_part.is_empty() {
                0
            } else {
                int_part.parse::<i128>().map_err(|_| err())?
            };
            let mut value = whole * unit as i128;
            if !frac_part.is_empty() {
                let digits = frac_part.len().min(18) as u32;
                let frac: i128 = frac_part[..digits as usize].parse().map_err(|_| err())?;
                value += frac * unit as i128 / 10i128.pow(digits);
            }
            total += value;
            if total > i64::MAX as i128 {
                return Err(format!("invalid duration {input:?}: out of range"));
            }
        }
        let total = total as i64;
        Ok(Duration(if neg { -total } else { total }))
    }
}

impl fmt::Display for Duration {
    /// Go's `Duration.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.0 < 0;
        let u = self.0.unsigned_abs();
        let sign = if neg { "-" } else { "" };
        if u == 0 {
            return f.write_str("0s");
        }
        if u < SEC as u64 {
            // Sub-second values use the largest unit that keeps an integer part.
            let (unit, div) = if u < US as u64 {
                ("ns", 1u64)
            } else if u < MS as u64 {
                ("µs", US as u64)
            } else {
                ("ms", MS as u64)
            };
            return write!(f, "{sign}{}{unit}", frac(u, div));
        }
        let hours = u / HOUR as u64;
        let rem = u % HOUR as u64;
        let mins = rem / MIN as u64;
        let secs = rem % MIN as u64;
        let secs_text = frac(secs, SEC as u64);
        if hours > 0 {
            write!(f, "{sign}{hours}h{mins}m{secs_text}s")
        } else if mins > 0 {
            write!(f, "{sign}{mins}m{secs_text}s")
        } else {
            write!(f, "{sign}{secs_text}s")
        }
    }
}

/// `v / div` with the fraction printed without trailing zeros, as Go does.
fn frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let rest = v % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = (div as f64).log10().round() as usize;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Duration::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_go() {
        for (ns, text) in [
            (0, "0s"),
            (HOUR * 24, "24h0m0s"),
            (MIN * 4, "4m0s"),
            (SEC * 90, "1m30s"),
            (MS * 500, "500ms"),
            (MS * 1500, "1.5s"),
            (HOUR * 87600, "87600h0m0s"),
            (-SEC, "-1s"),
            (1, "1ns"),
            (1500, "1.5µs"),
        ] {
            assert_eq!(Duration(ns).to_string(), text);
        }
    }

    #[test]
    fn parses_like_go() {
        for (text, ns) in [
            ("24h", HOUR * 24),
            ("24h0m0s", HOUR * 24),
            ("1.5h", HOUR + 30 * MIN),
            ("90s", 90 * SEC),
            ("0", 0),
            ("300ms", 300 * MS),
            ("1h1m1s", HOUR + MIN + SEC),
            ("-2m", -2 * MIN),
        ] {
            assert_eq!(Duration::parse(text), Ok(Duration(ns)), "{text}");
        }
        for bad in ["", "24", "1d", "h", "1.h2", "abc", "1hh"] {
            assert!(Duration::parse(bad).is_err(), "{bad}");
        }
    }
}
