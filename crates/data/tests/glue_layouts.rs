//! GLUE layouts with no data in ../shared (QQP, MNLI, WNLI) on small files written here, and
//! malformed input: every case is an error naming file, line and reason, or a counted skip.

use crate::common;

use std::path::Path;

use data::glue::{GlueSplit, GlueTask, Label};
use data::{DataError, DataRoot, LoadOptions, RowIssue};

const QQP_TRAIN: &str = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n\
133273\t213221\t213222\tHow is the life of a math student?\tWhich level of preparation is enough for JLPT5?\t0\n\
402555\t536040\t536041\tHow do I control my emotions?\tHow do you control your emotions?\t1\n";
const QQP_TEST: &str = "id\tquestion1\tquestion2\n0\tWhy am I mentally very lonely?\tHow do I get rid of loneliness?\n";

const MNLI_TRAIN: &str = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n\
0\t31193\t31193n\tgovernment\t( ( Conceptually cream ) skimming )\t( ( Product and ) geography )\t(ROOT (S))\t(ROOT (S))\tConceptually cream skimming has two basic dimensions - product and geography.\tProduct and geography are what make cream skimming work. \tneutral\tneutral\n\
1\t101457\t101457e\ttelephone\t( you ( know ) )\t( You ( lose ) )\t(ROOT (S))\t(ROOT (S))\tyou know during the season and i guess at at your level uh you lose them to the next level\tYou lose the things to the following level if the people recall.\tentailment\tentailment\n\
2\t134793\t134793c\tfiction\t( ( One ) ( of ) )\t( ( A ) ( member ) )\t(ROOT (S))\t(ROOT (S))\tOne of our number will carry out your instructions minutely.\tA member of my team will execute your orders with immense precision.\tcontradiction\tcontradiction\n";

const MNLI_DEV_HEADER: &str = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label\n";
const MNLI_DEV_ROW: &str = "0\t63735\t63735n\tslate\t( ( The ) )\t( ( The ) )\t(ROOT)\t(ROOT)\tThe new rights are nice enough\tEveryone really likes the newest benefits \tneutral\tentailment\tneutral\tneutral\tneutral\tneutral\n";
const MNLI_TEST: &str = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\n\
0\t31493\t31493\ttravel\t( ( Hierbas ) )\t( ( Hierbas ) )\t(ROOT)\t(ROOT)\tHierbas, ans seco, ans dulce, and frigola are just a few names worth keeping a look-out for.\tHierbas is a name worth looking out for.\n";

const WNLI_TRAIN: &str = "index\tsentence1\tsentence2\tlabel\n\
0\tI stuck a pin through a carrot. When I pulled the pin out, it had a hole.\tThe carrot had a hole.\t1\n\
1\tJohn couldn't see the stage with Billy in front of him because he is so short.\tJohn is so short.\t1\n\
2\tThe police arrested all of the gang members. They were trying to stop the drug trade in the neighborhood.\tThe police were trying to stop the drug trade in the neighborhood.\t1\n\
3\tSteve follows Fred's example in everything. He influences him hugely.\tSteve influences him hugely.\t0\n";
const WNLI_TEST: &str = "index\tsentence1\tsentence2\n0\tMaude and Dora had seen the trains rushing across the prairie.\tHorses ran away when Maude and Dora came into sight.\n";

/// A data root in a temp dir holding `files` (relative path, contents).
fn temp_root(files: &[(&str, String)]) -> (tempfile::TempDir, DataRoot) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (rel, contents) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, contents).expect("write");
    }
    let root = DataRoot::at(dir.path());
    (dir, root)
}

fn strict() -> LoadOptions {
    LoadOptions::default()
}

fn lenient() -> LoadOptions {
    LoadOptions {
        skip_bad_rows: true,
        ..Default::default()
    }
}

#[test]
fn qqp_layout() {
    let (_dir, root) = temp_root(&[
        ("glue/QQP/train.tsv", QQP_TRAIN.into()),
        ("glue/QQP/test.tsv", QQP_TEST.into()),
    ]);
    let train = GlueTask::Qqp
        .load(&root, GlueSplit::Train, &strict())
        .expect("train");
    assert_eq!(train.examples().len(), 2);
    assert_eq!(train.label_counts(), vec![1, 1]);
    let e = &train.examples()[1];
    assert_eq!(e.text_a, "How do I control my emotions?");
    assert_eq!(
        e.text_b.as_deref(),
        Some("How do you control your emotions?")
    );
    assert_eq!(e.label, Some(Label::Class(1)));
    let test = GlueTask::Qqp
        .load(&root, GlueSplit::Test, &strict())
        .expect("test");
    assert_eq!(test.examples().len(), 1);
    assert_eq!(test.examples()[0].label, None);
    assert_eq!(
        test.examples()[0].text_b.as_deref(),
        Some("How do I get rid of loneliness?")
    );
}

#[test]
fn mnli_layouts_train_dev_matched_mismatched_test() {
    let (_dir, root) = temp_root(&[
        ("glue/MNLI/train.tsv", MNLI_TRAIN.into()),
        (
            "glue/MNLI/dev_matched.tsv",
            format!("{MNLI_DEV_HEADER}{MNLI_DEV_ROW}"),
        ),
        (
            "glue/MNLI/dev_mismatched.tsv",
            format!(
                "{MNLI_DEV_HEADER}{}",
                MNLI_DEV_ROW.replace("\tneutral\n", "\tcontradiction\n")
            ),
        ),
        ("glue/MNLI/test_matched.tsv", MNLI_TEST.into()),
        ("glue/MNLI/test_mismatched.tsv", MNLI_TEST.into()),
    ]);
    let train = GlueTask::Mnli
        .load(&root, GlueSplit::Train, &strict())
        .expect("train");
    // entailment = 0, neutral = 1, contradiction = 2 (Hugging Face's order).
    let labels: Vec<_> = train.examples().iter().map(|e| e.label).collect();
    assert_eq!(
        labels,
        vec![
            Some(Label::Class(1)),
            Some(Label::Class(0)),
            Some(Label::Class(2))
        ]
    );
    assert_eq!(
        train.examples()[0].text_b.as_deref(),
        Some("Product and geography are what make cream skimming work.")
    );
    assert_eq!(train.label_counts(), vec![1, 1, 1]);

    let dev = GlueTask::Mnli
        .load(&root, GlueSplit::Dev, &strict())
        .expect("dev");
    assert_eq!(
        dev.examples()[0].label,
        Some(Label::Class(1)),
        "gold_label, not label1..5"
    );
    assert_eq!(dev.examples()[0].text_a, "The new rights are nice enough");
    let mm = GlueTask::Mnli
        .load(&root, GlueSplit::DevMismatched, &strict())
        .expect("dev mismatched");
    assert_eq!(mm.examples()[0].label, Some(Label::Class(2)));
    for split in [GlueSplit::Test, GlueSplit::TestMismatched] {
        let test = GlueTask::Mnli.load(&root, split, &strict()).expect("test");
        assert_eq!(test.examples().len(), 1);
        assert_eq!(test.examples()[0].label, None);
    }
}

#[test]
fn wnli_layout() {
    let (_dir, root) = temp_root(&[
        ("glue/WNLI/train.tsv", WNLI_TRAIN.into()),
        ("glue/WNLI/test.tsv", WNLI_TEST.into()),
    ]);
    let train = GlueTask::Wnli
        .load(&root, GlueSplit::Train, &strict())
        .expect("train");
    assert_eq!(train.examples().len(), 4);
    // 0 = not_entailment, 1 = entailment.
    assert_eq!(train.label_counts(), vec![1, 3]);
    assert_eq!(
        train.examples()[3].text_b.as_deref(),
        Some("Steve influences him hugely.")
    );
    let test = GlueTask::Wnli
        .load(&root, GlueSplit::Test, &strict())
        .expect("test");
    assert!(!test.is_labelled());
}

#[test]
fn crlf_line_endings_load() {
    let (_d, path) = common::write_temp("t.tsv", "sentence\tlabel\r\ngood film \t1\r\nbad\t0\r\n");
    let ds = GlueTask::Sst2
        .load_file(&path, GlueSplit::Train, &strict())
        .expect("load");
    assert_eq!(ds.examples()[0].text_a, "good film");
    assert_eq!(ds.examples()[1].label, Some(Label::Class(0)));
}

fn load_err(task: GlueTask, split: GlueSplit, contents: &[u8]) -> (DataError, String, String) {
    let (_d, path) = common::write_temp("bad.tsv", contents);
    let err = task
        .load_file(&path, split, &strict())
        .expect_err("must fail");
    let msg = err.to_string();
    (err, msg, path.display().to_string())
}

#[test]
fn missing_column_names_file_line_and_counts() {
    let (err, msg, path) = load_err(
        GlueTask::Sst2,
        GlueSplit::Train,
        b"sentence\tlabel\ngood\t1\nno tab here\n",
    );
    let DataError::BadRow { line, issue, .. } = &err else {
        panic!("expected a bad row, got {err}");
    };
    assert_eq!(*line, 3);
    assert!(matches!(
        **issue,
        RowIssue::ColumnCount {
            expected: 2,
            found: 1,
            ..
        }
    ));
    assert_eq!(
        msg,
        format!("{path}:3: expected 2 tab-separated columns (sentence, label), found 1")
    );
}

#[test]
fn bad_labels_name_column_expected_and_found() {
    let (_, msg, path) = load_err(
        GlueTask::Sst2,
        GlueSplit::Dev,
        b"sentence\tlabel\ngood\t7\n",
    );
    assert_eq!(
        msg,
        format!("{path}:2: column `label` (#2): expected a class index, one of 0, 1, found \"7\"")
    );
    let (_, msg, _) = load_err(
        GlueTask::Rte,
        GlueSplit::Train,
        b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n",
    );
    assert!(
        msg.contains(":2: column `label` (#4): expected a label, one of entailment, not_entailment, found \"maybe\""),
        "{msg}"
    );
    let header =
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n";
    let (_, msg, _) = load_err(
        GlueTask::Stsb,
        GlueSplit::Train,
        format!("{header}0\tg\tf\ty\t0\tn\tn\ta\tb\t6.5\n").as_bytes(),
    );
    assert!(
        msg.contains(
            "column `score` (#10): expected a similarity score from 0 to 5, found \"6.5\""
        ),
        "{msg}"
    );
    let (_, msg, _) = load_err(
        GlueTask::Cola,
        GlueSplit::Train,
        b"gj04\tx\t\tA sentence.\n",
    );
    assert!(msg.contains(":1: column `label` (#2)"), "{msg}");
    let (_, msg, _) = load_err(GlueTask::Sst2, GlueSplit::Dev, b"sentence\tlabel\n  \t1\n");
    assert!(
        msg.contains("column `sentence` (#1): expected non-empty text"),
        "{msg}"
    );
}

#[test]
fn empty_and_header_only_files() {
    let (err, msg, path) = load_err(GlueTask::Sst2, GlueSplit::Train, b"");
    assert!(matches!(err, DataError::EmptyFile { .. }));
    assert_eq!(
        msg,
        format!(
            "{path}: the file is empty; expected a header [sentence, label] and tab-separated rows"
        )
    );
    let (err, msg, _) = load_err(
        GlueTask::Rte,
        GlueSplit::Dev,
        b"index\tsentence1\tsentence2\tlabel\n",
    );
    assert!(matches!(err, DataError::EmptyFile { .. }), "{msg}");
    assert!(msg.contains("no data rows"), "{msg}");
    let (err, _, _) = load_err(GlueTask::Cola, GlueSplit::Train, b"\n\n");
    assert!(matches!(err, DataError::EmptyFile { .. }));
}

#[test]
fn wrong_header_lists_expected_and_found() {
    let (err, msg, path) = load_err(GlueTask::Sst2, GlueSplit::Train, b"text\tlabel\ngood\t1\n");
    assert!(matches!(err, DataError::WrongHeader { line: 1, .. }));
    assert_eq!(
        msg,
        format!(
            "{path}:1: wrong header for SST-2: expected columns [\"sentence\", \"label\"], found [\"text\", \"label\"]"
        )
    );
    // A labelled split whose header lacks the label column (a test file given as train).
    let (err, msg, _) = load_err(
        GlueTask::Rte,
        GlueSplit::Train,
        b"index\tsentence1\tsentence2\n0\ta\tb\n",
    );
    assert!(matches!(err, DataError::WrongHeader { .. }), "{msg}");
    assert!(msg.contains("\"label\"]"), "{msg}");
    // MRPC header with its BOM is fine, a QQP header is not.
    let (_, msg, _) = load_err(GlueTask::Mrpc, GlueSplit::Train, QQP_TRAIN.as_bytes());
    assert!(
        msg.contains("expected columns [\"Quality\", \"#1 ID\""),
        "{msg}"
    );
    // CoLA's test header where the labelled (headerless) layout is required.
    let (_, msg, _) = load_err(GlueTask::Cola, GlueSplit::Dev, b"index\tsentence\n0\tHi.\n");
    assert!(
        msg.contains("expected columns [\"source\", \"label\", \"original_label\", \"sentence\"]"),
        "{msg}"
    );
}

#[test]
fn invalid_utf8_is_a_row_error() {
    let (err, msg, _) = load_err(
        GlueTask::Sst2,
        GlueSplit::Train,
        b"sentence\tlabel\nok\t1\nbad \xff\t0\n",
    );
    let DataError::BadRow { line, issue, .. } = &err else {
        panic!("expected a bad row, got {err}");
    };
    assert_eq!((*line, &**issue), (3, &RowIssue::InvalidUtf8 { byte: 4 }));
    assert!(
        msg.ends_with(":3: invalid UTF-8 at byte 4 of the line"),
        "{msg}"
    );
}

#[test]
fn skip_bad_rows_counts_and_lists_the_dropped_rows() {
    let contents = "sentence\tlabel\ngood\t1\nmissing column\nfine\t0\nbad label\tx\nnice\t1\n";
    let (_d, path) = common::write_temp("t.tsv", contents);
    let ds = GlueTask::Sst2
        .load_file(&path, GlueSplit::Train, &lenient())
        .expect("lenient load");
    assert_eq!(ds.examples().len(), 3);
    let report = ds.report();
    assert_eq!(report.rows, 3);
    assert_eq!(report.skipped_count(), 2);
    assert_eq!(report.skipped[0].line, 3);
    assert!(matches!(
        report.skipped[0].issue,
        RowIssue::ColumnCount { .. }
    ));
    assert_eq!(report.skipped[1].line, 5);
    assert!(matches!(report.skipped[1].issue, RowIssue::BadValue { .. }));
    assert_eq!(ds.examples()[2].line, 6);

    // Strict: the first bad row is the error.
    let err = GlueTask::Sst2
        .load_file(&path, GlueSplit::Train, &strict())
        .expect_err("strict");
    assert!(matches!(err, DataError::BadRow { line: 3, .. }));
}

#[test]
fn a_file_of_only_bad_rows_is_an_error_even_when_skipping() {
    // An SST-2 file read as CoLA: every row has 2 columns, not 4.
    let (_d, path) = common::write_temp("t.tsv", "sentence\tlabel\ngood\t1\nbad\t0\n");
    let err = GlueTask::Cola
        .load_file(&path, GlueSplit::Train, &lenient())
        .expect_err("nothing valid");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            DataError::NoValidRows {
                skipped: 3,
                first_line: 1,
                ..
            }
        ),
        "{msg}"
    );
    assert!(
        msg.contains("is this the right file for the task?"),
        "{msg}"
    );
}

#[test]
fn missing_file_and_unknown_split() {
    let err = GlueTask::Sst2
        .load_file(
            Path::new("/nonexistent/glue/SST-2/train.tsv"),
            GlueSplit::Train,
            &strict(),
        )
        .expect_err("missing");
    let msg = err.to_string();
    assert!(msg.contains("/nonexistent/glue/SST-2/train.tsv"), "{msg}");
    assert!(msg.contains("download_glue_data.py"), "{msg}");
    let (_d, root) = temp_root(&[]);
    let err = GlueTask::Rte
        .load(&root, GlueSplit::DevMismatched, &strict())
        .expect_err("no such split");
    assert!(matches!(err, DataError::NoSuchSplit { .. }));
}

#[test]
fn cola_and_sst2_test_files_load_unlabelled() {
    let (_dir, root) = temp_root(&[
        (
            "glue/CoLA/test.tsv",
            "index\tsentence\n0\tBill whistled past the house.\n".into(),
        ),
        (
            "glue/SST-2/test.tsv",
            "index\tsentence\n0\tuneasy mishmash of styles and genres . \n".into(),
        ),
    ]);
    let cola = GlueTask::Cola
        .load(&root, GlueSplit::Test, &strict())
        .expect("cola test");
    assert_eq!(cola.examples()[0].text_a, "Bill whistled past the house.");
    assert_eq!(cola.examples()[0].label, None);
    assert_eq!(cola.examples()[0].line, 2);
    let sst = GlueTask::Sst2
        .load(&root, GlueSplit::Test, &strict())
        .expect("sst2 test");
    assert_eq!(
        sst.examples()[0].text_a,
        "uneasy mishmash of styles and genres ."
    );
    assert!(!sst.is_labelled());
}
