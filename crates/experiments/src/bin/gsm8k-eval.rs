//! GSM8K accuracy of a LLaMA checkpoint plus an optional PEFT adapter (batched greedy
//! generation with the KV cache), with a JSONL file of every problem. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    experiments::gsm8k_eval::main()
}
