//! Run configurations shared by the training jobs: defaults, a `--config` TOML file and
//! command-line flags, in that order of precedence; `config.toml` in the run folder; the
//! fingerprint a resumed run must match; and the checks `--resume` makes on given flags.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A job's configuration: every setting of a run, serialisable as TOML (field names are the
/// keys; with `-` for `_` they are the flags).
pub trait RunConfig: Serialize + DeserializeOwned + Clone {
    /// Keys whose value may be unset (absent from the TOML of the defaults).
    const OPTIONAL_KEYS: &'static [&'static str];
    /// Keys a resumed run may change: where files are, which backend runs, how often things
    /// are logged or checkpointed.
    const CHANGEABLE_ON_RESUME: &'static [&'static str];

    /// This configuration with every setting that does not determine the trained weights
    /// reset (paths reduced to file names, backend, logging), for [`fingerprint`].
    fn essential(&self) -> Self;

    /// Sets the run folder.
    fn set_out(&mut self, out: PathBuf);

    /// The backend the run asks for.
    fn device(&self) -> crate::device::DeviceChoice;
}

/// A digest of the settings that determine the trained weights.
pub fn fingerprint<C: RunConfig>(config: &C) -> String {
    let text = toml::to_string(&config.essential()).unwrap_or_default();
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Writes `config.toml` atomically.
///
/// # Errors
/// An I/O error.
pub fn save<C: RunConfig>(config: &C, path: &Path) -> anyhow::Result<()> {
    let text = toml::to_string_pretty(config)?;
    bone_io::fs::write_atomic(path, text.as_bytes())?;
    Ok(())
}

/// Reads a `config.toml` written by [`save`].
///
/// # Errors
/// A missing or invalid file, naming it.
pub fn load<C: RunConfig>(path: &Path) -> anyhow::Result<C> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// `config` with the keys of `table` replaced.
///
/// # Errors
/// A key whose value has the wrong type.
pub fn overlay<C: RunConfig>(config: &C, table: &toml::Table) -> anyhow::Result<C> {
    let mut base = toml::Table::try_from(config)?;
    for (k, v) in table {
        base.insert(k.clone(), v.clone());
    }
    Ok(base.try_into()?)
}

/// Reads a TOML file of (some of) the keys of `C`, checking them against `defaults`.
///
/// # Errors
/// A missing file, invalid TOML, an unknown key (listing the known ones) or a value of the
/// wrong type, naming the file.
pub fn read_partial<C: RunConfig>(path: &Path, defaults: &C) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut probe = toml::Table::try_from(defaults)?;
    let mut known: Vec<String> = probe.keys().cloned().collect();
    known.extend(C::OPTIONAL_KEYS.iter().map(|k| k.to_string()));
    known.sort();
    known.dedup();
    for (k, v) in &table {
        if !known.contains(k) {
            bail!(
                "{}: unknown key `{k}`; known keys: {}",
                path.display(),
                known.join(", ")
            );
        }
        probe.insert(k.clone(), v.clone());
    }
    let _: C = probe
        .try_into()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(table)
}

/// The flags that were given on the command line, as TOML keys: `args` serialised (its
/// fields named as the config keys, unset ones skipped) and kept where `matches` says the
/// value came from the command line.
///
/// # Errors
/// A value that does not serialise (never for valid flags).
pub fn given_flags<A: Serialize>(args: &A, matches: &ArgMatches) -> anyhow::Result<toml::Table> {
    let from_cli = |id: &str| {
        matches.try_get_raw(id).ok().flatten().is_some()
            && matches.value_source(id) == Some(ValueSource::CommandLine)
    };
    let all = toml::Table::try_from(args)?;
    Ok(all.into_iter().filter(|(k, _)| from_cli(k)).collect())
}

/// The configuration of a run: a new one from `defaults`, the `--config` file and the `given`
/// flags; or, with `resume`, the run's saved one, where given flags must equal the saved
/// values except [`RunConfig::CHANGEABLE_ON_RESUME`] ones.
///
/// # Errors
/// Invalid files, unknown keys, or flags that differ from the resumed run (all listed).
pub fn resolve<C: RunConfig>(
    defaults: C,
    config_file: Option<&Path>,
    resume: Option<&Path>,
    given: &toml::Table,
) -> anyhow::Result<C> {
    let Some(run) = resume else {
        let mut config = defaults.clone();
        if let Some(file) = config_file {
            config = overlay(&config, &read_partial(file, &defaults)?)?;
        }
        return overlay(&config, given);
    };
    let saved: C = load(&run.join("config.toml")).with_context(|| {
        format!(
            "--resume {}: not the folder of an earlier run",
            run.display()
        )
    })?;
    let saved_table = toml::Table::try_from(&saved)?;
    let mut mismatches = Vec::new();
    let mut changeable = toml::Table::new();
    for (key, value) in given {
        if C::CHANGEABLE_ON_RESUME.contains(&key.as_str()) {
            changeable.insert(key.clone(), value.clone());
        } else if key != "out" && saved_table.get(key) != Some(value) {
            mismatches.push(format!(
                "--{} {} (the run used {})",
                key.replace('_', "-"),
                value,
                saved_table
                    .get(key)
                    .map_or("nothing".to_string(), |v| v.to_string())
            ));
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "--resume {}: the flags do not match the run: {}; drop them or start a new run",
            run.display(),
            mismatches.join(", ")
        );
    }
    let mut config = overlay(&saved, &changeable)?;
    config.set_out(run.to_path_buf());
    Ok(config)
}

/// The default run folder of a job: `runs/<job>-<method>[-r<r>]-seed<seed>` (`r` is `None`
/// for methods without an adapter).
pub fn default_run_folder(job: &str, method: &str, r: Option<usize>, seed: u64) -> PathBuf {
    let rank = r.map(|r| format!("-r{r}")).unwrap_or_default();
    PathBuf::from("runs").join(format!("{job}-{method}{rank}-seed{seed}"))
}

/// The file name of `path` (what a fingerprint keeps of a path that may move).
pub fn file_name(path: &Path) -> PathBuf {
    PathBuf::from(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
}
