//! `cargo xtask assets --download [--to DIR]`: fetches what a machine without `../shared`
//! needs — the GLUE (MRPC written from the MSR corpus files as GLUE's script does) and GSM8K
//! files of `datasets/SHA256SUMS` into `DIR` (default `$BONE_DATA_ROOT`, else the workspace's
//! `datasets/`), and the default encoder and the fallback decoder (SmolLM2-135M-Instruct GGUF)
//! into the Hugging Face cache — each checked against its pinned sha256, resumable, with a
//! progress bar. The machinery is `bone_hub::assets`, shared with the tests; sources are
//! overridden with `$BONE_GLUE_URL`, `$BONE_GSM8K_URL`, `$BONE_MRPC_TRAIN_URL`,
//! `$BONE_MRPC_TEST_URL`, `$BONE_MRPC_DEV_IDS_URL`, `$BONE_DATA_MIRROR`, `$HF_ENDPOINT`,
//! `$BONE_ENCODER_REPO`, `$BONE_DECODER_REPO` and `$BONE_DECODER_GGUF_REPO`.

use std::path::PathBuf;

use bone_hub::assets::{fetch_all, DataSource, Plan, Sources};
use bone_hub::download::Outcome;
use bone_hub::HubSettings;

/// Runs `assets --download [--to DIR]`.
pub fn download(args: &[String]) -> Result<(), String> {
    let mut to = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--download" => {}
            "--to" => to = Some(PathBuf::from(it.next().ok_or("--to needs a folder")?)),
            other => {
                return Err(format!(
                    "unknown option `{other}` for `assets --download` (usage: cargo xtask \
                     assets --download [--to DIR])"
                ))
            }
        }
    }
    let dest = to
        .or_else(|| {
            std::env::var_os("BONE_DATA_ROOT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| crate::workspace_root().join("datasets"));
    let hub = HubSettings::from_env();
    if hub.offline {
        return Err("HF_HUB_OFFLINE is set: unset it to download".into());
    }
    let plan = Plan::standard(&Sources::from_env());
    println!(
        "==> {} data files into {}; {} models from {} into the Hugging Face cache {}",
        plan.data.len(),
        dest.display(),
        plan.models.len(),
        hub.endpoint,
        hub.cache.display()
    );
    for (what, why) in &plan.skipped {
        println!("    skipped {what}: {why}");
    }
    if let Some(DataSource::Mrpc(m)) = plan
        .data
        .iter()
        .map(|a| &a.source)
        .find(|s| matches!(s, DataSource::Mrpc(_)))
    {
        println!(
            "    glue/MRPC: written last, as GLUE's download_glue_data.py does, from {}, {} and {}",
            m.train, m.test, m.dev_ids
        );
    }
    let fetched = fetch_all(&plan, &dest, &hub).map_err(|e| e.to_string())?;
    let mut new = 0;
    for f in &fetched {
        let how = match f.outcome {
            Outcome::Present => "already there".to_string(),
            Outcome::Downloaded { resumed, retried } => {
                new += 1;
                format!(
                    "downloaded (resumed {resumed}×, re-fetched after a bad checksum {retried}×)"
                )
            }
        };
        println!("    {}: {how}", f.path.display());
    }
    println!(
        "<== {new} downloaded, {} already there, all sha256 checked. Run e.g. \
         `cargo run --release -p experiments --bin glue-sst2` (set BONE_DATA_ROOT={} if it is \
         not the workspace's datasets/)",
        fetched.len() - new,
        dest.display()
    );
    Ok(())
}
