//! Fine-tune a LLaMA checkpoint on your own data (Alpaca, chat, ShareGPT, prompt/completion or
//! text rows in JSON / JSONL) with Bone, Bat, LoRA or full fine-tuning. `--help` lists the
//! flags, the formats and the defaults.

fn main() -> std::process::ExitCode {
    experiments::sft::main()
}
