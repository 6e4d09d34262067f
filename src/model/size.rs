//! Sizes as users type them: a plain number is MiB (`2048`), or a number with a unit
//! (`512MiB`, `2GiB`, `1.5TiB`, `10G`). Decimal units (`GB`) are refused rather than guessed.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SizeError {
    #[error("{field} '{value}' is not a size: use a number of MiB (2048) or a number with a unit (512MiB, 2GiB, 1TiB)")]
    Syntax { field: &'static str, value: String },
    #[error("{field} '{value}': unit '{unit}' is ambiguous; use MiB, GiB or TiB (powers of 1024)")]
    DecimalUnit {
        field: &'static str,
        value: String,
        unit: String,
    },
    #[error("{field} '{value}' is too large")]
    TooLarge { field: &'static str, value: String },
}

/// Parses a size into MiB (rounded up to whole MiB).
pub fn parse_mib(field: &'static str, value: &str) -> Result<u64, SizeError> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let syntax = || SizeError::Syntax {
        field,
        value: value.to_string(),
    };
    if num.is_empty() {
        return Err(syntax());
    }
    let n: f64 = num.parse().map_err(|_| syntax())?;
    let factor: f64 = match unit.trim() {
        "" | "M" | "Mi" | "MiB" => 1.0,
        "K" | "Ki" | "KiB" => 1.0 / 1024.0,
        "G" | "Gi" | "GiB" => 1024.0,
        "T" | "Ti" | "TiB" => 1024.0 * 1024.0,
        u @ ("KB" | "MB" | "GB" | "TB") => {
            return Err(SizeError::DecimalUnit {
                field,
                value: value.to_string(),
                unit: u.to_string(),
            })
        }
        _ => return Err(syntax()),
    };
    let mib = (n * factor).ceil();
    if !mib.is_finite() || mib > (u64::MAX / 2) as f64 {
        return Err(SizeError::TooLarge {
            field,
            value: value.to_string(),
        });
    }
    Ok(mib as u64)
}

/// `2048` -> `2 GiB`, `1536` -> `1.5 GiB`, `512` -> `512 MiB`.
pub fn format_mib(mib: u64) -> String {
    if mib >= 1024 * 1024 && mib % (1024 * 1024 / 4) == 0 {
        format!("{} TiB", trim(mib as f64 / (1024.0 * 1024.0)))
    } else if mib >= 1024 && mib % 256 == 0 {
        format!("{} GiB", trim(mib as f64 / 1024.0))
    } else {
        format!("{mib} MiB")
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("2048", Some(2048)),
            ("512MiB", Some(512)),
            ("2GiB", Some(2048)),
            ("2G", Some(2048)),
            ("1.5GiB", Some(1536)),
            ("1TiB", Some(1024 * 1024)),
            ("1024KiB", Some(1)),
            ("1KiB", Some(1)),
            (" 4 GiB ", Some(4096)),
            ("", None),
            ("GiB", None),
            ("2XB", None),
            ("-1", None),
            ("2GB", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_mib("memory", input).ok(), *want, "{input:?}");
        }
        assert!(parse_mib("memory", "2GB")
            .unwrap_err()
            .to_string()
            .contains("ambiguous"));
        assert!(parse_mib("memory", "lots")
            .unwrap_err()
            .to_string()
            .starts_with("memory 'lots'"));
    }

    #[test]
    fn format_table() {
        assert_eq!(format_mib(2048), "2 GiB");
        assert_eq!(format_mib(1536), "1.5 GiB");
        assert_eq!(format_mib(512), "512 MiB");
        assert_eq!(format_mib(1000), "1000 MiB");
        assert_eq!(format_mib(1024 * 1024), "1 TiB");
    }
}
