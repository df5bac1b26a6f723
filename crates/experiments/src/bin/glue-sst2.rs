//! The main job: fine-tune all-MiniLM-L6-v2 on SST-2 with Bone on every encoder linear layer
//! plus a trained classification head. `--help` lists the flags.

fn main() -> std::process::ExitCode {
    experiments::glue::main(
        "glue-sst2",
        "Fine-tune a BERT/RoBERTa checkpoint on GLUE SST-2 with Bone (or Bat, LoRA, head, full)",
        false,
    )
}
