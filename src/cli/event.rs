//! `quantix event ...`

use clap::Subcommand;

use super::output::Format;
use super::CliError;

#[derive(Subcommand)]
pub enum EventCmd {
    /// Not available yet.
    List,
}

pub async fn run(_endpoint: &str, _out: Format, cmd: EventCmd) -> Result<(), CliError> {
    match cmd {
        EventCmd::List => Err(CliError::Usage("not implemented yet".into())),
    }
}
