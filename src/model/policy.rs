//! The cluster's placement policy: overcommit ratios, spread or pack, and score weights.
//! Replicated (one record in the state), because `apply` re-checks every placement's capacity
//! with the same ratios the leader used. Ratios and weights are stored in hundredths as
//! integers, so the record is `Eq`, compares byte for byte, and prints without float noise.
//! May use: nothing of ours.

use serde::{Deserialize, Serialize};

/// Largest overcommit ratio accepted (×100). Beyond 32:1 the input is a typo.
pub const MAX_RATIO_X100: u32 = 3_200;
/// Largest score weight accepted (×100).
pub const MAX_WEIGHT_X100: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Prefer the emptiest host (the default; like Proxmox's and vSphere's balancing).
    Spread,
    /// Prefer the fullest host that still fits (to keep hosts free for large VMs or power-off).
    Pack,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Spread => "spread",
            Strategy::Pack => "pack",
        }
    }

    pub fn parse(s: &str) -> Result<Strategy, PolicyError> {
        match s {
            "spread" => Ok(Strategy::Spread),
            "pack" => Ok(Strategy::Pack),
            other => Err(PolicyError::Strategy(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementPolicy {
    /// Virtual CPUs per physical CPU, ×100 (400 = 4:1).
    pub cpu_overcommit_x100: u32,
    /// Memory handed out per MiB of physical memory, ×100 (100 = no overcommit).
    pub memory_overcommit_x100: u32,
    pub strategy: Strategy,
    /// Weight of "the host already holds the VM's image", ×100.
    pub weight_image_locality_x100: u32,
    /// Weight of keeping CPU and memory use even on a host, ×100.
    pub weight_balance_x100: u32,
    /// Weight of the spread (or pack) preference, ×100.
    pub weight_spread_x100: u32,
}

impl Default for PlacementPolicy {
    /// Spread; CPUs overcommitted 4:1; memory not overcommitted.
    fn default() -> Self {
        PlacementPolicy {
            cpu_overcommit_x100: 400,
            memory_overcommit_x100: 100,
            strategy: Strategy::Spread,
            weight_image_locality_x100: 50,
            weight_balance_x100: 25,
            weight_spread_x100: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{field} must be between 0.10 and {:.2} (got {:.2})", f64::from(MAX_RATIO_X100) / 100.0, f64::from(*got) / 100.0)]
    Ratio { field: &'static str, got: u32 },
    #[error("{field} must be between 0 and {:.2} (got {:.2})", f64::from(MAX_WEIGHT_X100) / 100.0, f64::from(*got) / 100.0)]
    Weight { field: &'static str, got: u32 },
    #[error("{field} must be a number such as 1.5 (got '{got}')")]
    Number { field: &'static str, got: String },
    #[error("strategy must be 'spread' or 'pack' (got '{0}')")]
    Strategy(String),
}

impl PlacementPolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (field, got) in [
            ("cpu_overcommit", self.cpu_overcommit_x100),
            ("memory_overcommit", self.memory_overcommit_x100),
        ] {
            if !(10..=MAX_RATIO_X100).contains(&got) {
                return Err(PolicyError::Ratio { field, got });
            }
        }
        for (field, got) in [
            ("weight_image_locality", self.weight_image_locality_x100),
            ("weight_balance", self.weight_balance_x100),
            ("weight_spread", self.weight_spread_x100),
        ] {
            if got > MAX_WEIGHT_X100 {
                return Err(PolicyError::Weight { field, got });
            }
        }
        Ok(())
    }
}

/// Hundredths from a number as a user writes it ("4", "1.5", "0.25"); names `field` on error.
/// More than two decimals, signs and exponents are refused rather than rounded.
pub fn parse_x100(field: &'static str, s: &str) -> Result<u32, PolicyError> {
    let bad = || PolicyError::Number {
        field,
        got: s.to_string(),
    };
    let (int, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    let digits = |d: &str| !d.is_empty() && d.len() <= 6 && d.chars().all(|c| c.is_ascii_digit());
    let dangling_dot = s.trim().ends_with('.');
    if dangling_dot || !digits(int) || frac.len() > 2 || !(frac.is_empty() || digits(frac)) {
        return Err(bad());
    }
    let int: u32 = int.parse().map_err(|_| bad())?;
    let frac: u32 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    Ok(int * 100 + frac)
}

/// "4", "1.5", "0.25": hundredths printed without trailing zeros.
pub fn format_x100(v: u32) -> String {
    match v % 100 {
        0 => format!("{}", v / 100),
        f if f % 10 == 0 => format!("{}.{}", v / 100, f / 10),
        f => format!("{}.{f:02}", v / 100),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_and_print() {
        for (s, v) in [
            ("4", 400),
            ("1.5", 150),
            ("0.25", 25),
            ("32", 3200),
            ("1.05", 105),
        ] {
            assert_eq!(parse_x100("x", s), Ok(v), "{s}");
            assert_eq!(format_x100(v), s);
        }
        for bad in ["", "-1", "1.234", "abc", "1e3", ".5", "1.", "9999999"] {
            let e = parse_x100("cpu_overcommit", bad).unwrap_err();
            assert!(e.to_string().contains("cpu_overcommit"), "{bad}: {e}");
        }
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(PlacementPolicy::default().validate(), Ok(()));
        type Edit = fn(&mut PlacementPolicy);
        let cases: Vec<(Edit, &str)> = vec![
            (
                |p| p.cpu_overcommit_x100 = 0,
                "cpu_overcommit must be between 0.10 and 32.00 (got 0.00)",
            ),
            (|p| p.memory_overcommit_x100 = 5000, "memory_overcommit"),
            (
                |p| p.weight_balance_x100 = 20_000,
                "weight_balance must be between 0 and 100.00",
            ),
        ];
        for (edit, want) in cases {
            let mut p = PlacementPolicy::default();
            edit(&mut p);
            let e = p.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(Strategy::parse("fill")
            .unwrap_err()
            .to_string()
            .contains("'fill'"));
    }
}
