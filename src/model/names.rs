//! Name rules shared by every entity: DNS-label-like names for hosts (and later VMs), and the
//! segment rule for folder names. Errors name the field and the rule that was broken.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} '{value}' is longer than {max} characters")]
    TooLong {
        field: &'static str,
        value: String,
        max: usize,
    },
    #[error("{field} '{value}' may contain only {allowed}")]
    BadChar {
        field: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("{field} '{value}' must start and end with a letter or digit")]
    BadEdge { field: &'static str, value: String },
    #[error("{field} '{value}' must start with '/' (an absolute path such as /prod/web)")]
    NotAbsolute { field: &'static str, value: String },
    #[error("{field} '{value}' has an empty segment (double '/' or a trailing '/')")]
    EmptySegment { field: &'static str, value: String },
    #[error("{field} '{value}' uses the reserved segment '{segment}'")]
    Reserved {
        field: &'static str,
        value: String,
        segment: String,
    },
}

/// Longest DNS label.
pub const MAX_LABEL: usize = 63;

/// A DNS label: 1–63 of `a-z`, `0-9` and `-`, starting and ending with a letter or digit.
/// Lower case only, so a name maps to exactly one libvirt domain and one DNS name.
pub fn validate_label(field: &'static str, value: &str) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty { field });
    }
    if value.len() > MAX_LABEL {
        return Err(NameError::TooLong {
            field,
            value: value.to_string(),
            max: MAX_LABEL,
        });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(NameError::BadChar {
            field,
            value: value.to_string(),
            allowed: "lower-case letters, digits and '-'",
        });
    }
    let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = value.as_bytes();
    if !edge_ok(bytes[0]) || !edge_ok(bytes[bytes.len() - 1]) {
        return Err(NameError::BadEdge {
            field,
            value: value.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let cases: &[(&str, bool)] = &[
            ("host1", true),
            ("a", true),
            ("web-01", true),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("Host1", false),
            ("a_b", false),
            ("a.b", false),
            (&"x".repeat(63), true),
            (&"x".repeat(64), false),
        ];
        for (name, ok) in cases {
            assert_eq!(validate_label("name", name).is_ok(), *ok, "{name:?}");
        }
    }

    #[test]
    fn errors_name_field_and_rule() {
        let e = validate_label("host name", "Bad_Name")
            .unwrap_err()
            .to_string();
        assert!(e.contains("host name") && e.contains("lower-case"), "{e}");
    }
}
