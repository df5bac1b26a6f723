"""PyTorch + transformers + PEFT reference for the glue-sst2 acceptance budget (used by
`cargo xtask sst2-compare --reference PYTHON`); a thin alias of glue_peft.py with task SST-2.

Same budget as `cargo run --release -p experiments --bin glue-sst2 -- --max-train-samples 4000`:
4,000 SST-2 train sentences, 1 epoch, batch 32, max length 64, Bone (PEFT MissConfig) r=64 (LoRA
r=32 alpha=64, Bat r=64) on all 36 encoder linear layers of all-MiniLM-L6-v2 plus the
classification head, AdamW lr 5e-4 with 6 % warm-up and linear decay, on 2 CPU threads. The
recipe is glue_peft.py's (see benchmarks/glue.md for its line-by-line comparison with ours).
`--train-indices FILE` trains on the rows ours trains on with the same flag. Prints one JSON line
with the dev accuracy and the median time per optimiser step.

    python benchmarks/reference/glue_sst2_peft.py --shared ../shared [--method bone|lora|bat]

Needs torch, transformers and peft (tested with 2.15.0, 5.24.0, 0.21.2); not used by CI.
"""

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import glue_peft  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--method", default="bone", choices=["bone", "bat", "lora", "head"])
    p.add_argument("--samples", type=int, default=4000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-indices", default=None)
    a = p.parse_args()
    argv = ["--task", "sst2", "--method", a.method, "--shared", a.shared, "--seed", str(a.seed)]
    argv += ["--threads", str(a.threads), "--max-train-samples", str(a.samples)]
    argv += ["--r", "32" if a.method == "lora" else "64", "--lora-alpha", "64"]
    if a.train_indices:
        argv += ["--train-indices", a.train_indices]
    result = glue_peft.run(glue_peft.parse_args(argv))
    result["dev_accuracy"] = result["last_dev"]["accuracy"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
