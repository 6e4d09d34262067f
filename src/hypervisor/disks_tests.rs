//! Tests for `disks` against the real `qemu-img` in a temp dir. Owns nothing; uses `disks`'
//! private helpers (`run`) to check the missing-binary message without uninstalling anything.

use std::os::unix::fs::MetadataExt;

use super::*;

fn err_text<T: std::fmt::Debug>(r: Result<T, DiskError>) -> String {
    r.unwrap_err().to_string()
}

/// Names in `dir` that start with '.' (temp files that must not linger).
fn hidden_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// A qcow2 base image of `mib` outside any VM directory.
async fn base_image(pool: &Path, mib: u64) -> PathBuf {
    let base = pool.join("images/base.qcow2");
    create_empty(&base, mib).await.unwrap();
    base
}

#[test]
fn layout_of_a_vms_files() {
    let pool = Path::new("/pools/local");
    assert_eq!(vm_dir(pool, "web1"), Path::new("/pools/local/web1"));
    assert_eq!(
        disk_path(pool, "web1", 2),
        Path::new("/pools/local/web1/disk2.qcow2")
    );
    assert_eq!(
        seed_path(pool, "web1"),
        Path::new("/pools/local/web1/seed.iso")
    );
    assert_eq!(
        checked_vm_dir(pool, "web1").unwrap(),
        Path::new("/pools/local/web1")
    );
    for bad in ["", ".", "..", "../etc", "a/b", "/abs", "nbd:x", "Web1"] {
        assert!(
            matches!(checked_vm_dir(pool, bad), Err(DiskError::BadVmName(_))),
            "{bad:?} accepted"
        );
    }
}

#[tokio::test]
async fn path_traversal_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("pool");
    std::fs::create_dir_all(&pool).unwrap();
    let outside = tmp.path().join("precious");
    std::fs::create_dir_all(&outside).unwrap();

    let e = err_text(remove_vm_files(&pool, "../precious").await);
    assert!(e.contains("vm name"), "{e}");
    let e = err_text(remove_vm_files(&pool, "..").await);
    assert!(e.contains("vm name"), "{e}");
    assert!(matches!(
        remove_vm_files(&pool, ".").await,
        Err(DiskError::BadVmName(_))
    ));
    assert!(outside.exists() && pool.exists());

    let escaping = disk_path(&pool, "..", 0);
    assert!(matches!(
        create_empty(&escaping, 1).await,
        Err(DiskError::BadPath(_))
    ));
    let base = base_image(tmp.path(), 1).await;
    assert!(matches!(
        create_overlay(&base, BackingFormat::Qcow2, &escaping, 1).await,
        Err(DiskError::BadPath(_))
    ));
    assert!(!tmp.path().join("disk0.qcow2").exists());
}

#[tokio::test]
async fn overlay_on_qcow2_records_backing_and_takes_the_larger_size() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path();
    let base = base_image(pool, 64).await;
    let canonical = std::fs::canonicalize(&base).unwrap();

    // Asked smaller than the base: the overlay gets the base's size.
    let d0 = disk_path(pool, "web1", 0);
    create_overlay(&base, BackingFormat::Qcow2, &d0, 16)
        .await
        .unwrap();
    let i = info(&d0).await.unwrap();
    assert_eq!(i.format, "qcow2");
    assert_eq!(i.virtual_size_bytes, 64 * MIB);
    assert_eq!(i.virtual_size_mib(), 64);
    assert_eq!(i.backing_file.as_deref(), Some(canonical.as_path()));
    assert_eq!(i.backing_format.as_deref(), Some("qcow2"));

    // Asked larger: the asked size.
    let d1 = disk_path(pool, "web1", 1);
    create_overlay(&base, BackingFormat::Qcow2, &d1, 128)
        .await
        .unwrap();
    assert_eq!(info(&d1).await.unwrap().virtual_size_mib(), 128);
    assert!(hidden_files(&vm_dir(pool, "web1")).is_empty());
}

#[tokio::test]
async fn a_relative_or_symlinked_backing_is_recorded_by_its_real_path() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path();
    let base = base_image(pool, 8).await;
    let link = pool.join("current.qcow2");
    std::os::unix::fs::symlink(&base, &link).unwrap();

    let d0 = disk_path(pool, "vm", 0);
    create_overlay(&link, BackingFormat::Qcow2, &d0, 8)
        .await
        .unwrap();
    let real = std::fs::canonicalize(&base).unwrap();
    assert_eq!(info(&d0).await.unwrap().backing_file, Some(real));
    // The same base named either way is the same disk.
    create_overlay(&base, BackingFormat::Qcow2, &d0, 8)
        .await
        .unwrap();
}

#[tokio::test]
async fn overlay_on_raw_and_wrong_backing_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path();
    let raw = pool.join("images/base.raw");
    std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(3 * MIB)
        .unwrap();

    let d0 = disk_path(pool, "vm", 0);
    create_overlay(&raw, BackingFormat::Raw, &d0, 1)
        .await
        .unwrap();
    let i = info(&d0).await.unwrap();
    assert_eq!(i.virtual_size_mib(), 3);
    assert_eq!(i.backing_format.as_deref(), Some("raw"));

    // A raw file declared qcow2: qemu-img's own words come back.
    let e =
        err_text(create_overlay(&raw, BackingFormat::Qcow2, &disk_path(pool, "vm", 1), 1).await);
    assert!(e.contains("not in qcow2 format"), "{e}");
    assert!(!disk_path(pool, "vm", 1).exists());

    let e = err_text(BackingFormat::parse("iso"));
    assert!(e.contains("'iso'") && e.contains("qcow2 or raw"), "{e}");
    assert_eq!(BackingFormat::parse("raw"), Ok(BackingFormat::Raw));
    assert_eq!(BackingFormat::parse("qcow2"), Ok(BackingFormat::Qcow2));
}

#[tokio::test]
async fn a_missing_backing_file_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope.qcow2");
    let e = err_text(
        create_overlay(
            &missing,
            BackingFormat::Qcow2,
            &disk_path(tmp.path(), "vm", 0),
            1,
        )
        .await,
    );
    assert!(
        e.contains("backing image") && e.contains("nope.qcow2"),
        "{e}"
    );
    assert!(!vm_dir(tmp.path(), "vm").exists());
}

#[tokio::test]
async fn empty_disk_has_the_asked_size_and_no_backing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = disk_path(tmp.path(), "db", 1);
    create_empty(&d, 100).await.unwrap();
    let i = info(&d).await.unwrap();
    assert_eq!(
        i,
        DiskInfo {
            format: "qcow2".into(),
            virtual_size_bytes: 100 * MIB,
            backing_file: None,
            backing_format: None,
        }
    );
    assert_eq!(create_empty(&d, 0).await, Err(DiskError::ZeroSize));
}

#[tokio::test]
async fn repeating_a_creation_leaves_the_disk_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path();
    let base = base_image(pool, 16).await;
    let d0 = disk_path(pool, "web1", 0);
    let d1 = disk_path(pool, "web1", 1);
    create_overlay(&base, BackingFormat::Qcow2, &d0, 32)
        .await
        .unwrap();
    create_empty(&d1, 10).await.unwrap();
    let before: Vec<_> = [&d0, &d1]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap())
        .map(|m| (m.ino(), m.mtime_nsec(), m.len()))
        .collect();

    create_overlay(&base, BackingFormat::Qcow2, &d0, 32)
        .await
        .unwrap();
    create_empty(&d1, 10).await.unwrap();
    // A different size on retry is still the same disk (size is not creation's business).
    create_empty(&d1, 20).await.unwrap();

    let after: Vec<_> = [&d0, &d1]
        .iter()
        .map(|p| std::fs::metadata(p).unwrap())
        .map(|m| (m.ino(), m.mtime_nsec(), m.len()))
        .collect();
    assert_eq!(before, after);
    assert_eq!(info(&d1).await.unwrap().virtual_size_mib(), 10);
    assert!(hidden_files(&vm_dir(pool, "web1")).is_empty());
}

#[tokio::test]
async fn concurrent_creations_of_one_disk_both_succeed_with_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let base = base_image(tmp.path(), 8).await;
    let d = disk_path(tmp.path(), "vm", 0);
    let (a, b) = tokio::join!(
        create_overlay(&base, BackingFormat::Qcow2, &d, 8),
        create_overlay(&base, BackingFormat::Qcow2, &d, 8)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(
        info(&d).await.unwrap().backing_format.as_deref(),
        Some("qcow2")
    );
    assert!(hidden_files(&vm_dir(tmp.path(), "vm")).is_empty());
}

#[tokio::test]
async fn an_existing_file_of_another_kind_is_a_mismatch_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path();
    let base = base_image(pool, 8).await;
    let other = pool.join("images/other.qcow2");
    create_empty(&other, 8).await.unwrap();

    // Empty disk where an overlay is asked for.
    let d0 = disk_path(pool, "vm", 0);
    create_empty(&d0, 8).await.unwrap();
    let e = err_text(create_overlay(&base, BackingFormat::Qcow2, &d0, 8).await);
    assert!(
        e.contains("disk0.qcow2")
            && e.contains("found qcow2, no backing")
            && e.contains("base.qcow2"),
        "{e}"
    );

    // Overlay on another base.
    let d1 = disk_path(pool, "vm", 1);
    create_overlay(&other, BackingFormat::Qcow2, &d1, 8)
        .await
        .unwrap();
    let e = err_text(create_overlay(&base, BackingFormat::Qcow2, &d1, 8).await);
    assert!(e.contains("other.qcow2") && e.contains("base.qcow2"), "{e}");
    let e = err_text(create_empty(&d1, 8).await);
    assert!(
        e.contains("other.qcow2") && e.contains("wanted qcow2, no backing"),
        "{e}"
    );

    // Not a qcow2 at all.
    let d2 = disk_path(pool, "vm", 2);
    std::fs::write(&d2, b"not a disk").unwrap();
    let e = err_text(create_empty(&d2, 8).await);
    assert!(e.contains("found raw") && e.contains("wanted qcow2"), "{e}");
    assert_eq!(std::fs::read(&d2).unwrap(), b"not a disk");
}

#[tokio::test]
async fn removing_a_vms_files_is_idempotent_and_spares_images() {
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path();
    let base = base_image(pool, 8).await;
    create_overlay(&base, BackingFormat::Qcow2, &disk_path(pool, "web1", 0), 8)
        .await
        .unwrap();
    create_empty(&disk_path(pool, "web1", 1), 8).await.unwrap();
    std::fs::write(seed_path(pool, "web1"), b"seed").unwrap();
    create_empty(&disk_path(pool, "web2", 0), 8).await.unwrap();

    remove_vm_files(pool, "web1").await.unwrap();
    assert!(!vm_dir(pool, "web1").exists());
    remove_vm_files(pool, "web1").await.unwrap();
    remove_vm_files(pool, "never-existed").await.unwrap();
    assert!(base.exists() && disk_path(pool, "web2", 0).exists());
}

#[tokio::test]
async fn qemu_img_errors_carry_its_stderr_and_a_missing_binary_points_at_setup() {
    let tmp = tempfile::tempdir().unwrap();
    let e = err_text(info(&tmp.path().join("absent.qcow2")).await);
    assert!(
        e.contains("qemu-img info") && e.contains("No such file or directory"),
        "{e}"
    );

    let e = run("qemu-img-not-installed-here", &[]).await.unwrap_err();
    assert!(matches!(e, DiskError::QemuImgMissing { .. }), "{e:?}");
    assert!(e.to_string().contains("scripts/setup.sh"), "{e}");
}
