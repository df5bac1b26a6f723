//! Disk use of the build, printed after each step of `cargo xtask ci`: a CI machine with
//! little free space fails while linking (`No space left on device`, `ld … Bus error`), and
//! this line says how close each step came.

use std::path::Path;
use std::process::Command;

/// `disk: target/ holds 1.23 GiB; 45.6 GiB free on its filesystem` (the free part is left
/// out where `df` is missing).
pub fn report(target: &Path) -> String {
    let held = dir_bytes(target) as f64 / GIB;
    match free_bytes(target) {
        Some(free) => format!(
            "disk: target/ holds {held:.2} GiB; {:.1} GiB free on its filesystem",
            free as f64 / GIB
        ),
        None => format!("disk: target/ holds {held:.2} GiB"),
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Removes the linked executables of `profile_dir` (`target/debug`): test binaries and bins
/// in `deps/`, examples in `examples/`, and the bins' copies at the top. Each is 30–50 MB
/// because it links Burn; on CI, once the steps that run them are done, the later steps (the
/// WGPU build) need the room. Libraries, proc-macros (`.so`), build scripts and cargo's
/// fingerprints stay, so cargo relinks what it needs again. Returns the bytes freed.
pub fn prune_executables(profile_dir: &Path) -> u64 {
    ["deps", "examples", ""]
        .iter()
        .map(|sub| prune_executables_in(&profile_dir.join(sub)))
        .sum()
}

fn prune_executables_in(dir: &Path) -> u64 {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut freed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let executable = meta.is_file() && meta.permissions().mode() & 0o111 != 0;
        if executable && path.extension().is_none() && std::fs::remove_file(&path).is_ok() {
            freed += meta.len();
        }
    }
    freed
}

/// Bytes of the files under `dir` (hard links counted once per name: an over-estimate).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Free bytes on the filesystem holding `path`, from `df -Pk` (POSIX output: the fourth
/// column of the second line is the available space in KiB).
fn free_bytes(path: &Path) -> Option<u64> {
    let out = Command::new("df").arg("-Pk").arg(path).output().ok()?;
    parse_df_available_kib(&String::from_utf8_lossy(&out.stdout)).map(|kib| kib * 1024)
}

fn parse_df_available_kib(df: &str) -> Option<u64> {
    df.lines().nth(1)?.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_available_column_of_posix_df() {
        let df = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
                  /dev/vda         263174212  15340000  79000000      17% /\n";
        assert_eq!(parse_df_available_kib(df), Some(79_000_000));
        assert_eq!(parse_df_available_kib("Filesystem\n"), None);
    }

    #[test]
    fn prunes_executables_and_keeps_libraries() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("xtask-prune-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("deps")).unwrap();
        let file = |name: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, [0u8; 7]).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            path
        };
        let test_binary = file("deps/suite-0123abcd", 0o755);
        let bin = file("glue", 0o755);
        let kept = [
            file("deps/libdata-0123.rlib", 0o644),
            file("deps/libserde_derive-0123.so", 0o755),
            file("deps/suite-0123abcd.d", 0o644),
            file("notes", 0o644),
        ];
        assert_eq!(prune_executables(&dir), 14);
        assert!(!test_binary.exists() && !bin.exists());
        assert!(kept.iter().all(|k| k.exists()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn counts_file_bytes_recursively() {
        let dir = std::env::temp_dir().join(format!("xtask-disk-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), [0u8; 10]).unwrap();
        std::fs::write(dir.join("sub/b"), [0u8; 5]).unwrap();
        let bytes = dir_bytes(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(bytes, 15);
    }
}
