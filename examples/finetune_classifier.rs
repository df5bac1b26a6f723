//! The GLUE job through the library API, in your own loop: MiniLM + Bone r=64 on every
//! encoder linear + a fresh head, trained on 1,024 SST-2 sentences, scored on 256 dev ones.
//!
//! ```sh
//! cargo run --release -p bone-examples --example finetune_classifier [-- OUT_DIR]
//! ```
//! (`glue-sst2` is the full job: dashboard, checkpoints, resume, metrics files.)

use bone_module::{AdapterConfig, AdapterHostExt, AdapterSpec};
use burn::backend::{Autodiff, NdArray};
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use data::batcher::{ClassificationBatcher, ClassificationBatcherConfig, EncodedPair};
use data::glue::{GlueSplit, GlueTask};
use data::{load_tokenizer, DataRoot, LoadOptions};
use models::targets::all_block_linears;
use models::{ClassifierOptions, SequenceClassificationModel};

type B = Autodiff<NdArray>;

fn main() -> anyhow::Result<()> {
    let model_dir = bone_examples::shared_dir()?.join("models/all-MiniLM-L6-v2");
    let device = Default::default();

    // Data: SST-2 from the data root (`$BONE_DATA_ROOT`, else ../shared/datasets).
    let (root, task) = (DataRoot::resolve(None), GlueTask::Sst2);
    let rows = |n| LoadOptions {
        max_rows: Some(n),
        ..Default::default()
    };
    let train = task.load(&root, GlueSplit::Train, &rows(1024))?;
    let dev = task.load(&root, GlueSplit::Dev, &rows(256))?;
    let config = ClassificationBatcherConfig::default().with_max_len(64);
    let batcher =
        ClassificationBatcher::new(load_tokenizer(&model_dir.join("tokenizer.json"))?, config)?;
    let (train, dev) = (
        batcher.encode_all(train.examples())?,
        batcher.encode_all(dev.examples())?,
    );

    // Model and adapter: the base is frozen; the Bone blocks and the head train.
    let options = ClassifierOptions::with_num_labels(task.num_labels());
    let mut model =
        SequenceClassificationModel::<B>::from_pretrained(&model_dir, &options, &device)?;
    let adapter =
        AdapterConfig::from_spec(&AdapterSpec::bone(64), all_block_linears(model.family()));
    let layers = model.add_adapter("default", &adapter, &device)?;
    println!(
        "Bone r=64 on {} layers, {} trainable parameters",
        layers.len(),
        model.trainable_params()
    );

    // The loop: AdamW 5e-4, batches of 32, cross-entropy on the head's logits [b, 2].
    let mut optim = AdamWConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    for (step, chunk) in train.chunks(32).enumerate() {
        let batch = batcher.collate::<B>(chunk, &device);
        let logits = model.forward(
            batch.input_ids,
            Some(batch.attention_mask),
            Some(batch.token_type_ids),
        );
        let labels = batch
            .labels
            .ok_or_else(|| anyhow::anyhow!("SST-2 train rows carry labels"))?;
        let loss = loss_fn.forward(logits, labels);
        if step % 8 == 0 {
            println!("step {step:>2}: loss {:.4}", loss.clone().into_scalar());
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(5e-4, model, grads);
    }

    let accuracy = accuracy(&model.valid(), &batcher, &dev, &device);
    println!(
        "dev accuracy on {} sentences: {:.2} %",
        dev.len(),
        100.0 * accuracy
    );
    let out = bone_examples::out_dir("finetune_classifier")?;
    model.save_adapter("default", &adapter, &out)?;
    println!("PEFT adapter (with the head) saved to {}", out.display());
    Ok(())
}

/// Share of `rows` whose argmax class equals the label, without gradients.
fn accuracy(
    model: &SequenceClassificationModel<NdArray>,
    batcher: &ClassificationBatcher,
    rows: &[EncodedPair],
    device: &burn::backend::ndarray::NdArrayDevice,
) -> f64 {
    let mut correct = 0;
    for chunk in rows.chunks(64) {
        let batch = batcher.collate::<NdArray>(chunk, device);
        let logits = model.forward(
            batch.input_ids,
            Some(batch.attention_mask),
            Some(batch.token_type_ids),
        );
        let labels = batch.labels.expect("dev rows carry labels");
        correct += logits
            .argmax(1)
            .squeeze_dim::<1>(1)
            .equal(labels)
            .int()
            .sum()
            .into_scalar() as usize;
    }
    correct as f64 / rows.len().max(1) as f64
}
