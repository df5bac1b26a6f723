"""Checks that what this project writes loads in Hugging Face PEFT and transformers.

1. A GLUE adapter trained by `glue-sst2` (PEFT folder: MISS blocks + the classifier as
   `modules_to_save`) loads with `PeftModel.from_pretrained`; its logits equal those `bone forward`
   wrote for the same sentence, and its SST-2 dev accuracy equals the run's `summary.json`.
2. A checkpoint written by `bone merge` (stories260K + the golden PEFT Bone adapter) loads with
   `AutoModelForCausalLM.from_pretrained` and gives the logits PEFT's `merge_and_unload` gave
   (`../shared/golden/peft_bone_stories260k.safetensors`).

Usage (after a default `glue-sst2` run; needs torch, transformers, peft):

    target/release/bone forward --model ../shared/models/all-MiniLM-L6-v2 \
        --adapter runs/sst2-bone-r64-seed42/best --text "a gorgeous, witty, seductive movie." \
        --out /tmp/ours.safetensors
    target/release/bone merge --model ../shared/models/stories260K \
        --adapter ../shared/golden/peft_bone_stories260k --out /tmp/merged
    python3 benchmarks/reference/peft_interop.py --run runs/sst2-bone-r64-seed42 \
        --ours /tmp/ours.safetensors --merged /tmp/merged
"""

import argparse
import json
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer


def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def check_glue_adapter(shared: Path, run: Path, ours: Path, max_len: int) -> None:
    config = json.loads((run / "best" / "adapter_config.json").read_text())
    model_dir = shared / "models" / "all-MiniLM-L6-v2"
    base = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    model = PeftModel.from_pretrained(base, run / "best").eval()
    print(f"PEFT loaded {run / 'best'} ({config['peft_type']}, r={config['r']})")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.backend_tokenizer.no_padding()

    theirs = load_file(str(ours))
    with torch.no_grad():
        logits = model(
            input_ids=theirs["input_ids"].long(),
            attention_mask=theirs["attention_mask"].long(),
        ).logits
    err = max_rel(theirs["logits"], logits)
    print(f"logits: ours {theirs['logits'].tolist()} PEFT {logits.tolist()} max rel diff {err:.2e}")
    assert err < 1e-4, "logits differ"

    rows = (shared / "datasets" / "glue" / "SST-2" / "dev.tsv").read_text().splitlines()[1:]
    sentences = [r.rsplit("\t", 1)[0].strip() for r in rows]
    labels = torch.tensor([int(r.rsplit("\t", 1)[1]) for r in rows])
    correct = 0
    with torch.no_grad():
        for i in range(0, len(sentences), 64):
            batch = tokenizer(
                sentences[i : i + 64],
                padding=True,
                truncation=True,
                max_length=max_len,
                return_tensors="pt",
            )
            pred = model(**batch).logits.argmax(-1)
            correct += (pred == labels[i : i + 64]).sum().item()
    accuracy = correct / len(sentences)
    summary = json.loads((run / "summary.json").read_text())
    recorded = summary["best_metric"][1]
    print(f"SST-2 dev accuracy: PEFT {accuracy:.4f} ({correct}/{len(sentences)}), run {recorded:.4f}")
    assert abs(accuracy - recorded) < 1.5 / len(sentences), "dev accuracy differs"


def check_merged(shared: Path, merged: Path) -> None:
    golden = load_file(str(shared / "golden" / "peft_bone_stories260k.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(merged).eval()
    ids = golden["input_ids"].long().reshape(1, -1)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    key = "logits_merged" if "logits_merged" in golden else "merged_logits"
    err = max_rel(logits, golden[key].reshape(logits.shape))
    print(f"transformers loaded {merged}: logits vs PEFT merge_and_unload max rel diff {err:.2e}")
    assert err < 1e-4, "merged logits differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    parser.add_argument("--run", type=Path, required=True, help="a glue-sst2 run folder")
    parser.add_argument("--ours", type=Path, required=True, help="`bone forward` output")
    parser.add_argument("--merged", type=Path, required=True, help="`bone merge` output")
    parser.add_argument("--max-len", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(2)
    check_glue_adapter(args.shared, args.run, args.ours, args.max_len)
    check_merged(args.shared, args.merged)
    print("all checks passed")


if __name__ == "__main__":
    main()
