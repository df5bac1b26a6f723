//! The `bone` command-line tool: run, generate with, merge and inspect Hugging Face
//! checkpoints with Bone, Bat or LoRA adapters.
//!
//! Each sub-command is one module; [`run`] dispatches to it on the backend `--device` names.

mod chat;
mod common;
mod convert;
mod convert_adapter;
mod forward;
mod generate;
mod inspect;
mod merge;
mod output;
mod print;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::device::{run_inference, BackendKind, DeviceChoice, InferenceJob};

pub use common::{ModelArgs, Precision};

/// Bone/Bat/LoRA fine-tuning tools for Hugging Face checkpoints (LLaMA, BERT, RoBERTa).
#[derive(Debug, Parser)]
#[command(
    name = "bone",
    version,
    about = "Run, generate with, merge and inspect Hugging Face checkpoints (LLaMA, BERT, RoBERTa) \
             with Bone, Bat or LoRA adapters in PEFT's format",
    propagate_version = true
)]
pub struct Cli {
    /// Backend to run on (among those compiled in).
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto, global = true, env = "BONE_DEVICE")]
    pub device: DeviceChoice,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a forward pass and write its outputs to a safetensors file: `logits` for a
    /// decoder; `last_hidden_state`, `mean_pooled` (and `pooler_output`, `logits` when the
    /// model has them) for an encoder; plus `input_ids` and `attention_mask`.
    Forward(ForwardArgs),
    /// Generate text from a prompt with a decoder, streaming it to stdout.
    Generate(GenerateArgs),
    /// Chat with a decoder through its chat template (tokenizer_config.json's, or the GGUF
    /// file's): each line of stdin is a user turn, the reply streams to stdout, the
    /// conversation is kept; --prompt for one turn.
    Chat(ChatArgs),
    /// Merge an adapter into its base model and write a Hugging Face checkpoint folder
    /// (same tensor names; config, tokenizer and other files copied) that transformers loads.
    Merge(MergeArgs),
    /// Describe a model (and an adapter): architecture, parameter counts, trainable share.
    Inspect(InspectArgs),
    /// Convert a llama.cpp GGUF model (quantised or not) to a Hugging Face checkpoint folder:
    /// config.json, model.safetensors, tokenizer.json, tokenizer_config.json (chat template).
    Convert(ConvertArgs),
    /// Rewrite a Bone, MiSS-mini or Bat adapter as a PEFT LoRA adapter (lora_alpha = rank,
    /// scale 1): exact for Bone and mini at rank r, SVD-truncated to --rank for Bat (the
    /// relative error ‖ΔW − BA‖/‖ΔW‖ is printed).
    ConvertAdapter(ConvertAdapterArgs),
}

/// `bone forward`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("input").required(true).multiple(false))]
pub struct ForwardArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Text to tokenise with the model's tokenizer.json (repeat for a right-padded batch).
    #[arg(long, group = "input")]
    pub text: Vec<String>,
    /// Token ids, comma-separated (repeat for a right-padded batch).
    #[arg(long, group = "input", value_name = "ID,ID,...")]
    pub ids: Vec<String>,
    /// Do not add the tokenizer's special tokens (BOS, [CLS] … [SEP]) to --text.
    #[arg(long)]
    pub no_special_tokens: bool,
    /// The safetensors file to write.
    #[arg(long, value_name = "FILE.safetensors")]
    pub out: PathBuf,
}

/// `bone generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The prompt (the tokenizer adds BOS). Repeat to generate for a batch.
    #[arg(long, required_unless_present = "chat", conflicts_with = "chat")]
    pub prompt: Vec<String>,
    /// A user message, rendered with the model's chat template (tokenizer_config.json's
    /// `chat_template` or the GGUF file's `tokenizer.chat_template`) and its generation
    /// prompt; the answer is printed. Repeat to answer a batch of messages.
    #[arg(long, value_name = "MESSAGE")]
    pub chat: Vec<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Print the text once at the end instead of streaming it.
    #[arg(long)]
    pub no_stream: bool,
}

/// `bone chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// One user turn: print the reply and exit (else the turns are read from stdin, one per
    /// line).
    #[arg(long)]
    pub prompt: Option<String>,
    /// A system message opening the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// A Jinja chat template file to use instead of the model's (for a base model without
    /// one).
    #[arg(long, value_name = "FILE")]
    pub chat_template: Option<PathBuf>,
    /// Print each turn's rendered prompt to stderr.
    #[arg(long)]
    pub show_prompt: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
}

/// How `generate` and `chat` pick tokens.
#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// The most tokens to generate per prompt.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Sample among the k most likely tokens only.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Sample among the most likely tokens whose probabilities add up to p (nucleus).
    #[arg(long)]
    pub top_p: Option<f64>,
    /// Seed of the sampler (the same seed gives the same text).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Recompute the whole sequence at every step instead of using the KV cache (slow).
    #[arg(long)]
    pub no_cache: bool,
    /// Keep generating after end-of-sequence tokens.
    #[arg(long)]
    pub ignore_eos: bool,
}

impl SamplingArgs {
    /// The generation settings; `pad` is the tokenizer's padding id.
    ///
    /// # Errors
    /// Invalid settings (a temperature below 0, top-p outside (0, 1], …).
    pub fn config(&self, pad: Option<u32>) -> anyhow::Result<models::GenerationConfig> {
        let config = models::GenerationConfig {
            max_new_tokens: self.max_new_tokens,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
            eos_token_ids: if self.ignore_eos {
                Some(Vec::new())
            } else {
                None
            },
            pad_token_id: pad,
            use_cache: !self.no_cache,
        };
        config.validate()?;
        Ok(config)
    }
}

/// `bone merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The base model folder (config.json, model.safetensors, tokenizer).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The PEFT adapter folder (adapter_config.json, adapter_model.safetensors).
    #[arg(long, value_name = "DIR")]
    pub adapter: PathBuf,
    /// The folder to write the merged checkpoint to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Write into --out even when it already holds files.
    #[arg(long)]
    pub force: bool,
    /// Merge even if the merged weights would hold NaN or infinity.
    #[arg(long)]
    pub unsafe_merge: bool,
}

/// `bone convert-adapter`.
#[derive(Debug, Args)]
pub struct ConvertAdapterArgs {
    /// The base model folder the adapter belongs to (Bat's update depends on its weights).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The PEFT adapter folder to convert.
    #[arg(long, value_name = "DIR")]
    pub adapter: PathBuf,
    /// The target format.
    #[arg(long, default_value = "lora", value_name = "FORMAT")]
    pub to: String,
    /// The folder to write the LoRA adapter to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// LoRA rank [default: r, exact, for Bone and mini; required for Bat].
    #[arg(long, value_name = "N")]
    pub rank: Option<usize>,
}

/// `bone convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// The GGUF file (or a folder holding exactly one .gguf file).
    #[arg(long, value_name = "FILE.gguf")]
    pub gguf: PathBuf,
    /// The folder to write the Hugging Face checkpoint to.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The float type of the written weights (quantised tensors are decoded to f32, then
    /// rounded to it; f32 is lossless).
    #[arg(long, value_enum, default_value_t = ConvertDtype::F32)]
    pub dtype: ConvertDtype,
    /// Write into --out even when it already holds files.
    #[arg(long)]
    pub force: bool,
}

/// `--dtype` of `bone convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConvertDtype {
    /// 32-bit floats (what transformers decodes GGUF tensors to).
    F32,
    /// bfloat16.
    Bf16,
    /// 16-bit floats.
    F16,
}

/// `bone inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print the adaptable linear layers with their shapes.
    #[arg(long)]
    pub layers: bool,
}

/// Runs a parsed command line.
///
/// # Errors
/// Whatever the command met: a missing folder or file, an unsupported model, a bad tensor,
/// invalid arguments, I/O errors.
pub fn run(mut cli: Cli) -> anyhow::Result<()> {
    cli.command.resolve_hub_ids()?;
    if let Command::Convert(args) = cli.command {
        // No backend needed: the weights are decoded on the host.
        return convert::run(args);
    }
    run_inference(cli.device, Task(cli.command))
}

struct Task(Command);

impl InferenceJob for Task {
    type Output = ();

    fn run<B: burn::tensor::backend::Backend>(
        self,
        device: B::Device,
        backend: BackendKind,
    ) -> anyhow::Result<()> {
        match self.0 {
            Command::Forward(args) => forward::run::<B>(args, &device),
            Command::Generate(args) => generate::run::<B>(args, &device),
            Command::Chat(args) => chat::run::<B>(args, &device),
            Command::Merge(args) => merge::run::<B>(args, &device),
            Command::Inspect(args) => inspect::run::<B>(args, &device, backend),
            Command::Convert(args) => convert::run(args),
            Command::ConvertAdapter(args) => convert_adapter::run::<B>(args, &device),
        }
    }
}
