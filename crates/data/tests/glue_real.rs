//! GLUE tasks present in ../shared/datasets: full-file row and label counts, layout quirks
//! (SST-2's space before the tab, MRPC's BOM, CoLA's missing header, STS-B's float score,
//! RTE/QNLI's string labels) and unlabelled test files.

use crate::common;

use data::glue::{GlueDataset, GlueSplit, GlueTask, Label};
use data::{LoadOptions, Manifest};

fn load(task: GlueTask, split: GlueSplit) -> GlueDataset {
    let root = common::data_root();
    task.load(&root, split, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {task} {split}: {e}"))
}

#[test]
fn sst2_rows_labels_and_trimmed_text() {
    let train = load(GlueTask::Sst2, GlueSplit::Train);
    assert_eq!(train.examples().len(), 67_349);
    assert_eq!(train.label_counts(), vec![29_780, 37_569]);
    assert_eq!(train.report().skipped_count(), 0);
    let first = &train.examples()[0];
    // The file has "hide new secretions from the parental units \t0": the space is trimmed.
    assert_eq!(first.text_a, "hide new secretions from the parental units");
    assert_eq!(first.text_b, None);
    assert_eq!(first.label, Some(Label::Class(0)));
    assert_eq!(first.line, 2);
    assert!(train.examples().iter().all(|e| e.text_a.trim() == e.text_a));

    let dev = load(GlueTask::Sst2, GlueSplit::Dev);
    assert_eq!(dev.examples().len(), 872);
    assert_eq!(dev.label_counts(), vec![428, 444]);
    assert_eq!(
        dev.examples()[0].text_a,
        "it 's a charming and often affecting journey ."
    );
    assert_eq!(dev.examples()[871].line, 873);
}

#[test]
fn cola_headerless_four_columns() {
    let train = load(GlueTask::Cola, GlueSplit::Train);
    assert_eq!(train.examples().len(), 8_551);
    assert_eq!(train.label_counts(), vec![2_528, 6_023]);
    let first = &train.examples()[0];
    assert_eq!(
        first.text_a,
        "Our friends won't buy this analysis, let alone the next one we propose."
    );
    assert_eq!(first.label, Some(Label::Class(1)));
    assert_eq!(first.line, 1, "no header: the first line is a row");

    let dev = load(GlueTask::Cola, GlueSplit::Dev);
    assert_eq!(dev.examples().len(), 1_043);
    assert_eq!(dev.label_counts(), vec![324, 719]);
    assert_eq!(
        dev.examples().last().map(|e| e.text_a.as_str()),
        Some("John talked to Bill about himself.")
    );
}

#[test]
fn mrpc_header_with_bom_and_unlabelled_test() {
    let train = load(GlueTask::Mrpc, GlueSplit::Train);
    assert_eq!(train.examples().len(), 3_668);
    assert_eq!(train.label_counts(), vec![1_194, 2_474]);
    let first = &train.examples()[0];
    assert_eq!(
        first.text_a,
        "Amrozi accused his brother, whom he called \"the witness\", of deliberately distorting \
         his evidence."
    );
    assert_eq!(
        first.text_b.as_deref(),
        Some(
            "Referring to him as only \"the witness\", Amrozi accused his brother of \
             deliberately distorting his evidence."
        )
    );
    assert_eq!(first.label, Some(Label::Class(1)));

    let dev = load(GlueTask::Mrpc, GlueSplit::Dev);
    assert_eq!(dev.examples().len(), 408);
    assert_eq!(dev.label_counts(), vec![129, 279]);

    let test = load(GlueTask::Mrpc, GlueSplit::Test);
    assert_eq!(test.examples().len(), 1_725);
    assert!(test.examples().iter().all(|e| e.label.is_none()));
    assert!(test.examples()[0]
        .text_a
        .starts_with("PCCW's chief operating officer"));
    assert!(test.examples()[0].text_b.is_some());
}

#[test]
fn rte_string_labels_and_unlabelled_test() {
    let train = load(GlueTask::Rte, GlueSplit::Train);
    assert_eq!(train.examples().len(), 2_490);
    // Class 0 = entailment, 1 = not_entailment.
    assert_eq!(train.label_counts(), vec![1_249, 1_241]);
    assert_eq!(
        train.examples()[0].text_a,
        "No Weapons of Mass Destruction Found in Iraq Yet."
    );
    assert_eq!(
        train.examples()[0].text_b.as_deref(),
        Some("Weapons of Mass Destruction Found in Iraq.")
    );
    assert_eq!(train.examples()[0].label, Some(Label::Class(1)));

    let dev = load(GlueTask::Rte, GlueSplit::Dev);
    assert_eq!(dev.examples().len(), 277);
    assert_eq!(dev.label_counts(), vec![146, 131]);

    let test = load(GlueTask::Rte, GlueSplit::Test);
    assert_eq!(test.examples().len(), 3_000);
    assert!(!test.is_labelled());
    assert_eq!(
        test.examples()[2_999].text_b.as_deref(),
        Some("26 people died in an airplane crash.")
    );
}

#[test]
fn stsb_float_scores() {
    let train = load(GlueTask::Stsb, GlueSplit::Train);
    assert_eq!(train.examples().len(), 5_749);
    let first = &train.examples()[0];
    assert_eq!(first.text_a, "A plane is taking off.");
    assert_eq!(first.text_b.as_deref(), Some("An air plane is taking off."));
    assert_eq!(first.label, Some(Label::Score(5.0)));
    assert_eq!(train.examples()[1].label, Some(Label::Score(3.8)));
    let scores: Vec<f64> = train
        .examples()
        .iter()
        .map(|e| e.label.and_then(Label::score).expect("scored") as f64)
        .collect();
    // Sum computed from the file with Python's float(): 15528.043396825336.
    assert!((scores.iter().sum::<f64>() - 15_528.043_396_825_336).abs() < 1e-2);
    assert_eq!(scores.iter().cloned().fold(f64::INFINITY, f64::min), 0.0);
    assert_eq!(scores.iter().cloned().fold(0.0, f64::max), 5.0);
    assert!(train.label_counts().is_empty());

    let dev = load(GlueTask::Stsb, GlueSplit::Dev);
    assert_eq!(dev.examples().len(), 1_500);
    let dev_sum: f64 = dev
        .examples()
        .iter()
        .map(|e| e.label.and_then(Label::score).expect("scored") as f64)
        .sum();
    assert!((dev_sum - 3_545.861_333_333_332_4).abs() < 1e-2);

    let test = load(GlueTask::Stsb, GlueSplit::Test);
    assert_eq!(test.examples().len(), 1_379);
    assert!(test.examples().iter().all(|e| e.label.is_none()));
}

#[test]
fn qnli_dev() {
    let dev = load(GlueTask::Qnli, GlueSplit::Dev);
    assert_eq!(dev.examples().len(), 5_463);
    assert_eq!(dev.label_counts(), vec![2_702, 2_761]);
    assert_eq!(
        dev.examples()[0].text_a,
        "What came into force after the new constitution was herald?"
    );
    assert_eq!(dev.examples()[0].label, Some(Label::Class(0)));
}

#[test]
fn qnli_train_is_missing_with_a_helpful_message() {
    let err = GlueTask::Qnli
        .load(
            &common::data_root(),
            GlueSplit::Train,
            &LoadOptions::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("glue/QNLI/train.tsv"), "{err}");
    assert!(err.contains("looked in"), "{err}");
    assert!(err.contains("download_glue_data.py"), "{err}");
    assert!(err.contains("BONE_DATA_ROOT"), "{err}");
}

#[test]
fn every_shared_file_matches_the_manifest() {
    let manifest = Manifest::bundled().expect("datasets/SHA256SUMS parses");
    let root = common::data_root().with_manifest(manifest.clone());
    for (rel, _) in manifest.entries() {
        root.file(rel).unwrap_or_else(|e| panic!("{rel}: {e}"));
    }
    // And a verified load goes through.
    let dev = GlueTask::Sst2
        .load(&root, GlueSplit::Dev, &LoadOptions::default())
        .expect("verified load");
    assert_eq!(dev.examples().len(), 872);
}

#[test]
fn max_rows_stops_early() {
    let opts = LoadOptions {
        max_rows: Some(10),
        ..Default::default()
    };
    let ds = GlueTask::Sst2
        .load(&common::data_root(), GlueSplit::Train, &opts)
        .expect("load");
    assert_eq!(ds.examples().len(), 10);
    assert_eq!(burn::data::dataset::Dataset::len(&ds), 10);
    assert_eq!(
        burn::data::dataset::Dataset::get(&ds, 9).map(|e| e.line),
        Some(11)
    );
}
