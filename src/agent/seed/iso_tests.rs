//! Tests of `write_iso`: each installed tool writes an ISO that is read back with `isoinfo`
//! (or `xorriso` when there is no isoinfo) — volume id and every file compared byte for byte;
//! the target is replaced atomically and no scratch file is left; failures are named.
//! A tool that is not installed is skipped with a printed reason.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::iso::write_with_programs;
use super::linux_tests::{key, spec};
use super::*;
use crate::model::spec::{Membership, Secret, WindowsSpec};
use crate::model::vm::tests::sample;

fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

fn linux_seed() -> Seed {
    let mut vm = sample("iso-test");
    vm.id = 1;
    vm.overrides.ssh_keys = vec![key(9, "t")];
    vm.overrides.user_data = Some("#!/bin/sh\necho ü > /tmp/x\n".into());
    render(&vm, None, None).expect("render")
}

fn windows_seed() -> Seed {
    let w = WindowsSpec {
        computer_name: "win-{n}".into(),
        timezone: "UTC".into(),
        membership: Membership::Workgroup("WORKGROUP".into()),
        admin_password: Some(Secret::new("S3cret-admin!")),
        product_key: None,
    };
    let mut vm = sample("win");
    vm.spec = Some("w".into());
    render(&vm, Some(&spec("w", SpecConfig::Windows(w))), None).expect("render")
}

/// Volume id and file contents, read without mounting.
fn read_back(iso: &Path, files: &[&str]) -> Option<(String, Vec<Vec<u8>>)> {
    if installed("isoinfo") {
        let out = Command::new("isoinfo")
            .arg("-i")
            .arg(iso)
            .arg("-d")
            .output()
            .expect("isoinfo -d");
        let info = String::from_utf8_lossy(&out.stdout).into_owned();
        let label = info
            .lines()
            .find_map(|l| l.strip_prefix("Volume id: "))
            .unwrap_or_else(|| panic!("no volume id in {info}"))
            .trim()
            .to_string();
        let contents = files
            .iter()
            .map(|f| {
                // Joliet names (what Windows reads) and Rock Ridge names (what Linux reads)
                // must both lead to the same file.
                let read = |names: &str| {
                    let out = Command::new("isoinfo")
                        .arg("-i")
                        .arg(iso)
                        .args([names, "-x", &format!("/{f}")])
                        .output()
                        .expect("isoinfo -x");
                    assert!(out.status.success(), "isoinfo {names} -x /{f}");
                    out.stdout
                };
                let joliet = read("-J");
                assert_eq!(joliet, read("-R"), "/{f}: Joliet and Rock Ridge differ");
                joliet
            })
            .collect();
        return Some((label, contents));
    }
    if installed("xorriso") {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(iso)
            .args(["-pvd_info", "-extract", "/"])
            .arg(dir.path().join("x"))
            .output()
            .expect("xorriso extract");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let info = String::from_utf8_lossy(&out.stdout).into_owned();
        let label = info
            .lines()
            .find_map(|l| l.strip_prefix("Volume Id    :"))
            .unwrap_or_else(|| panic!("no volume id in {info}"))
            .trim()
            .to_string();
        let contents = files
            .iter()
            .map(|f| std::fs::read(dir.path().join("x").join(f)).expect("extracted file"))
            .collect();
        return Some((label, contents));
    }
    None
}

/// Writes `seed` with `tool` and checks what a guest would read.
async fn round_trip(seed: &Seed, tool: IsoTool) {
    if !installed(tool.program()) {
        println!(
            "SKIP {}: not installed (scripts/setup.sh installs it)",
            tool.program()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = dir.path().join("seed.iso");
    write_iso_with(seed, &iso, &[tool])
        .await
        .expect("write_iso");
    let mode = std::fs::metadata(&iso).expect("iso").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the seed may hold passwords");
    let entries = seed.entries();
    let paths: Vec<&str> = entries.iter().map(|(p, _)| *p).collect();
    let Some((label, contents)) = read_back(&iso, &paths) else {
        println!("SKIP reading back: neither isoinfo nor xorriso is installed");
        return;
    };
    assert_eq!(label, seed.volume_label(), "{}", tool.program());
    for ((path, want), got) in entries.iter().zip(contents) {
        assert_eq!(
            String::from_utf8_lossy(&got),
            *want,
            "{} {path}",
            tool.program()
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(left, ["seed.iso"], "no staging or temporary files left");
}

#[tokio::test]
async fn nocloud_iso_with_each_tool() {
    let seed = linux_seed();
    assert_eq!(seed.entries().len(), 3);
    for tool in [IsoTool::Xorriso, IsoTool::Genisoimage] {
        round_trip(&seed, tool).await;
    }
}

#[tokio::test]
async fn config_drive_iso_with_each_tool() {
    let seed = windows_seed();
    assert!(seed.files.meta_data.contains("S3cret-admin!"));
    for tool in [IsoTool::Xorriso, IsoTool::Genisoimage] {
        round_trip(&seed, tool).await;
    }
}

#[tokio::test]
async fn replaces_the_target_whole() {
    if !installed("xorriso") && !installed("genisoimage") {
        println!("SKIP: neither xorriso nor genisoimage is installed");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = dir.path().join("vm.iso");
    std::fs::write(&iso, b"old contents").expect("old file");
    let first = linux_seed();
    write_iso(&first, &iso).await.expect("first");
    let mut vm = sample("renamed");
    vm.id = 2;
    let second = render(&vm, None, None).expect("render");
    write_iso(&second, &iso).await.expect("second");
    if let Some((label, got)) = read_back(&iso, &["meta-data"]) {
        assert_eq!(label, "cidata");
        assert_eq!(String::from_utf8_lossy(&got[0]), second.files.meta_data);
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["vm.iso"]);
}

#[tokio::test]
async fn failures_are_named_and_leave_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = dir.path().join("seed.iso");
    let seed = linux_seed();

    let e = write_with_programs(&seed, &iso, &[("quantix-no-such-iso-tool", &[])])
        .await
        .expect_err("no tool");
    assert!(matches!(e, SeedError::NoIsoTool));
    assert_eq!(
        e.to_string(),
        "no ISO tool found: install xorriso or genisoimage (scripts/setup.sh)"
    );

    // A tool that fails: its exit status is reported, nothing appears at the target.
    let e = write_with_programs(&seed, &iso, &[("false", &[])])
        .await
        .expect_err("failing tool");
    assert!(matches!(e, SeedError::IsoTool { tool: "false", .. }), "{e}");
    assert!(e.to_string().contains("exit status: 1"), "{e}");
    let names: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
    assert!(names.is_empty(), "left behind: {names:?}");

    let e = write_iso(&seed, &dir.path().join("missing-dir").join("seed.iso"))
        .await
        .expect_err("missing directory");
    assert!(e.to_string().contains("create scratch directory"), "{e}");
}
