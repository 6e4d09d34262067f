//! The placement policy on the wire: decimal strings as people write them ("4", "1.5") both
//! ways, parsed exactly into the model's hundredths, and the partial update `SetPlacementPolicy`
//! carries. The record itself and its checks live in `model::policy`.

use crate::model::policy::{format_x100, parse_x100, PlacementPolicy, PolicyError, Strategy};
use crate::proto::v1;

pub(super) fn to_proto(p: &PlacementPolicy) -> v1::PlacementPolicy {
    v1::PlacementPolicy {
        cpu_overcommit: format_x100(p.cpu_overcommit_x100),
        memory_overcommit: format_x100(p.memory_overcommit_x100),
        strategy: p.strategy.as_str().into(),
        weight_image_locality: format_x100(p.weight_image_locality_x100),
        weight_balance: format_x100(p.weight_balance_x100),
        weight_spread: format_x100(p.weight_spread_x100),
    }
}

/// The knobs one `SetPlacementPolicy` call changes, parsed; `None` keeps the current value.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct PolicyEdit {
    cpu_overcommit: Option<u32>,
    memory_overcommit: Option<u32>,
    strategy: Option<Strategy>,
    weight_image_locality: Option<u32>,
    weight_balance: Option<u32>,
    weight_spread: Option<u32>,
}

fn x100(field: &'static str, v: &Option<String>) -> Result<Option<u32>, PolicyError> {
    v.as_deref().map(|s| parse_x100(field, s)).transpose()
}

impl PolicyEdit {
    /// Parses every given field; the error names the first that does not parse. Ranges are
    /// checked on the whole record by `PlacementPolicy::validate` (here and again in `apply`).
    pub(super) fn parse(r: &v1::SetPlacementPolicyRequest) -> Result<PolicyEdit, PolicyError> {
        Ok(PolicyEdit {
            cpu_overcommit: x100("cpu_overcommit", &r.cpu_overcommit)?,
            memory_overcommit: x100("memory_overcommit", &r.memory_overcommit)?,
            strategy: r.strategy.as_deref().map(Strategy::parse).transpose()?,
            weight_image_locality: x100("weight_image_locality", &r.weight_image_locality)?,
            weight_balance: x100("weight_balance", &r.weight_balance)?,
            weight_spread: x100("weight_spread", &r.weight_spread)?,
        })
    }

    /// `current` with this edit's knobs changed, checked.
    pub(super) fn applied_to(
        &self,
        current: PlacementPolicy,
    ) -> Result<PlacementPolicy, PolicyError> {
        let p = PlacementPolicy {
            cpu_overcommit_x100: self.cpu_overcommit.unwrap_or(current.cpu_overcommit_x100),
            memory_overcommit_x100: self
                .memory_overcommit
                .unwrap_or(current.memory_overcommit_x100),
            strategy: self.strategy.unwrap_or(current.strategy),
            weight_image_locality_x100: self
                .weight_image_locality
                .unwrap_or(current.weight_image_locality_x100),
            weight_balance_x100: self.weight_balance.unwrap_or(current.weight_balance_x100),
            weight_spread_x100: self.weight_spread.unwrap_or(current.weight_spread_x100),
        };
        p.validate()?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(edit: impl FnOnce(&mut v1::SetPlacementPolicyRequest)) -> v1::SetPlacementPolicyRequest {
        let mut r = v1::SetPlacementPolicyRequest::default();
        edit(&mut r);
        r
    }

    #[test]
    fn unset_fields_keep_their_value() {
        let r = req(|r| {
            r.cpu_overcommit = Some("2".into());
            r.strategy = Some("pack".into());
        });
        let p = PolicyEdit::parse(&r)
            .unwrap()
            .applied_to(PlacementPolicy::default())
            .unwrap();
        assert_eq!(
            p,
            PlacementPolicy {
                cpu_overcommit_x100: 200,
                strategy: Strategy::Pack,
                ..PlacementPolicy::default()
            }
        );
        let none = PolicyEdit::parse(&req(|_| {})).unwrap();
        assert_eq!(none, PolicyEdit::default());
        assert_eq!(
            none.applied_to(p.clone()).unwrap(),
            p,
            "an empty edit changes nothing"
        );
    }

    #[test]
    fn round_trips_through_the_wire() {
        let p = PlacementPolicy {
            cpu_overcommit_x100: 150,
            memory_overcommit_x100: 125,
            strategy: Strategy::Pack,
            weight_image_locality_x100: 0,
            weight_balance_x100: 5,
            weight_spread_x100: 10_000,
        };
        let w = to_proto(&p);
        assert_eq!(
            (w.cpu_overcommit.as_str(), w.weight_balance.as_str()),
            ("1.5", "0.05")
        );
        let r = v1::SetPlacementPolicyRequest {
            cpu_overcommit: Some(w.cpu_overcommit),
            memory_overcommit: Some(w.memory_overcommit),
            strategy: Some(w.strategy),
            weight_image_locality: Some(w.weight_image_locality),
            weight_balance: Some(w.weight_balance),
            weight_spread: Some(w.weight_spread),
            request_id: String::new(),
        };
        let back = PolicyEdit::parse(&r)
            .unwrap()
            .applied_to(PlacementPolicy::default())
            .unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(v1::SetPlacementPolicyRequest, &str)> = vec![
            (
                req(|r| r.cpu_overcommit = Some("abc".into())),
                "cpu_overcommit must be a number such as 1.5 (got 'abc')",
            ),
            (
                req(|r| r.memory_overcommit = Some("1.234".into())),
                "memory_overcommit must be a number",
            ),
            (
                req(|r| r.weight_spread = Some("-1".into())),
                "weight_spread must be a number",
            ),
            (
                req(|r| r.strategy = Some("fill".into())),
                "strategy must be 'spread' or 'pack' (got 'fill')",
            ),
            (
                req(|r| r.cpu_overcommit = Some("0".into())),
                "cpu_overcommit must be between 0.10 and 32.00 (got 0.00)",
            ),
            (
                req(|r| r.weight_balance = Some("101".into())),
                "weight_balance must be between 0 and 100.00 (got 101.00)",
            ),
        ];
        for (r, want) in cases {
            let e = PolicyEdit::parse(&r)
                .and_then(|e| e.applied_to(PlacementPolicy::default()))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{r:?}: {e}");
        }
    }
}
