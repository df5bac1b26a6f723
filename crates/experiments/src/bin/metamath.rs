//! Fine-tune a LLaMA checkpoint on MetaMathQA (or GSM8K train) with Bone (or Bat, LoRA, full
//! fine-tuning): the paper's NLG experiment. `--help` lists the flags and the defaults.

fn main() -> std::process::ExitCode {
    experiments::metamath::main()
}
