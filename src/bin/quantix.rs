//! `quantix`: the command-line client. See `quantix --help`.

// glibc malloc showed up as ~12% of a loaded host's CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
