//! `quantix`: the command-line client. See `quantix --help`.

// glibc malloc showed up as ~12% of a loaded host's CPU profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() {
    quiet_on_closed_stdout();
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

/// `quantix vm list | head`: when the reader goes away, printing fails with EPIPE and
/// `println!` panics. Like other Unix tools, exit quietly instead (status 141, as if killed by
/// SIGPIPE). Any other panic keeps the default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.contains("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
