//! `quantix`: the command-line client. See `quantix --help`.

use clap::Parser;

fn main() {
    let cli = quantix::cli::Cli::parse();
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(quantix::cli::run(cli)),
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}
