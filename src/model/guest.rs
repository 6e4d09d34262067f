//! What a guest says about itself through the Quantix guest agent (`quantix-agent`): its
//! hostname and IP addresses. Guests are not trusted: a report is parsed from one bounded
//! JSON line and every field is checked before it can reach the replicated state.
//! Pure; used by `agent::guest` (parsing) and `state::guest` (storing).

use serde::{Deserialize, Serialize};

use super::UnixMillis;

/// Longest line a guest may send; longer ones are dropped.
pub const MAX_LINE: usize = 4096;
pub const MAX_ADDRESSES: usize = 32;
const MAX_HOSTNAME: usize = 253;
const MAX_AGENT: usize = 64;
/// The report format this build reads.
pub const FORMAT: u32 = 1;

/// A guest's own view, as last reported by its host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInfo {
    pub hostname: String,
    /// IP addresses (v4 and v6), sorted.
    pub addresses: Vec<String>,
    /// The agent's name and version, e.g. "quantix-agent 0.1.0".
    pub agent: String,
    /// When the host recorded it.
    pub at: UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuestError {
    #[error("guest report is longer than {MAX_LINE} bytes")]
    TooLong,
    #[error("guest report is not JSON: {0}")]
    Json(String),
    #[error("guest report has format {0}; this host reads format {FORMAT}")]
    Format(u32),
    #[error("guest report: {0}")]
    Field(String),
}

#[derive(Deserialize)]
struct Wire {
    format: u32,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    addresses: Vec<String>,
}

/// Parses and checks one line from a guest (without `at`, which the host sets).
pub fn parse_report(line: &str) -> Result<GuestInfo, GuestError> {
    if line.len() > MAX_LINE {
        return Err(GuestError::TooLong);
    }
    let w: Wire = serde_json::from_str(line.trim()).map_err(|e| GuestError::Json(e.to_string()))?;
    if w.format != FORMAT {
        return Err(GuestError::Format(w.format));
    }
    let info = GuestInfo {
        hostname: w.hostname,
        addresses: w.addresses,
        agent: w.agent,
        at: 0,
    };
    info.validate()?;
    let mut info = info;
    info.addresses.sort();
    info.addresses.dedup();
    Ok(info)
}

impl GuestInfo {
    /// Checks every field (also in apply: a report reaches the state only through its host).
    pub fn validate(&self) -> Result<(), GuestError> {
        let field = |m: String| Err(GuestError::Field(m));
        if self.hostname.len() > MAX_HOSTNAME
            || !self
                .hostname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return field(format!(
                "hostname must be at most {MAX_HOSTNAME} letters, digits, '-' or '.'"
            ));
        }
        if self.agent.len() > MAX_AGENT || self.agent.chars().any(|c| c.is_control()) {
            return field(format!(
                "agent must be at most {MAX_AGENT} printable characters"
            ));
        }
        if self.addresses.len() > MAX_ADDRESSES {
            return field(format!("at most {MAX_ADDRESSES} addresses"));
        }
        for a in &self.addresses {
            if a.parse::<std::net::IpAddr>().is_err() {
                return field(format!("'{}' is not an IP address", a.escape_debug()));
            }
        }
        Ok(())
    }

    /// Same content, whenever it was recorded.
    pub fn same_as(&self, other: &GuestInfo) -> bool {
        self.hostname == other.hostname
            && self.addresses == other.addresses
            && self.agent == other.agent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_table() {
        let ok = parse_report(
            r#"{"format":1,"agent":"quantix-agent 0.1.0","hostname":"web1","addresses":["10.0.2.15","fe80::1","10.0.2.15"]}"#,
        )
        .unwrap();
        assert_eq!(ok.hostname, "web1");
        assert_eq!(ok.addresses, vec!["10.0.2.15", "fe80::1"]);
        let cases = [
            ("{", "not JSON"),
            (r#"{"format":2}"#, "has format 2"),
            (r#"{"format":1,"hostname":"a b"}"#, "hostname must be"),
            (
                r#"{"format":1,"addresses":["300.1.1.1"]}"#,
                "'300.1.1.1' is not an IP",
            ),
            (r#"{"format":1,"agent":"x\u0007"}"#, "agent must be"),
        ];
        for (line, want) in cases {
            let e = parse_report(line).unwrap_err().to_string();
            assert!(e.contains(want), "{line}: {e}");
        }
        let long = format!(r#"{{"format":1,"hostname":"{}"}}"#, "a".repeat(MAX_LINE));
        assert_eq!(parse_report(&long), Err(GuestError::TooLong));
        let many: Vec<String> = (0..40).map(|i| format!("\"10.0.0.{i}\"")).collect();
        let line = format!(r#"{{"format":1,"addresses":[{}]}}"#, many.join(","));
        assert!(parse_report(&line)
            .unwrap_err()
            .to_string()
            .contains("at most 32"));
    }
}
