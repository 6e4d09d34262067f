//! `quantix spec ...`

use clap::Subcommand;

use super::output::Format;
use super::CliError;

#[derive(Subcommand)]
pub enum SpecCmd {
    /// Not available yet.
    List,
}

pub async fn run(_endpoint: &str, _out: Format, cmd: SpecCmd) -> Result<(), CliError> {
    match cmd {
        SpecCmd::List => Err(CliError::Usage("not implemented yet".into())),
    }
}
