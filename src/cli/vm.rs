//! `quantix vm ...`

use clap::Subcommand;

use super::output::Format;
use super::CliError;

#[derive(Subcommand)]
pub enum VmCmd {
    /// Not available yet.
    List,
}

pub async fn run(_endpoint: &str, _out: Format, cmd: VmCmd) -> Result<(), CliError> {
    match cmd {
        VmCmd::List => Err(CliError::Usage("not implemented yet".into())),
    }
}
