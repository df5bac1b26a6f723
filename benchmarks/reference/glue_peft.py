"""PyTorch + transformers + PEFT peer of this crate's `glue` binary, for `cargo xtask glue-compare`.

The same protocol as `glue --task T --method M ...` (crates/experiments/src/glue), flag for flag:
all-MiniLM-L6-v2's BertForSequenceClassification (the checkpoint's pooler on [CLS], dropout 0.1
in the encoder and before the classifier, a fresh normal(0, 0.02) classifier with zero bias; one
output and mean squared error for STS-B), adapters on the 36 encoder linears (query, key, value
and the three `dense` of every layer; the pooler is not adapted and stays frozen) with the head
trained (PEFT `modules_to_save`), or the head alone (`--method head`). AdamW (betas 0.9/0.999,
eps 1e-8, bias-corrected, decoupled weight decay), linear warm-up over ceil(ratio x steps) steps
(the first step at lr 0) then linear decay to 0, global-norm clipping before each update; the
dev set is evaluated after every epoch (eval mode) and the best epoch's main metric is reported
as ours does. `--train-indices FILE` (0-based train rows, one per line, `#` comments) trains on
exactly the rows `glue --train-indices FILE` does; without it, `--max-train-samples N` draws N
rows with Python's `random` (not the same draw as ours).

    python benchmarks/reference/glue_peft.py --task rte --method bone --seed 42 [--out result.json]

Prints one JSON line (and writes it to --out): task, method, metrics of every epoch, the best
epoch's main metric, steps, time. Needs torch, transformers and peft (tested with 2.15.0, 5.24.0,
0.21.2); not used by CI.
"""

import argparse
import json
import math
import random
import statistics
import time
from pathlib import Path

# Task: (directory, has header, text columns, label column, label kind, main metric first).
TASKS = {
    "cola": ("CoLA", False, (3,), 1, "index", ("matthews",)),
    "sst2": ("SST-2", True, (0,), 1, "index", ("accuracy",)),
    "mrpc": ("MRPC", True, (3, 4), 0, "index", ("accuracy", "f1")),
    "rte": ("RTE", True, (1, 2), 3, ("entailment", "not_entailment"), ("accuracy",)),
    "stsb": ("STS-B", True, (7, 8), 9, "score", ("pearson", "spearman")),
}
ALIASES = {"sst-2": "sst2", "sts-b": "stsb"}


def read_task(path, task):
    """Rows (text_a, text_b or None, label) of a GLUE TSV, split on tabs without quoting, fields
    trimmed, as crates/data/src/glue reads them."""
    _, header, texts, label_col, kind, _ = TASKS[task]
    rows = []
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().split("\n")
    if header:
        lines = lines[1:]
    for number, line in enumerate(lines, start=2 if header else 1):
        if not line.strip():
            continue
        fields = [x.strip() for x in line.rstrip("\r").split("\t")]
        raw = fields[label_col]
        if kind == "score":
            label = float(raw)
        elif kind == "index":
            label = int(raw)
        else:
            if raw not in kind:
                raise SystemExit(f"{path}:{number}: label {raw!r}, expected one of {kind}")
            label = kind.index(raw)
        a = fields[texts[0]]
        b = fields[texts[1]] if len(texts) > 1 else None
        rows.append((a, b, label))
    return rows


def read_indices(path, rows):
    out = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        value = line.split("#", 1)[0].strip()
        if not value:
            continue
        index = int(value)
        if not 0 <= index < rows:
            raise SystemExit(f"{path}:{number}: row index {index} is out of range ({rows} rows)")
        out.append(index)
    return out


def matthews(pred, ref):
    tp = sum(p == 1 and r == 1 for p, r in zip(pred, ref))
    tn = sum(p == 0 and r == 0 for p, r in zip(pred, ref))
    fp = sum(p == 1 and r == 0 for p, r in zip(pred, ref))
    fn = sum(p == 0 and r == 1 for p, r in zip(pred, ref))
    denom = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denom if denom > 0 else 0.0


def f1(pred, ref):
    tp = sum(p == 1 and r == 1 for p, r in zip(pred, ref))
    fp = sum(p == 1 and r == 0 for p, r in zip(pred, ref))
    fn = sum(p == 0 and r == 1 for p, r in zip(pred, ref))
    return 2 * tp / (2 * tp + fp + fn) if tp > 0 else 0.0


def pearson(x, y):
    mx, my = statistics.fmean(x), statistics.fmean(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    # NaN for a constant series, as crates/data/src/metrics.rs::pearson.
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def ranks(x):
    """Average ranks (ties share the mean rank), as Spearman's rho needs."""
    order = sorted(range(len(x)), key=lambda i: x[i])
    out = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def metrics(task, pred, ref):
    names = TASKS[task][5]
    if task == "stsb":
        return {"pearson": pearson(pred, ref), "spearman": pearson(ranks(pred), ranks(ref))}
    out = {"accuracy": sum(p == r for p, r in zip(pred, ref)) / len(ref)}
    if "f1" in names:
        out["f1"] = f1(pred, ref)
    if "matthews" in names:
        out["matthews"] = matthews(pred, ref)
    return out


def build_model(args, num_labels):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=num_labels)
    if args.method == "head":
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("classifier.")
        return model
    from peft import LoraConfig, MissConfig, get_peft_model

    targets = r".*encoder\.layer\.\d+\..*(query|key|value|dense)"
    if args.method == "lora":
        config = LoraConfig(
            r=args.r, lora_alpha=args.lora_alpha, lora_dropout=0.0, target_modules=targets, task_type="SEQ_CLS"
        )
    else:
        init = "bat" if args.method == "bat" else True
        config = MissConfig(r=args.r, init_weights=init, target_modules=targets, task_type="SEQ_CLS")
    return get_peft_model(model, config)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True)
    p.add_argument("--method", default="bone", choices=["bone", "bat", "lora", "head"])
    p.add_argument("--shared", default="../shared", help="folder with datasets/ and models/")
    p.add_argument("--data-root", default=None, help="folder holding glue/<TASK>/ [default: SHARED/datasets]")
    p.add_argument("--model", default=None, help="[default: SHARED/models/all-MiniLM-L6-v2]")
    p.add_argument("--r", type=int, default=64)
    p.add_argument("--lora-alpha", type=float, default=64.0)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup-ratio", type=float, default=0.06)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--max-seq-len", type=int, default=64)
    p.add_argument("--max-train-samples", type=int, default=0, help="0: all (or all of --train-indices)")
    p.add_argument("--max-eval-samples", type=int, default=0)
    p.add_argument("--train-indices", default=None)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="also write the result JSON here")
    args = p.parse_args(argv)
    args.task = ALIASES.get(args.task.lower(), args.task.lower())
    if args.task not in TASKS:
        p.error(f"--task {args.task}: expected one of {', '.join(TASKS)}")
    shared = Path(args.shared)
    args.data_root = Path(args.data_root) if args.data_root else shared / "datasets"
    args.model = Path(args.model) if args.model else shared / "models/all-MiniLM-L6-v2"
    return args


def run(args):
    import torch
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    folder = args.data_root / "glue" / TASKS[args.task][0]
    train = read_task(folder / "train.tsv", args.task)
    dev = read_task(folder / "dev.tsv", args.task)
    if args.train_indices:
        train = [train[i] for i in read_indices(args.train_indices, len(train))]
        if args.max_train_samples > 0:
            train = train[: args.max_train_samples]
    elif args.max_train_samples > 0:
        rng.shuffle(train)
        train = train[: args.max_train_samples]
    if args.max_eval_samples > 0:
        dev = dev[: args.max_eval_samples]
    regression = args.task == "stsb"

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = build_model(args, 1 if regression else 2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    params = [p for p in model.parameters() if p.requires_grad]

    def encode(chunk):
        a = [r[0] for r in chunk]
        b = [r[1] for r in chunk] if chunk[0][1] is not None else None
        enc = tokenizer(a, b, padding=True, truncation=True, max_length=args.max_seq_len, return_tensors="pt")
        dtype = torch.float32 if regression else torch.long
        enc["labels"] = torch.tensor([r[2] for r in chunk], dtype=dtype)
        return enc

    def batches(rows, size, order):
        for i in range(0, len(order), size):
            yield encode([rows[j] for j in order[i : i + size]])

    per_epoch = math.ceil(len(train) / args.batch_size)
    steps = args.epochs * per_epoch
    optimizer = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=args.weight_decay)
    # Hugging Face's Trainer and ours: ceil(ratio * steps) warm-up steps.
    warmup = math.ceil(args.warmup_ratio * steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, steps)

    def evaluate():
        model.eval()
        pred, ref, loss_sum, n = [], [], 0.0, 0
        with torch.no_grad():
            for batch in batches(dev, max(args.batch_size, 32), list(range(len(dev)))):
                out = model(**batch)
                loss_sum += out.loss.item()
                n += 1
                if regression:
                    pred += out.logits.reshape(-1).tolist()
                else:
                    pred += out.logits.argmax(-1).tolist()
                ref += batch["labels"].tolist()
        model.train()
        m = metrics(args.task, pred, ref)
        m["loss"] = loss_sum / max(n, 1)
        return m

    model.train()
    times, history = [], []
    train_seconds = 0.0
    for epoch in range(1, args.epochs + 1):
        order = list(range(len(train)))
        rng.shuffle(order)
        start = time.perf_counter()
        for batch in batches(train, args.batch_size, order):
            t = time.perf_counter()
            loss = model(**batch).loss
            loss.backward()
            if args.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            times.append(time.perf_counter() - t)
        train_seconds += time.perf_counter() - start
        history.append({"epoch": epoch, "dev": evaluate()})

    main = TASKS[args.task][5][0]
    best = max(history, key=lambda h: h["dev"][main])
    return {
        "implementation": "peft",
        "task": args.task,
        "method": args.method,
        "r": args.r,
        "lora_alpha": args.lora_alpha,
        "lr": args.lr,
        "seed": args.seed,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "max_seq_len": args.max_seq_len,
        "train_examples": len(train),
        "dev_examples": len(dev),
        "trainable_params": trainable,
        "steps": steps,
        "warmup_steps": warmup,
        "best_metric": [main, best["dev"][main], best["epoch"]],
        "last_dev": history[-1]["dev"],
        "history": history,
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / max(steps, 1),
        "median_step_seconds": statistics.median(times) if times else 0.0,
        "threads": args.threads,
        "torch": torch.__version__,
    }


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    line = json.dumps(result)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
