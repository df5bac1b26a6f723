//! Load an adapter PEFT wrote, generate with it, merge it, and write a Hugging Face folder.
//!
//! The adapter is PEFT's own MiSS (= Bone, r=8 on all seven projections) for stories260K,
//! `../shared/golden/peft_bone_stories260k`; the merged folder loads in transformers with
//! `AutoModelForCausalLM.from_pretrained(OUT_DIR)`.
//!
//! ```sh
//! cargo run --release -p bone-examples --example load_peft_adapter [-- OUT_DIR]
//! ```

use bone_module::AdapterHostExt;
use burn::backend::NdArray;
use models::export::save_pretrained;
use models::{GenerationConfig, LlamaForCausalLM, LoadOptions, Tokenizer};

type B = NdArray;

fn main() -> anyhow::Result<()> {
    let shared = bone_examples::shared_dir()?;
    let model_dir = shared.join("models/stories260K");
    let adapter_dir = shared.join("golden/peft_bone_stories260k");
    let device = Default::default();

    let mut model =
        LlamaForCausalLM::<B>::from_pretrained(&model_dir, &LoadOptions::default(), &device)?;
    let loaded = model.load_adapter(&adapter_dir, "peft", &device)?;
    println!(
        "loaded {} ({}, r={}) on {} layers",
        adapter_dir.display(),
        loaded.config.method(),
        loaded.config.r(),
        loaded.layers.len()
    );

    let tokenizer = Tokenizer::from_pretrained(&model_dir)?;
    let prompt = tokenizer.encode("Once upon a time", true)?;
    let greedy = GenerationConfig::greedy(24);
    let adapted = model.generate(std::slice::from_ref(&prompt), &greedy)?;
    println!(
        "with the adapter: {}",
        tokenizer.decode(&adapted.sequences[0], true)?
    );

    // Merging folds ΔW into the base weights; greedy decoding must not change.
    model.merge_adapters(None, true)?;
    let merged = model.generate(&[prompt], &greedy)?;
    anyhow::ensure!(
        merged.sequences == adapted.sequences,
        "the merged model generates differently"
    );
    println!(
        "merged:           {}",
        tokenizer.decode(&merged.sequences[0], true)?
    );

    let out = bone_examples::out_dir("load_peft_adapter")?;
    let report = save_pretrained(&model, &out)?;
    println!(
        "wrote {} tensors to {} (and copied {} files: config, tokenizer)",
        report.tensors,
        out.display(),
        report.copied_files.len()
    );
    Ok(())
}
