//! What `cargo xtask assets --download` fetches on a machine without `../shared`, from where,
//! and the hashes each file must have.
//!
//! - Data files: every entry of `datasets/SHA256SUMS` with a public source — GLUE task files
//!   from GLUE's zip archives (`$BONE_GLUE_URL`, default `https://dl.fbaipublicfiles.com/glue/data`,
//!   `<TASK>.zip` holding `<TASK>/<file>`), MRPC written as GLUE's script writes it from the
//!   MSR Paraphrase Corpus files and GLUE's dev id list ([`crate::mrpc`];
//!   `$BONE_MRPC_TRAIN_URL`, `$BONE_MRPC_TEST_URL`, `$BONE_MRPC_DEV_IDS_URL`), GSM8K from
//!   openai/grade-school-math (`$BONE_GSM8K_URL`, default its raw GitHub tree).
//!   `$BONE_DATA_MIRROR` replaces every data source by a plain mirror laid out like the data
//!   root (`<mirror>/glue/SST-2/dev.tsv`).
//! - The MetaMathQA sample (`metamathqa/sample.json`, rows quoted in public code) has no
//!   public file and comes only from a mirror. The full MetaMathQA (the Hub dataset
//!   `meta-math/MetaMathQA`, 395K rows) is not fetched: nothing here pins its hash, and the
//!   `metamath` job does not need it — its default data is GSM8K train in MetaMathQA's shape
//!   (downloaded here); `--data FILE` takes a MetaMathQA file the user fetched.
//! - Models: the default encoder and decoder through the Hub client, into the Hugging Face
//!   cache ([`HubSettings`]), each file checked against the sha256 of `../shared/SHA256SUMS`.
//!   stories260K (the default decoder) has no public Hub repository in Hugging Face layout, so
//!   SmolLM2-135M-Instruct as a Q4_1 GGUF ([`DECODER_GGUF`]) is fetched instead; the decoder
//!   jobs fall back to it when stories260K is nowhere ([`DefaultModel::locate`]).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cache::{CachedRepo, RepoId};
use crate::client::HubClient;
use crate::defaults::{DefaultModel, DECODER, DECODER_GGUF, ENCODER};
use crate::download::{download_verified, part_path, sha256_file, Outcome, ATTEMPTS};
use crate::error::{io, HubError, Result};
use crate::mrpc::MrpcSources;
use crate::resolve::DEFAULT_REVISION;
use crate::settings::HubSettings;

/// `datasets/SHA256SUMS`: the data files and their sha256.
pub const DATA_SUMS: &str = include_str!("../../../datasets/SHA256SUMS");
/// GLUE's archives (the URLs of `download_glue_data.py`).
pub const GLUE_URL: &str = "https://dl.fbaipublicfiles.com/glue/data";
/// openai/grade-school-math's files.
pub const GSM8K_URL: &str = "https://raw.githubusercontent.com/openai/grade-school-math/master";

/// all-MiniLM-L6-v2's files and their sha256 (those of `../shared/models/all-MiniLM-L6-v2`).
pub const ENCODER_FILES: &[(&str, &str)] = &[
    (
        "config.json",
        "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    ),
    (
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
    (
        "tokenizer.json",
        "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    ),
    (
        "tokenizer_config.json",
        "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    ),
    (
        "special_tokens_map.json",
        "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    ),
    (
        "vocab.txt",
        "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    ),
    (
        "modules.json",
        "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    ),
    (
        "1_Pooling/config.json",
        "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    ),
];

/// stories260K's files and their sha256 (those of `../shared/models/stories260K`).
pub const DECODER_FILES: &[(&str, &str)] = &[
    (
        "config.json",
        "215f6552f98559b873f4e3f14d09a021b911649ba9211836cd5257d4de9a24c9",
    ),
    (
        "model.safetensors",
        "3aa204a103515087dde5c6b8282eea378794c7ccd3aebb8a78af45695a9fb758",
    ),
    (
        "tokenizer.json",
        "122d22ca558413499eac24a0a4373c6ac76528aa97bd1f1a6a889214df0b254b",
    ),
    (
        "tokenizer_config.json",
        "1b0ab1fa7ec34b98c0f12c00b56fbac6a920c9b45e9966c5d02e37d11c2eca0d",
    ),
];

/// SmolLM2-135M-Instruct's Q4_1 GGUF and its sha256 (that of
/// `../shared/models/SmolLM2-135M-Instruct-GGUF`).
pub const DECODER_GGUF_FILES: &[(&str, &str)] = &[(
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)];

/// Where a data file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataSource {
    /// The file itself.
    Url(String),
    /// A member of a zip archive.
    ZipMember {
        /// The archive's URL.
        url: String,
        /// The member's path inside it.
        member: String,
    },
    /// One of GLUE's MRPC files, derived from the MSR corpus files ([`crate::mrpc`]).
    Mrpc(MrpcSources),
}

/// One data file: its path under the data root, its sha256 and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataAsset {
    /// Path relative to the data root (`glue/SST-2/dev.tsv`).
    pub rel: String,
    /// Pinned sha256.
    pub sha256: String,
    /// Where it comes from.
    pub source: DataSource,
}

/// One model: the repository, the revision and the pinned files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAsset {
    /// The repository id.
    pub repo: RepoId,
    /// The revision (`main`).
    pub revision: String,
    /// `(file, sha256)` pairs.
    pub files: Vec<(String, String)>,
}

/// The base URLs, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// GLUE's archives (`$BONE_GLUE_URL`).
    pub glue: String,
    /// GSM8K's repository tree (`$BONE_GSM8K_URL`).
    pub gsm8k: String,
    /// The MSR Paraphrase Corpus files and GLUE's dev id list MRPC is written from.
    pub mrpc: MrpcSources,
    /// A plain mirror of the whole data root (`$BONE_DATA_MIRROR`), replacing both.
    pub mirror: Option<String>,
}

impl Sources {
    /// The sources this environment names, else the public ones.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .map(|v| v.trim().trim_end_matches('/').to_string())
        };
        Self {
            glue: var("BONE_GLUE_URL").unwrap_or_else(|| GLUE_URL.to_string()),
            gsm8k: var("BONE_GSM8K_URL").unwrap_or_else(|| GSM8K_URL.to_string()),
            mrpc: MrpcSources {
                train: var("BONE_MRPC_TRAIN_URL").unwrap_or_else(|| crate::mrpc::TRAIN_URL.into()),
                test: var("BONE_MRPC_TEST_URL").unwrap_or_else(|| crate::mrpc::TEST_URL.into()),
                dev_ids: var("BONE_MRPC_DEV_IDS_URL")
                    .unwrap_or_else(|| crate::mrpc::DEV_IDS_URL.into()),
            },
            mirror: var("BONE_DATA_MIRROR"),
        }
    }

    /// The source of `rel`, or why it has none.
    pub fn source(&self, rel: &str) -> std::result::Result<DataSource, String> {
        if let Some(mirror) = &self.mirror {
            return Ok(DataSource::Url(format!("{mirror}/{rel}")));
        }
        let parts: Vec<&str> = rel.split('/').collect();
        match parts.as_slice() {
            ["glue", "MRPC", _] => Ok(DataSource::Mrpc(self.mrpc.clone())),
            ["glue", task, file] => {
                let archive = if *task == "QNLI" { "QNLIv2" } else { task };
                Ok(DataSource::ZipMember {
                    url: format!("{}/{archive}.zip", self.glue),
                    member: format!("{task}/{file}"),
                })
            }
            ["gsm8k", "LICENSE"] => Ok(DataSource::Url(format!("{}/LICENSE", self.gsm8k))),
            ["gsm8k", file] => Ok(DataSource::Url(format!(
                "{}/grade_school_math/data/{file}",
                self.gsm8k
            ))),
            ["metamathqa", _] => Err("no public file holds this sample (rows quoted in public \
                 code); it comes only from $BONE_DATA_MIRROR. The metamath job does not need it: \
                 its default data is GSM8K train in MetaMathQA's shape (downloaded here); for the \
                 full set, `huggingface-cli download meta-math/MetaMathQA --repo-type dataset` \
                 and pass its MetaMathQA-395K.json as --data"
                .into()),
            _ => Err("no public source; use $BONE_DATA_MIRROR".into()),
        }
    }
}

/// What to fetch, and what cannot be fetched (with why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Data files.
    pub data: Vec<DataAsset>,
    /// Models.
    pub models: Vec<ModelAsset>,
    /// `(what, why)` for everything left out.
    pub skipped: Vec<(String, String)>,
}

impl Plan {
    /// Every data file of `datasets/SHA256SUMS` and both default models.
    pub fn standard(sources: &Sources) -> Self {
        let mut plan = Self {
            data: Vec::new(),
            models: Vec::new(),
            skipped: Vec::new(),
        };
        for (sha256, rel) in DATA_SUMS.lines().filter_map(|l| l.split_once("  ")) {
            match sources.source(rel) {
                Ok(source) => plan.data.push(DataAsset {
                    rel: rel.to_string(),
                    sha256: sha256.to_string(),
                    source,
                }),
                Err(why) => plan.skipped.push((rel.to_string(), why)),
            }
        }
        for (model, files) in [
            (ENCODER, ENCODER_FILES),
            (DECODER, DECODER_FILES),
            (DECODER_GGUF, DECODER_GGUF_FILES),
        ] {
            plan.add_model(&model, files);
        }
        plan
    }

    fn add_model(&mut self, model: &DefaultModel, files: &[(&str, &str)]) {
        match model.repo_id() {
            Some(repo) => self.models.push(ModelAsset {
                repo,
                revision: DEFAULT_REVISION.to_string(),
                files: files
                    .iter()
                    .map(|(f, s)| (f.to_string(), s.to_string()))
                    .collect(),
            }),
            None => self.skipped.push((
                model.what.to_string(),
                format!(
                    "no public Hub repository holds this Hugging Face-layout conversion; set ${} \
                     to one that does (its files are checked against the pinned sha256). The \
                     decoder jobs use {} where it is missing",
                    model.hub_env, DECODER_GGUF.what
                ),
            )),
        }
    }
}

/// One fetched item and how it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where it is now.
    pub path: PathBuf,
    /// How it got there.
    pub outcome: Outcome,
}

/// Fetches every item of `plan`: data under `data_root`, models into the cache of `hub`,
/// then the MRPC files derived from their sources (last, so that a mismatch there leaves
/// everything else in place).
///
/// # Errors
/// The first failure: [`HubError::Download`] naming the URL and the file, or
/// [`HubError::Checksum`] after [`ATTEMPTS`] downloads brought the wrong bytes; for MRPC,
/// see [`crate::mrpc::fetch`].
pub fn fetch_all(plan: &Plan, data_root: &Path, hub: &HubSettings) -> Result<Vec<Fetched>> {
    let agent = agent();
    let mut out = Vec::new();
    let (mrpc, plain): (Vec<&DataAsset>, Vec<&DataAsset>) = plan
        .data
        .iter()
        .partition(|a| matches!(a.source, DataSource::Mrpc(_)));
    for asset in plain {
        out.push(fetch_data(&agent, asset, data_root, hub.progress)?);
    }
    if !plan.models.is_empty() {
        let client = HubClient::new(hub)?;
        for model in &plan.models {
            for (file, sha256) in &model.files {
                out.push(fetch_model_file(&client, hub, model, file, sha256)?);
            }
        }
    }
    out.extend(crate::mrpc::fetch(&agent, &mrpc, data_root, hub.progress)?);
    Ok(out)
}

/// The HTTP agent for data files: bounded connect and read times.
pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .try_proxy_from_env(true)
        .build()
}

/// Downloads one data file (directly, or through its archive) and checks it.
pub fn fetch_data(
    agent: &ureq::Agent,
    asset: &DataAsset,
    data_root: &Path,
    progress: bool,
) -> Result<Fetched> {
    let dest = data_root.join(&asset.rel);
    let outcome = match &asset.source {
        DataSource::Url(url) => {
            download_verified(agent, url, &dest, Some(&asset.sha256), progress)?
        }
        DataSource::ZipMember { url, member } => fetch_member(
            agent,
            url,
            member,
            &dest,
            &asset.sha256,
            data_root,
            progress,
        )?,
        DataSource::Mrpc(_) => {
            let mut fetched = crate::mrpc::fetch(agent, &[asset], data_root, progress)?;
            return Ok(fetched.remove(0));
        }
    };
    Ok(Fetched {
        path: dest,
        outcome,
    })
}

/// Downloads the archive (kept in `<data_root>/.downloads/`), extracts `member` and checks
/// it; a wrong sha256 throws the archive away and downloads it again.
fn fetch_member(
    agent: &ureq::Agent,
    url: &str,
    member: &str,
    dest: &Path,
    sha256: &str,
    data_root: &Path,
    progress: bool,
) -> Result<Outcome> {
    if dest.is_file() && sha256_file(dest)? == sha256 {
        return Ok(Outcome::Present);
    }
    let name = url.rsplit('/').next().unwrap_or("archive.zip");
    let archive = data_root.join(".downloads").join(name);
    let mut resumed = 0;
    let mut found = String::new();
    for attempt in 0..ATTEMPTS {
        if let Outcome::Downloaded { resumed: r, .. } =
            download_verified(agent, url, &archive, None, progress)?
        {
            resumed += r;
        }
        extract(&archive, member, dest)?;
        found = sha256_file(&part_path(dest))?;
        if found == sha256 {
            std::fs::rename(part_path(dest), dest).map_err(io(dest))?;
            return Ok(Outcome::Downloaded {
                resumed,
                retried: attempt,
            });
        }
        eprintln!(
            "{member} of {}: sha256 {found}, expected {sha256}; downloading the archive again",
            archive.display()
        );
        std::fs::remove_file(&archive).map_err(io(&archive))?;
    }
    Err(HubError::Checksum {
        url: format!("{url} ({member})"),
        file: dest.to_path_buf(),
        expected: sha256.to_string(),
        found,
        attempts: ATTEMPTS,
    })
}

/// Writes `member` of `archive` to `<dest>.part`.
fn extract(archive: &Path, member: &str, dest: &Path) -> Result<()> {
    let fail = |message: String| HubError::Archive {
        archive: archive.to_path_buf(),
        member: member.to_string(),
        message,
    };
    let file = File::open(archive).map_err(io(archive))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| fail(e.to_string()))?;
    let mut entry = zip.by_name(member).map_err(|e| fail(e.to_string()))?;
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let part = part_path(dest);
    let mut out = File::create(&part).map_err(io(&part))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = entry.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io(&part))?;
    }
    Ok(())
}

/// Downloads one model file into the cache unless its snapshot already has it with the
/// pinned sha256; a wrong sha256 removes the blob and the link and downloads it again.
pub fn fetch_model_file(
    client: &HubClient,
    hub: &HubSettings,
    model: &ModelAsset,
    file: &str,
    sha256: &str,
) -> Result<Fetched> {
    let cached = CachedRepo::new(&hub.cache, model.repo.clone());
    if let Some(path) = cached.snapshot(&model.revision).map(|s| s.join(file)) {
        if path.is_file() && sha256_file(&path)? == sha256 {
            return Ok(Fetched {
                path,
                outcome: Outcome::Present,
            });
        }
    }
    let url = client.url(&model.repo, &model.revision, file);
    let mut found = String::new();
    let mut last = cached.dir().to_path_buf();
    for attempt in 0..ATTEMPTS {
        let path = client
            .download(&model.repo, &model.revision, file)?
            .ok_or_else(|| HubError::Download {
                url: url.clone(),
                file: cached.dir().to_path_buf(),
                message: "404 Not Found: the repository has no such file".into(),
            })?;
        found = sha256_file(&path)?;
        if found == sha256 {
            return Ok(Fetched {
                path,
                outcome: Outcome::Downloaded {
                    resumed: 0,
                    retried: attempt,
                },
            });
        }
        eprintln!(
            "{}: sha256 {found}, expected {sha256}; downloading it again",
            path.display()
        );
        remove_cached(&path)?;
        last = path;
    }
    Err(HubError::Checksum {
        url,
        file: last,
        expected: sha256.to_string(),
        found,
        attempts: ATTEMPTS,
    })
}

/// Removes a snapshot file and the blob it links to.
fn remove_cached(path: &Path) -> Result<()> {
    if let Ok(blob) = std::fs::canonicalize(path) {
        if blob != path {
            std::fs::remove_file(&blob).map_err(io(&blob))?;
        }
    }
    std::fs::remove_file(path).map_err(io(path))
}
