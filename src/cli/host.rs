//! `quantix host ...`

use clap::Subcommand;

use super::output::Format;
use super::CliError;

#[derive(Subcommand)]
pub enum HostCmd {
    /// Not available yet.
    List,
}

pub async fn run(_endpoint: &str, _out: Format, cmd: HostCmd) -> Result<(), CliError> {
    match cmd {
        HostCmd::List => Err(CliError::Usage("not implemented yet".into())),
    }
}
