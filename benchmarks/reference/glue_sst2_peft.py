"""PyTorch + transformers + PEFT reference for the glue-sst2 acceptance budget.

Same budget as `cargo run --release -p experiments --bin glue-sst2 -- --max-train-samples 4000`:
4,000 shuffled SST-2 train sentences, 1 epoch, batch 32, max length 64, Bone (PEFT MissConfig)
r=64 on all 36 encoder linear layers of all-MiniLM-L6-v2 plus the classification head, AdamW
lr 5e-4 with 6 % warm-up and linear decay, on 2 CPU threads. Prints the dev accuracy and the
median time per optimiser step (forward + backward + update), as JSON.

    python benchmarks/reference/glue_sst2_peft.py --shared ../shared [--method bone|lora|bat]

Needs torch, transformers and peft (tested with 2.15.0, 5.24.0, 0.21.2); not used by CI.
"""

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch
from peft import LoraConfig, MissConfig, get_peft_model
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup


def read_sst2(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            sentence, label = line.rstrip("\n").rsplit("\t", 1)
            rows.append((sentence.strip(), int(label)))
    return rows


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shared", default="../shared")
    p.add_argument("--method", default="bone", choices=["bone", "bat", "lora"])
    p.add_argument("--samples", type=int, default=4000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    shared = Path(args.shared)
    model_dir = shared / "models/all-MiniLM-L6-v2"
    train = read_sst2(shared / "datasets/glue/SST-2/train.tsv")
    dev = read_sst2(shared / "datasets/glue/SST-2/dev.tsv")
    random.shuffle(train)
    train = train[: args.samples]

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    targets = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"
    if args.method == "lora":
        config = LoraConfig(r=32, lora_alpha=64, target_modules=targets, task_type="SEQ_CLS")
    else:
        init = "bat" if args.method == "bat" else True
        config = MissConfig(r=64, init_weights=init, target_modules=targets, task_type="SEQ_CLS")
    model = get_peft_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)

    def batches(rows, size, shuffle):
        order = list(range(len(rows)))
        if shuffle:
            random.shuffle(order)
        for i in range(0, len(order), size):
            chunk = [rows[j] for j in order[i : i + size]]
            enc = tokenizer([r[0] for r in chunk], padding=True, truncation=True, max_length=64, return_tensors="pt")
            enc["labels"] = torch.tensor([r[1] for r in chunk])
            yield enc

    steps = (len(train) + 31) // 32
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps + 0.999999), steps)
    model.train()
    times = []
    start = time.perf_counter()
    for batch in batches(train, 32, shuffle=True):
        t = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - t)
    train_seconds = time.perf_counter() - start

    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in batches(dev, 64, shuffle=False):
            labels = batch.pop("labels")
            correct += (model(**batch).logits.argmax(-1) == labels).sum().item()
    print(json.dumps({
        "method": args.method,
        "trainable_params": trainable,
        "steps": steps,
        "dev_accuracy": correct / len(dev),
        "median_step_seconds": statistics.median(times),
        "train_seconds": train_seconds,
        "threads": args.threads,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
