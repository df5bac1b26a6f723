//! The matrix of `cargo xtask glue-compare`: tasks and their budgets, methods, learning rates,
//! seeds and implementations, and where each cell's result lives.

use std::path::{Path, PathBuf};

/// The seed the learning-rate sweep runs on (ours only).
pub const SWEEP_SEED: u64 = 42;

/// The seeds of the matrix unless `--seeds` says otherwise.
pub const DEFAULT_SEEDS: [u64; 3] = [42, 43, 44];

/// What one task is trained with (the same for every method and implementation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// `glue --task` name.
    pub task: &'static str,
    /// Folder under `glue/`.
    pub dir: &'static str,
    /// Whether train.tsv starts with a header line.
    pub header: bool,
    /// Epochs over the training examples.
    pub epochs: usize,
    /// Tokens per example, special tokens included (longer pairs are cut longest first).
    pub max_seq_len: usize,
    /// Train on this many rows (drawn once per seed into an index file both implementations
    /// read); `None`: every row.
    pub samples: Option<usize>,
    /// The task's main metric, as `best_metric` names it.
    pub main_metric: &'static str,
}

/// Examples per batch for every task.
pub const BATCH_SIZE: usize = 32;
/// Warm-up share for every task.
pub const WARMUP_RATIO: f64 = 0.06;

/// The budgets, smallest task first. Epochs and lengths are scaled to two shared CPU cores
/// (the paper follows the LoRA repository: 30–80 epochs on RoBERTa-base); max lengths cover
/// ≥ 95 % of each task's pairs with the MiniLM tokenizer.
pub const BUDGETS: [Budget; 5] = [
    Budget {
        task: "rte",
        dir: "RTE",
        header: true,
        epochs: 3,
        max_seq_len: 128,
        samples: None,
        main_metric: "accuracy",
    },
    Budget {
        task: "mrpc",
        dir: "MRPC",
        header: true,
        epochs: 3,
        max_seq_len: 128,
        samples: None,
        main_metric: "accuracy",
    },
    Budget {
        task: "cola",
        dir: "CoLA",
        header: false,
        epochs: 3,
        max_seq_len: 64,
        samples: None,
        main_metric: "matthews",
    },
    Budget {
        task: "stsb",
        dir: "STS-B",
        header: true,
        epochs: 3,
        max_seq_len: 128,
        samples: None,
        main_metric: "pearson",
    },
    Budget {
        task: "sst2",
        dir: "SST-2",
        header: true,
        epochs: 1,
        max_seq_len: 64,
        samples: Some(4000),
        main_metric: "accuracy",
    },
];

/// The budget of `task`.
pub fn budget(task: &str) -> Result<&'static Budget, String> {
    BUDGETS.iter().find(|b| b.task == task).ok_or_else(|| {
        let names: Vec<&str> = BUDGETS.iter().map(|b| b.task).collect();
        format!("--tasks {task}: expected some of {}", names.join(","))
    })
}

/// A method at equal trainable parameters (or the head alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Method {
    /// Bone r=64.
    Bone,
    /// LoRA r=32 α=64.
    Lora,
    /// Bat r=64.
    Bat,
    /// The classification head alone.
    Head,
}

impl Method {
    /// Every method, in table order.
    pub const ALL: [Method; 4] = [Method::Bone, Method::Lora, Method::Bat, Method::Head];

    /// `glue --method` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bone => "bone",
            Self::Lora => "lora",
            Self::Bat => "bat",
            Self::Head => "head",
        }
    }

    /// Parses a `--methods` entry.
    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| format!("--methods {name}: expected some of bone,lora,bat,head"))
    }

    /// `--r` and `--lora-alpha`.
    pub fn rank(self) -> (usize, f64) {
        match self {
            Self::Lora => (32, 64.0),
            _ => (64, 64.0),
        }
    }

    /// The three learning rates of the sweep, the middle one the default (`--no-sweep`).
    pub fn lr_grid(self) -> [f64; 3] {
        match self {
            Self::Head => [1e-3, 3e-3, 1e-2],
            _ => [2e-4, 5e-4, 1e-3],
        }
    }

    /// The learning rate without a sweep.
    pub fn default_lr(self) -> f64 {
        self.lr_grid()[1]
    }

    /// How the tables name it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Bone => "bone r=64",
            Self::Lora => "lora r=32 α=64",
            Self::Bat => "bat r=64",
            Self::Head => "head only",
        }
    }
}

/// Which code trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Implementation {
    /// This workspace's `glue` binary.
    Ours,
    /// benchmarks/reference/glue_peft.py (PyTorch + transformers + PEFT).
    Peft,
}

impl Implementation {
    /// File-name and `--impls` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Peft => "peft",
        }
    }

    /// Parses an `--impls` entry.
    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "ours" => Ok(Self::Ours),
            "peft" => Ok(Self::Peft),
            _ => Err(format!("--impls {name}: expected some of ours,peft")),
        }
    }
}

/// One training run of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// The task's budget.
    pub budget: &'static Budget,
    /// The method.
    pub method: Method,
    /// Who trains.
    pub implementation: Implementation,
    /// Peak learning rate.
    pub lr: f64,
    /// Seed.
    pub seed: u64,
}

/// `5e-4`, `1e-3`, `3e-3`: the learning rate as file names and tables write it.
pub fn lr_name(lr: f64) -> String {
    format!("{lr:e}")
}

impl Cell {
    /// `<impl>-<method>-lr<lr>-seed<seed>`.
    pub fn stem(&self) -> String {
        format!(
            "{}-{}-lr{}-seed{}",
            self.implementation.name(),
            self.method.name(),
            lr_name(self.lr),
            self.seed
        )
    }

    /// The cell's result JSON under `results` (`<results>/<task>/<stem>.json`); the cell is
    /// finished when it exists.
    pub fn result_path(&self, results: &Path) -> PathBuf {
        results
            .join(self.budget.task)
            .join(format!("{}.json", self.stem()))
    }
}

/// What `--tasks`, `--methods`, `--seeds`, `--impls` and `--no-sweep` select.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Tasks, in the order given.
    pub tasks: Vec<&'static Budget>,
    /// Methods.
    pub methods: Vec<Method>,
    /// Seeds of the matrix.
    pub seeds: Vec<u64>,
    /// Implementations.
    pub implementations: Vec<Implementation>,
    /// Whether the learning rate is swept (else every method uses its default).
    pub sweep: bool,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            tasks: vec![&BUDGETS[0], &BUDGETS[1], &BUDGETS[2]],
            methods: Method::ALL.to_vec(),
            seeds: DEFAULT_SEEDS.to_vec(),
            implementations: vec![Implementation::Ours, Implementation::Peft],
            sweep: true,
        }
    }
}

/// The sweep's cells of one task and method: ours, [`SWEEP_SEED`], each lr of the grid.
pub fn sweep_cells(budget: &'static Budget, method: Method) -> Vec<Cell> {
    method
        .lr_grid()
        .into_iter()
        .map(|lr| Cell {
            budget,
            method,
            implementation: Implementation::Ours,
            lr,
            seed: SWEEP_SEED,
        })
        .collect()
}

/// The learning rate of a task and method: with `sweep`, the grid's value whose sweep cell
/// reached the best main metric (`main_metric` reads a finished cell's, `None` while it runs;
/// ties go to the smaller lr), `None` until every sweep cell is finished; without it the
/// default.
pub fn chosen_lr(
    budget: &'static Budget,
    method: Method,
    sweep: bool,
    main_metric: impl Fn(&Cell) -> Option<f64>,
) -> Option<f64> {
    if !sweep {
        return Some(method.default_lr());
    }
    let mut best: Option<(f64, f64)> = None;
    for cell in sweep_cells(budget, method) {
        let value = main_metric(&cell)?;
        if best.is_none_or(|(_, b)| value > b) {
            best = Some((cell.lr, value));
        }
    }
    best.map(|(lr, _)| lr)
}

/// Every cell of the selection in running order: per task, the sweep (when on), then the
/// matrix seed by seed (each seed's methods and implementations together, so that a partial
/// run leaves whole seeds). Cells whose lr depends on an unfinished sweep are left out (the
/// next invocation adds them); cells already listed by the sweep are not repeated.
pub fn cells(
    selection: &Selection,
    main_metric: impl Fn(&Cell) -> Option<f64> + Copy,
) -> Vec<Cell> {
    let mut out: Vec<Cell> = Vec::new();
    for &budget in &selection.tasks {
        if selection.sweep && selection.implementations.contains(&Implementation::Ours) {
            for &method in &selection.methods {
                out.extend(sweep_cells(budget, method));
            }
        }
        for &seed in &selection.seeds {
            for &method in &selection.methods {
                let Some(lr) = chosen_lr(budget, method, selection.sweep, main_metric) else {
                    continue;
                };
                for &implementation in &selection.implementations {
                    let cell = Cell {
                        budget,
                        method,
                        implementation,
                        lr,
                        seed,
                    };
                    if !out.contains(&cell) {
                        out.push(cell);
                    }
                }
            }
        }
    }
    out
}

/// Parses `--tasks`, `--methods`, `--seeds`, `--impls` and `--no-sweep` out of `args`; the
/// rest is returned in order.
pub fn parse_selection(args: &[String]) -> Result<(Selection, Vec<String>), String> {
    let mut selection = Selection::default();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--tasks" => {
                selection.tasks = list(&value()?).map(budget).collect::<Result<_, _>>()?;
            }
            "--methods" => {
                selection.methods = list(&value()?)
                    .map(Method::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--seeds" => {
                selection.seeds = list(&value()?)
                    .map(|s| {
                        s.parse()
                            .map_err(|_| format!("--seeds {s}: expected integers like 42,43,44"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--impls" => {
                selection.implementations = list(&value()?)
                    .map(Implementation::parse)
                    .collect::<Result<_, _>>()?;
            }
            "--no-sweep" => selection.sweep = false,
            _ => rest.push(arg.clone()),
        }
    }
    if selection.tasks.is_empty() || selection.methods.is_empty() || selection.seeds.is_empty() {
        return Err("--tasks, --methods and --seeds need at least one value".into());
    }
    Ok((selection, rest))
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// `n` of `rows` train rows drawn for `seed` (a splitmix64-driven Fisher–Yates shuffle, the
/// first `n`): what both implementations train on when a budget takes a subset.
pub fn draw_indices(rows: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..rows).collect();
    for i in (1..rows).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order.truncate(n.min(rows));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn selection_parses_subsets_and_keeps_other_flags() {
        let (s, rest) = parse_selection(&args(
            "--tasks rte --methods bone,lora --seeds 42,43 --no-build",
        ))
        .unwrap();
        assert_eq!(s.tasks, vec![&BUDGETS[0]]);
        assert_eq!(s.methods, vec![Method::Bone, Method::Lora]);
        assert_eq!(s.seeds, vec![42, 43]);
        assert_eq!(rest, vec!["--no-build".to_string()]);
        assert_eq!(
            parse_selection(&args("--tasks qqp")).unwrap_err(),
            "--tasks qqp: expected some of rte,mrpc,cola,stsb,sst2"
        );
        assert_eq!(
            parse_selection(&args("--seeds 4x")).unwrap_err(),
            "--seeds 4x: expected integers like 42,43,44"
        );
    }

    #[test]
    fn cells_wait_for_the_sweep_then_use_its_best_lr() {
        let (selection, _) =
            parse_selection(&args("--tasks rte --methods bone --seeds 42,43")).unwrap();
        // Nothing finished: the three sweep cells only.
        let plan = cells(&selection, |_| None);
        assert_eq!(plan.len(), 3);
        assert!(plan
            .iter()
            .all(|c| c.seed == SWEEP_SEED && c.implementation == Implementation::Ours));
        // The sweep finished with 1e-3 best: ours seed 42 at 1e-3 is the sweep's cell (not
        // repeated); peft 42, ours 43, peft 43 follow.
        let done: HashMap<String, f64> = [("2e-4", 0.6), ("5e-4", 0.62), ("1e-3", 0.65)]
            .into_iter()
            .map(|(lr, v)| (format!("ours-bone-lr{lr}-seed42"), v))
            .collect();
        let plan = cells(&selection, |c| done.get(&c.stem()).copied());
        let stems: Vec<String> = plan.iter().map(Cell::stem).collect();
        assert_eq!(
            stems,
            [
                "ours-bone-lr2e-4-seed42",
                "ours-bone-lr5e-4-seed42",
                "ours-bone-lr1e-3-seed42",
                "peft-bone-lr1e-3-seed42",
                "ours-bone-lr1e-3-seed43",
                "peft-bone-lr1e-3-seed43",
            ]
        );
    }

    #[test]
    fn without_a_sweep_the_default_lr_is_used() {
        let (selection, _) = parse_selection(&args(
            "--tasks sst2 --methods head --seeds 1 --no-sweep --impls peft",
        ))
        .unwrap();
        let plan = cells(&selection, |_| None);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].stem(), "peft-head-lr3e-3-seed1");
        assert_eq!(
            plan[0].result_path(Path::new("r")),
            Path::new("r/sst2/peft-head-lr3e-3-seed1.json")
        );
    }

    #[test]
    fn sweep_ties_go_to_the_smaller_lr() {
        assert_eq!(
            chosen_lr(&BUDGETS[0], Method::Lora, true, |_| Some(0.5)),
            Some(2e-4)
        );
        assert_eq!(
            chosen_lr(&BUDGETS[0], Method::Lora, true, |c| (c.lr > 3e-4)
                .then_some(0.5)),
            None
        );
    }

    #[test]
    fn the_draw_is_a_seeded_subset_without_repeats() {
        let a = draw_indices(100, 40, 42);
        assert_eq!(a.len(), 40);
        assert_eq!(a, draw_indices(100, 40, 42));
        assert_ne!(a, draw_indices(100, 40, 43));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 40);
        assert!(sorted.iter().all(|&i| i < 100));
        assert_eq!(draw_indices(5, 9, 1).len(), 5);
    }
}
