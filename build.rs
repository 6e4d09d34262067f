//! Generates the gRPC code for the public API (`proto/quantix/v1`) and the internal host-to-host
//! transport (`proto/quantix/internal/v1`), plus a descriptor set for server reflection.
fn main() -> Result<(), Box<dyn std::error::Error>> {
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
