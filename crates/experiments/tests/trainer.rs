//! The trainer on a toy task (a Bone-adapted linear classifier on synthetic data): run
//! folder contents, exact resume after an interruption, and a non-finite loss stopping the run
//! with the last good checkpoint kept.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bone_module::peft::{load_adapter, save_adapter};
use bone_module::{
    AdaptedLinear, AdapterConfig, AdapterHost, AdapterHostExt, AdapterSpec, TargetModules,
};
use burn::backend::Autodiff;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::transform::{PartialDataset, ShuffledDataset};
use burn::data::dataset::{Dataset, InMemDataset};
use burn::module::Module;
use burn::module::Param;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::Linear;
use burn::optim::AdamWConfig;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use experiments::train::{
    launch, with_stable_param_ids, DecayKind, Evaluation, MetricGoal, MetricKey, ProgressDisplay,
    RunDir, SharedOptimizer, TrainTask, Trainer, TrainerOptions, TrainerState, WarmupDecay,
};

type TB = models::backend::DefaultBackend;
type AD = Autodiff<TB>;

#[derive(Module, Debug)]
struct Toy<B: Backend> {
    layer: AdaptedLinear<B>,
}

impl<B: Backend> AdapterHost<B> for Toy<B> {
    fn visit_linears(&self, f: &mut dyn FnMut(&AdaptedLinear<B>)) {
        f(&self.layer)
    }
    fn visit_linears_mut(&mut self, f: &mut dyn FnMut(&mut AdaptedLinear<B>)) {
        f(&mut self.layer)
    }
}

#[derive(Clone, Debug)]
struct ToyBatch<B: Backend> {
    x: Tensor<B, 2>,
    y: Tensor<B, 1, Int>,
}

impl<B: Backend> Toy<B> {
    fn forward(&self, batch: ToyBatch<B>) -> ClassificationOutput<B> {
        let logits = self.layer.forward(batch.x);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.y.clone());
        ClassificationOutput::new(loss, logits, batch.y)
    }
}

impl<B: AutodiffBackend> TrainStep for Toy<B> {
    type Input = ToyBatch<B>;
    type Output = ClassificationOutput<B>;
    fn step(&self, batch: ToyBatch<B>) -> TrainOutput<ClassificationOutput<B>> {
        let out = self.forward(batch);
        TrainOutput::new(self, out.loss.backward(), out)
    }
}

impl<B: Backend> InferenceStep for Toy<B> {
    type Input = ToyBatch<B>;
    type Output = ClassificationOutput<B>;
    fn step(&self, batch: ToyBatch<B>) -> ClassificationOutput<B> {
        self.forward(batch)
    }
}

#[derive(Clone, Debug)]
struct Item {
    x: [f32; 8],
    y: i64,
}

#[derive(Clone, Default)]
struct ToyBatcher;

impl<B: Backend> Batcher<B, Item, ToyBatch<B>> for ToyBatcher {
    fn batch(&self, items: Vec<Item>, device: &B::Device) -> ToyBatch<B> {
        let n = items.len();
        let xs: Vec<f32> = items.iter().flat_map(|i| i.x).collect();
        let ys: Vec<i64> = items.iter().map(|i| i.y).collect();
        ToyBatch {
            x: Tensor::from_data(TensorData::new(xs, [n, 8]), device),
            y: Tensor::from_data(TensorData::new(ys, [n]), device),
        }
    }
}

/// 96 points: the label is whether x0 + x4 exceeds x1 + x5 (Bone with r = 4 folds x into
/// x[j] + x[j + 4], so this is learnable through the adapter).
fn items(poison_at: Option<usize>) -> Vec<Item> {
    (0..96)
        .map(|i| {
            let mut x = [0f32; 8];
            for (j, v) in x.iter_mut().enumerate() {
                *v = (((i * 31 + j * 17) % 23) as f32 / 11.0) - 1.0;
            }
            if poison_at == Some(i) {
                x[0] = f32::NAN;
            }
            let y = i64::from(x[0] + x[4] > x[1] + x[5]);
            Item { x, y }
        })
        .collect()
}

struct ToyTask {
    data: Vec<Item>,
    batch_size: usize,
    seed: u64,
    config: AdapterConfig,
}

struct Accuracy {
    correct: usize,
    total: usize,
}

impl<B: Backend> Evaluation<ClassificationOutput<B>> for Accuracy {
    fn observe(&mut self, output: &ClassificationOutput<B>) {
        let predicted: Vec<i64> = output
            .output
            .clone()
            .argmax(1)
            .into_data()
            .iter::<i64>()
            .collect();
        let targets: Vec<i64> = output.targets.to_data().iter::<i64>().collect();
        self.correct += predicted
            .iter()
            .zip(&targets)
            .filter(|(a, b)| a == b)
            .count();
        self.total += targets.len();
    }
    fn finish(&mut self) -> Vec<(String, f64)> {
        vec![(
            "accuracy".into(),
            self.correct as f64 / self.total.max(1) as f64,
        )]
    }
}

impl TrainTask<AD, Toy<AD>> for ToyTask {
    fn train_loader(&self, epoch: usize, skip: usize) -> Arc<dyn DataLoader<AD, ToyBatch<AD>>> {
        let shuffled = ShuffledDataset::new(
            InMemDataset::new(self.data.clone()),
            self.seed + epoch as u64,
        );
        let len = shuffled.len();
        let rest = PartialDataset::new(shuffled, (skip * self.batch_size).min(len), len);
        DataLoaderBuilder::new(ToyBatcher)
            .batch_size(self.batch_size)
            .build(rest)
    }
    fn batches_per_epoch(&self) -> usize {
        self.data.len().div_ceil(self.batch_size)
    }
    fn train_items(&self) -> usize {
        self.data.len()
    }
    fn loss_value(&self, output: &ClassificationOutput<AD>) -> f64 {
        f64::from(output.loss.clone().into_scalar())
    }
    fn new_evaluation(&self) -> Box<dyn Evaluation<ClassificationOutput<TB>>> {
        Box::new(Accuracy {
            correct: 0,
            total: 0,
        })
    }
    fn save_trainable(&self, model: &Toy<AD>, dir: &Path) -> anyhow::Result<()> {
        save_adapter(model, "default", &self.config, dir, &BTreeMap::new())?;
        Ok(())
    }
    fn load_trainable(&self, mut model: Toy<AD>, dir: &Path) -> anyhow::Result<Toy<AD>> {
        model.delete_adapter("default")?;
        load_adapter(&mut model, dir, "default", &Default::default())?;
        Ok(with_stable_param_ids(model))
    }
}

/// The same model in every run: fixed base weights (tests run in parallel threads and share
/// the backend's generator, so random ones could differ between the runs compared).
fn fresh_model(config: &AdapterConfig) -> Toy<AD> {
    let device = Default::default();
    let weights: Vec<f32> = (0..16)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let base = Linear {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(weights, [8, 2]), &device)),
        bias: Some(Param::from_tensor(Tensor::zeros([2], &device))),
    };
    let mut model = Toy {
        layer: AdaptedLinear::new(base, "layer"),
    };
    model.add_adapter("default", config, &device).unwrap();
    with_stable_param_ids(model)
}

fn options(stop_after: Option<usize>) -> TrainerOptions {
    TrainerOptions {
        epochs: 3,
        checkpoint_every: 4,
        eval_every: 0,
        keep_checkpoints: 2,
        log_every: 2,
        seed: 11,
        max_grad_norm: Some(1.0),
        selection_metric: MetricKey::new("accuracy", &["accuracy"]).unwrap(),
        selection_goal: MetricGoal::Maximise,
        early_stopping_patience: None,
        stop_after_steps: stop_after,
        print_summaries: false,
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bone-trainer-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs (or resumes) training in `dir`; returns the final adapter block values and outcome.
fn run(
    dir: &Path,
    resume: bool,
    stop_after: Option<usize>,
    poison: Option<usize>,
) -> (Vec<f32>, experiments::train::Outcome) {
    let config = AdapterConfig::from_spec(&AdapterSpec::bone(4), TargetModules::names(&["layer"]));
    let task = Arc::new(ToyTask {
        data: items(poison),
        batch_size: 8,
        seed: 5,
        config: config.clone(),
    });
    let total = 3 * task.batches_per_epoch();
    let optimizer = SharedOptimizer::new(
        AdamWConfig::new()
            .with_weight_decay(0.01)
            .init::<AD, Toy<AD>>(),
    );
    let mut model = fresh_model(&config);
    let (run_dir, state) = if resume {
        let run_dir = RunDir::open(dir).unwrap();
        let (m, state) = Trainer::restore(
            task.as_ref(),
            &run_dir,
            model,
            &optimizer,
            "toy",
            &Default::default(),
        )
        .unwrap();
        model = m;
        (run_dir, state)
    } else {
        let run_dir = RunDir::create(dir).unwrap();
        std::fs::write(run_dir.config_path(), "toy = true\n").unwrap();
        (run_dir, TrainerState::new("toy".into(), total))
    };
    let scheduler = WarmupDecay::new(5e-2, 2, total, DecayKind::Linear).at_step(state.global_step);
    let valid = DataLoaderBuilder::new(ToyBatcher)
        .batch_size(16)
        .build(InMemDataset::new(items(None)));
    let trainer = Trainer::new(
        task,
        optimizer.clone(),
        run_dir.clone(),
        options(stop_after),
        state,
    );
    let (model, outcome) = launch(
        trainer,
        model,
        optimizer,
        scheduler,
        &run_dir,
        valid,
        ProgressDisplay::Quiet(1000),
        |t| {
            t.metric_train_numeric(LossMetric::new())
                .metric_valid_numeric(AccuracyMetric::new())
                .with_application_logger(None)
        },
    );
    let block = match model.layer.adapter("default").unwrap() {
        bone_module::Adapter::Bone(b) => b.block.val().to_data().iter::<f32>().collect(),
        _ => unreachable!(),
    };
    (block, outcome)
}

#[test]
fn a_run_leaves_metrics_curves_best_adapter_and_checkpoints() {
    let dir = tmp("full");
    let (_, outcome) = run(&dir, false, None, None);
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let state = outcome.state.unwrap();
    assert!(state.finished);
    assert_eq!(state.global_step, 36, "3 epochs of 12 batches");
    assert_eq!(state.history.len(), 3);
    assert_eq!(state.steps.len(), 18, "a step record every 2 steps");
    let best = state.best.unwrap();
    assert!(
        best.value >= 0.75,
        "the toy problem is learnable: dev accuracy {}",
        best.value
    );
    for file in [
        "config.toml",
        "metrics.json",
        "metrics.csv",
        "curves.png",
        "best/adapter_config.json",
        "best/adapter_model.safetensors",
        "checkpoints/latest",
    ] {
        assert!(dir.join(file).is_file(), "missing {file}");
    }
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "epoch,global_step,train_loss,lr,dev_accuracy,train_seconds,eval_seconds"
    );
    assert_eq!(csv.lines().count(), 4);
    let png = std::fs::read(dir.join("curves.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let latest = std::fs::read_to_string(dir.join("checkpoints/latest")).unwrap();
    assert_eq!(latest, "step-00000036");
    let ckpt = dir.join("checkpoints").join(&latest);
    assert!(ckpt.join("trainable/adapter_model.safetensors").is_file());
    assert!(ckpt.join("optimizer.mpk").is_file());
    assert!(ckpt.join("trainer_state.json").is_file());
    // Only adapter tensors are checkpointed: the file holds the 4×2 block alone.
    let tensors =
        bone_io::tensors::read_safetensors(&ckpt.join("trainable/adapter_model.safetensors"))
            .unwrap();
    assert_eq!(
        tensors.keys().collect::<Vec<_>>(),
        ["base_model.model.layer.miss_block"]
    );
    let names: Vec<String> = std::fs::read_dir(dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names.iter().filter(|n| n.starts_with("step-")).count(),
        2,
        "{names:?}"
    );
}

#[test]
fn an_interrupted_run_resumed_ends_where_an_uninterrupted_one_does() {
    let full_dir = tmp("uninterrupted");
    let (full, _) = run(&full_dir, false, None, None);

    let dir = tmp("interrupted");
    let (_, first) = run(&dir, false, Some(17), None);
    assert!(first.interrupted);
    let state = first.state.unwrap();
    assert_eq!(
        (state.global_step, state.epoch, state.batches_done),
        (17, 2, 5),
        "stopped mid-epoch 2"
    );
    let (resumed, second) = run(&dir, true, None, None);
    assert!(second.error.is_none());
    let end = second.state.unwrap();
    assert_eq!(end.global_step, 36);
    assert!(end.finished);
    assert_eq!(
        resumed, full,
        "resumed training must reproduce the uninterrupted adapter exactly"
    );
    let a: serde_json::Value =
        serde_json::from_slice(&std::fs::read(full_dir.join("metrics.json")).unwrap()).unwrap();
    let b: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(
        a["steps"], b["steps"],
        "the logged losses agree step for step"
    );
}

#[test]
fn a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let dir = tmp("nan");
    // Item 40 is poisoned; with the epoch-1 shuffle it lands in some batch after the first
    // checkpoint at step 4 or later, or earlier; either way the run must stop there.
    let (_, outcome) = run(&dir, false, None, Some(40));
    let error = outcome.error.expect("the run must fail");
    assert!(
        error.starts_with("training stopped: the loss is NaN at step "),
        "{error}"
    );
    assert!(error.contains("the update was not applied"), "{error}");
    let state = outcome.state.unwrap();
    assert!(!state.finished);
    if let Some(ckpt) = outcome.last_checkpoint {
        assert!(error.contains(&ckpt.display().to_string()), "{error}");
        let block =
            bone_io::tensors::read_safetensors(&ckpt.join("trainable/adapter_model.safetensors"))
                .unwrap();
        let values: Vec<f32> = block.values().next().unwrap().iter::<f32>().collect();
        assert!(
            values.iter().all(|v| v.is_finite()),
            "the kept checkpoint is good"
        );
    }
}

/// Restores the run in `dir` and returns the error it must fail with.
fn restore_error(dir: &Path) -> String {
    let config = AdapterConfig::from_spec(&AdapterSpec::bone(4), TargetModules::names(&["layer"]));
    let task = ToyTask {
        data: items(None),
        batch_size: 8,
        seed: 5,
        config: config.clone(),
    };
    let optimizer = SharedOptimizer::new(
        AdamWConfig::new()
            .with_weight_decay(0.01)
            .init::<AD, Toy<AD>>(),
    );
    let run_dir = RunDir::open(dir).unwrap();
    match Trainer::restore(
        &task,
        &run_dir,
        fresh_model(&config),
        &optimizer,
        "toy",
        &Default::default(),
    ) {
        Ok(_) => panic!("{} restored", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_missing_or_truncated_optimizer_state_is_named() {
    let dir = tmp("optimizer-state");
    let (_, outcome) = run(&dir, false, Some(5), None);
    let ckpt = outcome.last_checkpoint.expect("a checkpoint at step 5");
    // As a checkpoint of an earlier version (no manifest to catch the damage first).
    std::fs::remove_file(ckpt.join("manifest.json")).unwrap();
    let file = ckpt.join("optimizer.mpk");
    let bytes = std::fs::read(&file).unwrap();
    let half = bytes.len() / 2;
    std::fs::write(&file, &bytes[..half]).unwrap();
    let err = restore_error(&dir);
    assert!(
        err.starts_with(&format!(
            "the optimiser state {} is truncated or corrupt ({half} bytes): ",
            file.display()
        )),
        "{err}"
    );
    std::fs::remove_file(&file).unwrap();
    assert_eq!(
        restore_error(&dir),
        format!("the optimiser state {} is missing", file.display())
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_model_with_a_non_finite_value_is_found_before_it_is_saved_as_best() {
    let config = AdapterConfig::from_spec(&AdapterSpec::bone(4), TargetModules::names(&["layer"]));
    let model = fresh_model(&config);
    assert_eq!(experiments::train::first_non_finite::<AD, _>(&model), None);
    let device = Default::default();
    let mut weights = vec![0.5f32; 16];
    weights[3] = f32::INFINITY;
    let diverged = Toy::<AD> {
        layer: AdaptedLinear::new(
            Linear {
                weight: Param::from_tensor(Tensor::from_data(
                    TensorData::new(weights, [8, 2]),
                    &device,
                )),
                bias: None,
            },
            "layer",
        ),
    };
    let bad = experiments::train::first_non_finite::<AD, _>(&diverged).expect("found");
    assert!(
        bad.starts_with("parameter ") && bad.ends_with(" of shape [8, 2]"),
        "{bad}"
    );
}
