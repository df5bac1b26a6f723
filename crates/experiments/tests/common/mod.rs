//! Helpers shared by the binaries' end-to-end tests: where `../shared` is, scratch folders, and
//! running a binary with its exit status checked.

// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Tensor;

/// The shared data, weights and golden outputs: `$BONE_SHARED_DIR`, else `../shared` beside
/// the workspace. Panics with the place it looked when a part is missing.
pub fn shared() -> PathBuf {
    let dir = std::env::var_os("BONE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    for part in ["models", "datasets", "golden"] {
        assert!(
            dir.join(part).is_dir(),
            "the shared data is missing: looked for {} (set BONE_SHARED_DIR)",
            dir.join(part).display()
        );
    }
    dir
}

/// `shared()/relative` as a command-line argument.
pub fn shared_arg(relative: &str) -> String {
    shared().join(relative).display().to_string()
}

/// An empty scratch path unique to this test process: `$TMPDIR/bone-<suite>-<name>-<pid>`.
pub fn tmp(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bone-{suite}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `exe` with `args`, without the environment variables that would change its defaults.
pub fn run(exe: &str, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .env_remove("BONE_DATA_ROOT")
        .env_remove("BONE_DEVICE")
        .output()
        .unwrap_or_else(|e| panic!("{exe} does not start: {e}"))
}

/// Runs `exe` and returns its stdout; panics with both streams unless it succeeds.
pub fn ok(exe: &str, args: &[&str]) -> String {
    let out = run(exe, args);
    assert!(
        out.status.success(),
        "{exe} {args:?} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("stdout is UTF-8")
}

/// Runs `exe` and returns its stderr; panics unless it exits with `code`.
pub fn fails(exe: &str, args: &[&str], code: i32) -> String {
    let out = run(exe, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{exe} {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).expect("stderr is UTF-8")
}

/// A JSON file the run wrote; panics naming the file when it is missing or malformed.
pub fn json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every tensor of a PEFT folder's `adapter_model.safetensors`, by key, as f32 values.
pub fn adapter_values(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let file = dir.join("adapter_model.safetensors");
    bone_io::tensors::read_safetensors(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .into_iter()
        .map(|(k, v)| (k, v.iter::<f32>().collect()))
        .collect()
}

/// The gradients `grads` holds for `module`'s parameters, flattened in visiting order.
pub fn flat_grads<B: AutodiffBackend, M: Module<B>>(
    module: &M,
    grads: &GradientsParams,
) -> Vec<f32> {
    struct Collect<'a> {
        grads: &'a GradientsParams,
        values: Vec<f32>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Collect<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                self.values.extend(g.into_data().iter::<f32>());
            }
        }
    }
    let mut collect = Collect {
        grads,
        values: Vec::new(),
    };
    module.visit(&mut collect);
    collect.values
}
