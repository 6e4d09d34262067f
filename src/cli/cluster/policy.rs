//! `quantix cluster policy [set ...]`: show or change the replicated placement policy.
//! Values are checked here as the server checks them (with `model::policy`'s rules and
//! messages), so a typo is refused before any call with the flag's name; the server checks
//! again for other clients.

use clap::{Args, Subcommand};
use serde_json::json;

use super::super::output::{self, Format};
use super::super::{request_id, CliError};
use crate::model::policy::{parse_x100, PolicyError, Strategy, MAX_RATIO_X100, MAX_WEIGHT_X100};
use crate::proto::v1::cluster_service_client::ClusterServiceClient;
use crate::proto::v1::*;

#[derive(Subcommand)]
pub enum PolicyCmd {
    /// Change some knobs; the others keep their value.
    Set(SetArgs),
}

#[derive(Args, Default)]
pub struct SetArgs {
    /// Virtual CPUs per physical CPU, 0.1 to 32 (4 = 4:1).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    cpu_overcommit: Option<String>,
    /// Memory handed out per unit of physical memory, 0.1 to 32 (1 = no overcommit).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    memory_overcommit: Option<String>,
    /// spread (prefer the emptiest host) or pack (prefer the fullest host that fits).
    #[arg(long, value_name = "spread|pack", allow_hyphen_values = true)]
    strategy: Option<String>,
    /// Score weight of a host already holding the VM's image, 0 to 100.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    weight_image_locality: Option<String>,
    /// Score weight of keeping a host's CPU and memory use even, 0 to 100.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    weight_balance: Option<String>,
    /// Score weight of the spread (or pack) preference, 0 to 100.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    weight_spread: Option<String>,
}

#[derive(Clone, Copy)]
enum Range {
    Ratio,
    Weight,
}

/// A flag's value checked as the server will check it; the canonical decimal to send.
fn number(flag: &'static str, range: Range, v: Option<String>) -> Result<Option<String>, CliError> {
    let Some(s) = v else { return Ok(None) };
    let usage = |e: PolicyError| CliError::Usage(e.to_string());
    let got = parse_x100(flag, &s).map_err(usage)?;
    match range {
        Range::Ratio if !(10..=MAX_RATIO_X100).contains(&got) => {
            Err(usage(PolicyError::Ratio { field: flag, got }))
        }
        Range::Weight if got > MAX_WEIGHT_X100 => {
            Err(usage(PolicyError::Weight { field: flag, got }))
        }
        _ => Ok(Some(crate::model::policy::format_x100(got))),
    }
}

impl SetArgs {
    fn request(self) -> Result<SetPlacementPolicyRequest, CliError> {
        let r = SetPlacementPolicyRequest {
            cpu_overcommit: number("--cpu-overcommit", Range::Ratio, self.cpu_overcommit)?,
            memory_overcommit: number("--memory-overcommit", Range::Ratio, self.memory_overcommit)?,
            strategy: match self.strategy {
                Some(s) => Some(
                    Strategy::parse(&s)
                        .map_err(|_| {
                            CliError::Usage(format!(
                                "--strategy must be 'spread' or 'pack' (got '{s}')"
                            ))
                        })?
                        .as_str()
                        .to_string(),
                ),
                None => None,
            },
            weight_image_locality: number(
                "--weight-image-locality",
                Range::Weight,
                self.weight_image_locality,
            )?,
            weight_balance: number("--weight-balance", Range::Weight, self.weight_balance)?,
            weight_spread: number("--weight-spread", Range::Weight, self.weight_spread)?,
            request_id: request_id(),
        };
        let given = [
            &r.cpu_overcommit,
            &r.memory_overcommit,
            &r.strategy,
            &r.weight_image_locality,
            &r.weight_balance,
            &r.weight_spread,
        ];
        if given.iter().all(|v| v.is_none()) {
            return Err(CliError::Usage(
                "nothing to change: give at least one of --cpu-overcommit, --memory-overcommit, \
                 --strategy, --weight-image-locality, --weight-balance, --weight-spread"
                    .into(),
            ));
        }
        Ok(r)
    }
}

/// The policy's fields in order: (JSON key, table label = the `set` flag, value).
fn fields(p: &PlacementPolicy) -> [(&'static str, &'static str, &str); 6] {
    [
        ("cpu_overcommit", "cpu-overcommit", &p.cpu_overcommit),
        (
            "memory_overcommit",
            "memory-overcommit",
            &p.memory_overcommit,
        ),
        ("strategy", "strategy", &p.strategy),
        (
            "weight_image_locality",
            "weight-image-locality",
            &p.weight_image_locality,
        ),
        ("weight_balance", "weight-balance", &p.weight_balance),
        ("weight_spread", "weight-spread", &p.weight_spread),
    ]
}

fn print(out: Format, p: &PlacementPolicy) {
    match out {
        Format::Json => {
            // Numbers stay numbers for scripts: "4" -> 4, "1.5" -> 1.5; the strategy is text.
            let doc: serde_json::Map<String, serde_json::Value> = fields(p)
                .into_iter()
                .map(|(key, _, v)| {
                    let value = serde_json::from_str::<serde_json::Number>(v)
                        .map(serde_json::Value::Number)
                        .unwrap_or_else(|_| json!(v));
                    (key.to_string(), value)
                })
                .collect();
            output::json(&serde_json::Value::Object(doc))
        }
        Format::Table => output::table(
            &["setting", "value"],
            fields(p)
                .into_iter()
                .map(|(_, label, v)| vec![label.to_string(), v.to_string()])
                .collect(),
        ),
    }
}

pub async fn run(
    c: &mut ClusterServiceClient<crate::cli::Conn>,
    out: Format,
    cmd: Option<PolicyCmd>,
    consistency: i32,
) -> Result<(), CliError> {
    let p = match cmd {
        None => c
            .get_placement_policy(GetPlacementPolicyRequest { consistency })
            .await?
            .into_inner(),
        Some(PolicyCmd::Set(args)) => c.set_placement_policy(args.request()?).await?.into_inner(),
    };
    print(out, &p);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked_and_named() {
        let ok = SetArgs {
            cpu_overcommit: Some("2.50".into()),
            strategy: Some("pack".into()),
            weight_balance: Some("0".into()),
            ..SetArgs::default()
        }
        .request()
        .unwrap();
        assert_eq!(ok.cpu_overcommit.as_deref(), Some("2.5"));
        assert_eq!(ok.strategy.as_deref(), Some("pack"));
        assert_eq!(ok.weight_balance.as_deref(), Some("0"));
        assert_eq!(ok.memory_overcommit, None);

        let cases: Vec<(SetArgs, &str)> = vec![
            (
                SetArgs {
                    cpu_overcommit: Some("0".into()),
                    ..SetArgs::default()
                },
                "--cpu-overcommit must be between 0.10 and 32.00 (got 0.00)",
            ),
            (
                SetArgs {
                    cpu_overcommit: Some("abc".into()),
                    ..SetArgs::default()
                },
                "--cpu-overcommit must be a number such as 1.5 (got 'abc')",
            ),
            (
                SetArgs {
                    memory_overcommit: Some("-1".into()),
                    ..SetArgs::default()
                },
                "--memory-overcommit must be a number",
            ),
            (
                SetArgs {
                    weight_spread: Some("100.01".into()),
                    ..SetArgs::default()
                },
                "--weight-spread must be between 0 and 100.00 (got 100.01)",
            ),
            (
                SetArgs {
                    strategy: Some("fill".into()),
                    ..SetArgs::default()
                },
                "--strategy must be 'spread' or 'pack' (got 'fill')",
            ),
            (SetArgs::default(), "nothing to change"),
        ];
        for (args, want) in cases {
            let e = args.request().unwrap_err().to_string();
            assert!(e.contains(want), "wanted '{want}', got: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }
}
