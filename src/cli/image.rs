//! `quantix image ...`

use clap::Subcommand;

use super::output::Format;
use super::CliError;

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Not available yet.
    List,
}

pub async fn run(_endpoint: &str, _out: Format, cmd: ImageCmd) -> Result<(), CliError> {
    match cmd {
        ImageCmd::List => Err(CliError::Usage("not implemented yet".into())),
    }
}
