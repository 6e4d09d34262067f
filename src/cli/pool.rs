//! `quantix pool ...`

use clap::Subcommand;

use super::output::Format;
use super::CliError;

#[derive(Subcommand)]
pub enum PoolCmd {
    /// Not available yet.
    List,
}

pub async fn run(_endpoint: &str, _out: Format, cmd: PoolCmd) -> Result<(), CliError> {
    match cmd {
        PoolCmd::List => Err(CliError::Usage("not implemented yet".into())),
    }
}
