//! `cargo xtask assets --download`'s machinery against a loopback server serving copies of
//! files from `../shared`: files land checked, a corrupted response is refused and fetched
//! again, an interrupted body resumes with a Range request, archives are unpacked, model
//! files reach the Hugging Face cache layout, GLUE's MRPC files are written from MSR-format
//! sources byte for byte, and failures name the URL and the file.

use std::io::Write;
use std::path::{Path, PathBuf};

use bone_hub::assets::{fetch_all, Plan, Sources, ENCODER_FILES};
use bone_hub::download::{sha256_file, Outcome};
use bone_hub::mrpc::MrpcSources;
use bone_hub::HubSettings;

mod support;
use support::server::{sha256_hex, Fault, Server};

fn shared() -> PathBuf {
    let dir = std::env::var_os("BONE_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    assert!(
        dir.join("datasets").is_dir(),
        "the shared data is missing: looked for {} (set BONE_SHARED_DIR)",
        dir.join("datasets").display()
    );
    dir
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(shared().join(rel)).unwrap()
}

/// GLUE's layout: `SST-2.zip` holding `SST-2/dev.tsv`.
fn sst2_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("SST-2/dev.tsv", options).unwrap();
    zip.write_all(&read("datasets/glue/SST-2/dev.tsv")).unwrap();
    zip.finish().unwrap().into_inner()
}

fn sources(server: &Server) -> Sources {
    Sources {
        glue: format!("{}/glue", server.url()),
        gsm8k: format!("{}/gsm8k", server.url()),
        mrpc: MrpcSources {
            train: format!("{}{MSR_TRAIN}", server.url()),
            test: format!("{}{MSR_TEST}", server.url()),
            dev_ids: format!("{}{DEV_IDS}", server.url()),
        },
        mirror: None,
    }
}

/// The standard plan cut down to `rels` and no models.
fn plan(server: &Server, rels: &[&str]) -> Plan {
    let mut plan = Plan::standard(&sources(server));
    plan.data.retain(|a| rels.contains(&a.rel.as_str()));
    plan.models.clear();
    assert_eq!(plan.data.len(), rels.len(), "{:?}", plan.data);
    plan
}

fn settings(cache: &Path, server: &Server) -> HubSettings {
    HubSettings {
        endpoint: server.url(),
        token: Some("hf_test_token".into()),
        ..HubSettings::at(cache)
    }
}

const MSR_TRAIN: &str = "/senteval/msr_paraphrase_train.txt";
const MSR_TEST: &str = "/senteval/msr_paraphrase_test.txt";
const DEV_IDS: &str = "/glue/mrpc_dev_ids.tsv";
const MRPC: [&str; 3] = [
    "glue/MRPC/dev.tsv",
    "glue/MRPC/test.tsv",
    "glue/MRPC/train.tsv",
];

/// The shared MRPC files' rows (after each header).
fn rows(file: &str) -> Vec<String> {
    let text = String::from_utf8(read(&format!("datasets/glue/MRPC/{file}"))).unwrap();
    text.lines().skip(1).map(String::from).collect()
}

/// MSR Paraphrase Corpus files as GLUE's script reads them, rebuilt from the shared MRPC
/// files: the train file (CRLF, BOM header) holds the train rows then the dev rows, the test
/// file (LF) has a label column, the dev id list names the dev rows' id pairs.
fn msr_sources(dev_rows: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let header = "\u{feff}Quality\t#1 ID\t#2 ID\t#1 String\t#2 String";
    let dev = rows("dev.tsv");
    let mut train = vec![header.to_string()];
    train.extend(rows("train.tsv"));
    train.extend(dev.iter().cloned());
    let mut test = vec![header.to_string()];
    for row in rows("test.tsv") {
        let (_, rest) = row.split_once('\t').unwrap();
        test.push(format!("1\t{rest}"));
    }
    let ids: String = dev[..dev_rows]
        .iter()
        .map(|r| {
            let f: Vec<&str> = r.split('\t').collect();
            format!("{}\t{}\n", f[1], f[2])
        })
        .collect();
    (
        (train.join("\r\n") + "\r\n").into_bytes(),
        (test.join("\n") + "\n").into_bytes(),
        ids.into_bytes(),
    )
}

fn serve_msr(server: &Server, dev_rows: usize) {
    let (train, test, ids) = msr_sources(dev_rows);
    server.serve(MSR_TRAIN, train);
    server.serve(MSR_TEST, test);
    server.serve(DEV_IDS, ids);
}

const TEST_JSONL: &str = "/gsm8k/grade_school_math/data/test.jsonl";
const LICENSE: &str = "/gsm8k/LICENSE";

#[test]
fn data_files_land_checked_resumed_and_retried() {
    let server = Server::start();
    server.serve("/glue/SST-2.zip", sst2_zip());
    server.serve(TEST_JSONL, read("datasets/gsm8k/test.jsonl"));
    server.serve(LICENSE, read("datasets/gsm8k/LICENSE"));
    server.fault(TEST_JSONL, Fault::CloseAfter(100_000));
    server.fault(LICENSE, Fault::Corrupt);
    let root = tempfile::tempdir().unwrap();
    let rels = ["glue/SST-2/dev.tsv", "gsm8k/LICENSE", "gsm8k/test.jsonl"];
    let plan = plan(&server, &rels);
    let hub = settings(&root.path().join("hub"), &server);

    let fetched = fetch_all(&plan, root.path(), &hub).unwrap();
    let outcome = |rel: &str| {
        fetched
            .iter()
            .find(|f| f.path == root.path().join(rel))
            .map(|f| f.outcome)
    };
    for asset in &plan.data {
        let path = root.path().join(&asset.rel);
        assert_eq!(sha256_file(&path).unwrap(), asset.sha256, "{}", asset.rel);
        assert!(!Path::new(&format!("{}.part", path.display())).exists());
    }
    assert_eq!(
        outcome("glue/SST-2/dev.tsv"),
        Some(Outcome::Downloaded {
            resumed: 0,
            retried: 0
        })
    );
    assert!(root.path().join(".downloads/SST-2.zip").is_file());
    // Cut after 100,000 bytes: the second request asks for the rest.
    assert_eq!(
        outcome("gsm8k/test.jsonl"),
        Some(Outcome::Downloaded {
            resumed: 1,
            retried: 0
        })
    );
    let ranges: Vec<_> = server
        .requests(TEST_JSONL)
        .into_iter()
        .map(|l| (l.range, l.status))
        .collect();
    assert_eq!(ranges, [(None, 200), (Some("bytes=100000-".into()), 206)]);
    // Corrupted once: refused, downloaded again from the start.
    assert_eq!(
        outcome("gsm8k/LICENSE"),
        Some(Outcome::Downloaded {
            resumed: 0,
            retried: 1
        })
    );
    assert_eq!(server.requests(LICENSE).len(), 2);

    // A second run finds everything in place and asks for nothing.
    let before = server.log().len();
    let again = fetch_all(&plan, root.path(), &hub).unwrap();
    assert!(
        again.iter().all(|f| f.outcome == Outcome::Present),
        "{again:?}"
    );
    assert_eq!(server.log().len(), before);
}

#[test]
fn a_part_file_left_by_an_earlier_run_is_resumed() {
    let server = Server::start();
    let body = read("datasets/gsm8k/test.jsonl");
    server.serve(TEST_JSONL, body.clone());
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("gsm8k/test.jsonl");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(root.path().join("gsm8k/test.jsonl.part"), &body[..4321]).unwrap();
    let plan = plan(&server, &["gsm8k/test.jsonl"]);
    fetch_all(&plan, root.path(), &settings(root.path(), &server)).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let log = server.requests(TEST_JSONL);
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].range.as_deref(), Some("bytes=4321-"));
}

#[test]
fn wrong_bytes_every_time_is_an_error_naming_url_and_file() {
    let server = Server::start();
    let body = read("datasets/gsm8k/LICENSE");
    server.serve(LICENSE, body.clone());
    for _ in 0..3 {
        server.fault(LICENSE, Fault::Corrupt);
    }
    let root = tempfile::tempdir().unwrap();
    let plan = plan(&server, &["gsm8k/LICENSE"]);
    let err = fetch_all(&plan, root.path(), &settings(root.path(), &server)).unwrap_err();
    let corrupted: Vec<u8> = body.iter().map(|b| b ^ 0x5a).collect();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: sha256 {} but {} was expected (downloaded from {}{LICENSE}, 3 attempts); the \
             source or a mirror serves other bytes",
            root.path().join("gsm8k/LICENSE").display(),
            sha256_hex(&corrupted),
            plan.data[0].sha256,
            server.url()
        )
    );
    assert!(!root.path().join("gsm8k/LICENSE").exists());
    assert_eq!(server.requests(LICENSE).len(), 3);
}

#[test]
fn a_missing_file_or_member_names_the_url_and_the_file() {
    let server = Server::start();
    let root = tempfile::tempdir().unwrap();
    let plan1 = plan(&server, &["gsm8k/test.jsonl"]);
    let err = fetch_all(&plan1, root.path(), &settings(root.path(), &server)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "downloading {}{TEST_JSONL} to {}: HTTP 404 Not Found",
            server.url(),
            root.path().join("gsm8k/test.jsonl.part").display()
        )
    );

    // An archive without the member.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("SST-2/train.tsv", zip::write::SimpleFileOptions::default())
        .unwrap();
    zip.write_all(b"sentence\tlabel\n").unwrap();
    server.serve("/glue/SST-2.zip", zip.finish().unwrap().into_inner());
    let plan2 = plan(&server, &["glue/SST-2/dev.tsv"]);
    let err = fetch_all(&plan2, root.path(), &settings(root.path(), &server)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: member `SST-2/dev.tsv`: specified file not found in archive",
            root.path().join(".downloads/SST-2.zip").display()
        )
    );
}

#[test]
fn model_files_reach_the_hub_cache_checked_and_retried() {
    const REPO: &str = "sentence-transformers/all-MiniLM-L6-v2";
    const COMMIT: &str = "c9745ed1d9f207416be6d2e6f8de32d1f16199bf";
    let server = Server::start();
    let files = ["config.json", "tokenizer.json"];
    for file in files {
        let body = read(&format!("models/all-MiniLM-L6-v2/{file}"));
        server.serve_hub(REPO, "main", COMMIT, file, body);
    }
    let config_path = format!("/{REPO}/resolve/main/config.json");
    server.fault(&config_path, Fault::Corrupt);
    let cache = tempfile::tempdir().unwrap();
    let hub = settings(cache.path(), &server);
    let mut plan = Plan::standard(&sources(&server));
    plan.data.clear();
    plan.models.retain(|m| m.repo.as_str() == REPO);
    plan.models[0]
        .files
        .retain(|(f, _)| files.contains(&f.as_str()));
    assert_eq!(plan.models[0].files.len(), 2);

    let fetched = fetch_all(&plan, Path::new("/nonexistent-data-root"), &hub).unwrap();
    let repo_dir = cache
        .path()
        .join("models--sentence-transformers--all-MiniLM-L6-v2");
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        COMMIT
    );
    for (file, sha256) in ENCODER_FILES.iter().filter(|(f, _)| files.contains(f)) {
        let link = snapshot.join(file);
        assert!(link.symlink_metadata().unwrap().is_symlink(), "{file}");
        let blob = std::fs::canonicalize(&link).unwrap();
        assert_eq!(
            blob,
            repo_dir.join("blobs").join(sha256).canonicalize().unwrap()
        );
        assert_eq!(sha256_file(&link).unwrap(), *sha256);
    }
    assert_eq!(
        fetched[0].outcome,
        Outcome::Downloaded {
            resumed: 0,
            retried: 1
        }
    );
    // A metadata probe and a download per attempt, all with the token.
    let config_requests = server.requests(&config_path);
    assert_eq!(config_requests.len(), 4, "{config_requests:?}");
    assert!(server
        .log()
        .iter()
        .all(|l| l.authorization.as_deref() == Some("Bearer hf_test_token")));
}

#[test]
fn mrpc_is_written_from_msr_sources_byte_for_byte() {
    let server = Server::start();
    serve_msr(&server, rows("dev.tsv").len());
    // Corrupted once: no longer tab-separated, refused, every source fetched again.
    server.fault(MSR_TRAIN, Fault::Corrupt);
    let root = tempfile::tempdir().unwrap();
    let plan = plan(&server, &MRPC);
    let fetched = fetch_all(&plan, root.path(), &settings(root.path(), &server)).unwrap();
    for rel in MRPC {
        let derived = std::fs::read(root.path().join(rel)).unwrap();
        assert_eq!(derived, read(&format!("datasets/{rel}")), "{rel}");
    }
    for asset in &plan.data {
        let path = root.path().join(&asset.rel);
        assert_eq!(sha256_file(&path).unwrap(), asset.sha256, "{}", asset.rel);
    }
    assert_eq!(fetched.len(), 3);
    assert!(
        fetched.iter().all(|f| f.outcome
            == Outcome::Downloaded {
                resumed: 0,
                retried: 1
            }),
        "{fetched:?}"
    );
    for path in [MSR_TRAIN, MSR_TEST, DEV_IDS] {
        assert_eq!(server.requests(path).len(), 2, "{path}");
    }
    // A second run finds the files in place and asks for nothing.
    let before = server.log().len();
    let again = fetch_all(&plan, root.path(), &settings(root.path(), &server)).unwrap();
    assert!(again.iter().all(|f| f.outcome == Outcome::Present));
    assert_eq!(server.log().len(), before);
}

#[test]
fn mrpc_from_other_sources_is_refused_naming_the_file() {
    let server = Server::start();
    // The dev id list lacks its last pair: that row lands in train.tsv, dev.tsv misses it.
    let dev = rows("dev.tsv");
    serve_msr(&server, dev.len() - 1);
    let root = tempfile::tempdir().unwrap();
    let plan = plan(&server, &MRPC);
    let err = fetch_all(&plan, root.path(), &settings(root.path(), &server)).unwrap_err();
    let text = String::from_utf8(read("datasets/glue/MRPC/dev.tsv")).unwrap();
    let short = &text[..text.len() - dev.last().unwrap().len() - 1];
    let url = server.url();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: sha256 {} but {} was expected (downloaded from {url}{MSR_TRAIN} + \
             {url}{MSR_TEST} + {url}{DEV_IDS} through GLUE's format_mrpc, 3 attempts); the \
             source or a mirror serves other bytes",
            root.path().join("glue/MRPC/dev.tsv").display(),
            sha256_hex(short.as_bytes()),
            plan.data[0].sha256,
        )
    );
    for rel in MRPC {
        assert!(!root.path().join(rel).exists(), "{rel}");
    }
    assert!(!root
        .path()
        .join(".downloads/mrpc/mrpc_dev_ids.tsv")
        .exists());
    assert_eq!(server.requests(DEV_IDS).len(), 3);
}
