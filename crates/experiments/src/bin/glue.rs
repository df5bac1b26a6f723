//! Fine-tune a BERT/RoBERTa checkpoint on any GLUE task (`--task`), with the task's metric.

fn main() -> std::process::ExitCode {
    experiments::glue::main(
        "glue",
        "Fine-tune a BERT/RoBERTa checkpoint on a GLUE task with Bone (or Bat, LoRA, head, full)",
        true,
    )
}
