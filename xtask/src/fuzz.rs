//! `cargo xtask fuzz [--secs N]`: the fuzz harness of the parsers of user files
//! (`crates/experiments/tests/fuzz.rs`: safetensors header, config.json,
//! adapter_config.json, GLUE TSV, GSM8K JSONL, GGUF) for N seconds per parser (default 30),
//! outside `cargo test`'s time budget (which runs only its one-second smoke).

use super::cargo;

/// Runs the ignored `fuzz::long` test of the experiments suite with `BONE_FUZZ_SECS`.
pub fn fuzz(args: &[String]) -> Result<(), String> {
    let mut secs = 30u64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--secs" => {
                let value = it.next().ok_or("--secs needs a number of seconds")?;
                secs = value
                    .parse()
                    .map_err(|_| format!("--secs {value}: expected a whole number of seconds"))?;
            }
            other => return Err(format!("unknown option `{other}` for `fuzz`")),
        }
    }
    let secs = secs.to_string();
    cargo(
        &[
            "test",
            "-p",
            "experiments",
            "--test",
            "suite",
            "--",
            "fuzz::long",
            "--ignored",
            "--exact",
            "--nocapture",
        ],
        &[("BONE_FUZZ_SECS", &secs)],
    )
}
