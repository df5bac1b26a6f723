//! The GLUE training step split over threads: with dropout off, two or three threads give the
//! loss, logits and gradients of the whole batch on one thread; with dropout on, a step is
//! reproducible under the same backend seed.

use bone_module::AdapterSpec;
use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::Backend;
use burn::train::TrainStep;
use data::batcher::{ClassificationBatch, ClassificationBatcher, ClassificationBatcherConfig};
use data::glue::{GlueSplit, GlueTask};
use data::{load_tokenizer, DataRoot, LoadOptions};
use experiments::glue::model::GlueModel;
use models::encoder::ClassificationHead;
use models::nn::Dropout;
use models::targets::default_target_modules;
use models::{ClassifierOptions, ModelFamily, SequenceClassificationModel};

use crate::common;
use common::{flat_grads, shared};

type TB = models::backend::DefaultBackend;
type AD = burn::backend::Autodiff<TB>;

fn model(spec: bone_module::AdapterSpec, dropout: bool) -> SequenceClassificationModel<AD> {
    use bone_module::{AdapterConfig, AdapterHostExt};
    let device = Default::default();
    let options = ClassifierOptions {
        seed: Some(4),
        ..ClassifierOptions::with_num_labels(2)
    };
    let dir = shared().join("models/all-MiniLM-L6-v2");
    let mut inner = SequenceClassificationModel::<AD>::from_pretrained(&dir, &options, &device)
        .unwrap()
        .set_head_trainable(true);
    let config = AdapterConfig::from_spec(&spec, default_target_modules(ModelFamily::Bert));
    inner.add_adapter("default", &config, &device).unwrap();
    if !dropout {
        let off = || Dropout::new(0.0);
        inner.encoder.embeddings.dropout = off();
        for layer in &mut inner.encoder.layers {
            layer.attention.self_attn.dropout = off();
            layer.attention.output.dropout = off();
            layer.output.dropout = off();
        }
        if let ClassificationHead::Bert(head) = &mut inner.head {
            head.dropout = off();
        }
    }
    // Materialises the lazily initialised head, as a run does.
    experiments::train::with_stable_param_ids(inner)
}

fn batch() -> ClassificationBatch<AD> {
    let root = DataRoot::resolve(Some(&shared().join("datasets")));
    let dev = GlueTask::Sst2
        .load(&root, GlueSplit::Dev, &LoadOptions::default())
        .unwrap();
    let tokenizer =
        load_tokenizer(&shared().join("models/all-MiniLM-L6-v2/tokenizer.json")).unwrap();
    let batcher = ClassificationBatcher::new(
        tokenizer,
        ClassificationBatcherConfig {
            max_len: 48,
            ..Default::default()
        },
    )
    .unwrap();
    let encoded = batcher.encode_all(&dev.examples()[..11]).unwrap();
    batcher.batch(encoded, &Default::default())
}

/// Loss, logits and gradients of one step with `threads` threads.
fn step(inner: &SequenceClassificationModel<AD>, threads: usize) -> (Vec<f32>, Vec<f32>) {
    let model = GlueModel {
        inner: inner.clone(),
        step_threads: threads,
    };
    <AD as Backend>::seed(&Default::default(), 17);
    let out = TrainStep::step(&model, batch());
    let grads = flat_grads(&model, &out.grads);
    let mut outputs: Vec<f32> = out.item.loss.into_data().iter::<f32>().collect();
    outputs.extend(out.item.logits.into_data().iter::<f32>());
    (outputs, grads)
}

fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / y.abs().max(1e-3))
        .fold(0.0, f32::max)
}

/// One test, not two: both seed the backend's global generator, which tests running in
/// parallel would share.
#[test]
fn threaded_steps_are_whole_batch_steps_and_reproducible() {
    for spec in [
        AdapterSpec::bone(16).with_random_init(),
        AdapterSpec::bat(16).with_random_init(),
        AdapterSpec::lora(8, 16.0).with_random_init(),
    ] {
        threads_give_the_gradients_of_the_whole_batch(spec);
    }
    a_threaded_step_with_dropout_is_reproducible();
}

fn threads_give_the_gradients_of_the_whole_batch(spec: AdapterSpec) {
    eprintln!("{spec:?}");
    let inner = model(spec, false);
    let (outputs, grads) = step(&inner, 1);
    let big = grads.iter().filter(|g| g.abs() > 1e-4).count();
    eprintln!("{} gradients, {big} above 1e-4", grads.len());
    assert!(grads.len() > 50_000 && big > 1000);
    for threads in [2, 3] {
        let (o, g) = step(&inner, threads);
        let (do_, dg) = (max_rel_diff(&o, &outputs), max_rel_diff(&g, &grads));
        eprintln!("{threads} threads: outputs {do_:e}, gradients {dg:e}");
        assert!(
            do_ < 1e-4,
            "{threads} threads: loss/logits differ by {do_:e}"
        );
        assert!(dg < 1e-3, "{threads} threads: gradients differ by {dg:e}");
    }
}

fn a_threaded_step_with_dropout_is_reproducible() {
    let inner = model(AdapterSpec::bone(16).with_random_init(), true);
    let (outputs, grads) = step(&inner, 2);
    let (again, grads_again) = step(&inner, 2);
    assert_eq!(outputs, again);
    assert_eq!(grads, grads_again);
    let (single, _) = step(&inner, 1);
    assert_ne!(outputs, single, "dropout is on: other masks on one thread");
}

/// Dev-set evaluation split over threads (the `InferenceStep`) gives the logits and metrics
/// of one thread.
#[test]
fn threaded_evaluation_gives_the_single_thread_results() {
    use burn::module::AutodiffModule;
    use burn::train::InferenceStep;
    use experiments::glue::evaluation::GlueEvaluation;
    use experiments::glue::model::GlueOutput;
    use experiments::train::Evaluation;

    let inner = model(AdapterSpec::bone(16).with_random_init(), false).valid();
    let evaluate = |threads: usize| {
        let model = GlueModel {
            inner: inner.clone(),
            step_threads: threads,
        };
        let batch = batch();
        let batch = ClassificationBatch::<TB> {
            input_ids: batch.input_ids.inner(),
            attention_mask: batch.attention_mask.inner(),
            token_type_ids: batch.token_type_ids.inner(),
            labels: batch.labels.map(|l| l.inner()),
            scores: batch.scores.map(|s| s.inner()),
        };
        let output = InferenceStep::step(&model, batch);
        let mut evaluation = GlueEvaluation::new(GlueTask::Sst2);
        evaluation.observe(&output);
        let logits: Vec<f32> = output.logits.into_data().iter::<f32>().collect();
        let metrics = Evaluation::<GlueOutput<TB>>::finish(&mut evaluation);
        (logits, metrics)
    };
    let (logits, metrics) = evaluate(1);
    assert_eq!(logits.len(), 22);
    assert_eq!(metrics[0].0, "accuracy");
    for threads in [2, 3] {
        let (l, m) = evaluate(threads);
        let diff = max_rel_diff(&l, &logits);
        assert!(diff < 1e-5, "{threads} threads: logits differ by {diff:e}");
        assert_eq!(m[0], metrics[0], "{threads} threads: accuracy");
        assert_eq!(m[1].0, "loss");
        assert!(
            (m[1].1 - metrics[1].1).abs() < 1e-6,
            "{threads} threads: loss {} vs {}",
            m[1].1,
            metrics[1].1
        );
    }
}
