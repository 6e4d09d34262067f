//! Generates the gRPC code for the public API (`proto/quantix/v1`) and the internal host-to-host
//! transport (`proto/quantix/internal/v1`), plus a descriptor set for server reflection; and
//! the table of dashboard assets (`web/dist`, built by `npm run build` in `web/`) that `web`
//! embeds into the binary.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    embed_web_assets()?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = [
        "proto/quantix/v1/common.proto",
        "proto/quantix/v1/cluster.proto",
        "proto/quantix/v1/folder.proto",
        "proto/quantix/v1/host.proto",
        "proto/quantix/v1/vm.proto",
        "proto/quantix/v1/spec.proto",
        "proto/quantix/v1/image.proto",
        "proto/quantix/v1/pool.proto",
        "proto/quantix/v1/event.proto",
        "proto/quantix/v1/access.proto",
        "proto/quantix/internal/v1/raft.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("quantix_descriptor.bin"))
        .compile_protos(&protos, &["proto"])?;
    Ok(())
}

/// Writes `$OUT_DIR/web_assets.rs`: `ASSETS`, one `(url path, content type, bytes)` per file
/// under `web/dist`, included with `include_bytes!`. When `web/dist` does not exist (a fresh
/// clone before `npm run build`), the table is empty and the dashboard says so; the build
/// still succeeds.
fn embed_web_assets() -> Result<(), Box<dyn std::error::Error>> {
    use std::fmt::Write as _;
    let manifest = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dist = manifest.join("web/dist");
    let mut files = Vec::new();
    if dist.is_dir() {
        println!("cargo:rerun-if-changed=web/dist");
        let mut stack = vec![dist.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir)? {
                let path = entry?.path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push(path);
                }
            }
        }
    } else {
        // Notices web/dist appearing (cargo scans the directory for changes).
        println!("cargo:rerun-if-changed=web");
    }
    files.sort();
    let mut out = String::from("pub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for path in &files {
        let rel = path
            .strip_prefix(&dist)?
            .to_string_lossy()
            .replace('\\', "/");
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let mime = match ext {
            "html" => "text/html; charset=utf-8",
            "js" | "mjs" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            "ico" => "image/x-icon",
            "json" | "map" => "application/json",
            "woff2" => "font/woff2",
            "txt" => "text/plain; charset=utf-8",
            _ => "application/octet-stream",
        };
        writeln!(
            out,
            "    ({:?}, {:?}, include_bytes!({:?})),",
            format!("/{rel}"),
            mime,
            path.to_string_lossy()
        )?;
    }
    out.push_str("];\n");
    let dest = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("web_assets.rs");
    // Rewrite only on change, so an unchanged table does not rebuild the crate.
    if std::fs::read_to_string(&dest).ok().as_deref() != Some(out.as_str()) {
        std::fs::write(dest, out)?;
    }
    Ok(())
}
