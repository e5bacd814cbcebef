"""Hyper-parameter sweep behind the demo's defaults: decoder-only training on cached encoder outputs.

Why: the demo must finish in ~10 minutes on 2 CPU cores *and* generalize. This script computes
tiny.en's encoder outputs once per split, then trains the decoder with a plain AdamW loop (the same
objective, schedule and batch as the demo's Seq2SeqTrainer run) for each candidate setting and
scores base and tuned greedy transcripts per domain on test, validation and (optionally) the
out-of-distribution set of ``bench/ood_check_set.py``.

    python bench/demo_recipe_sweep.py CORPUS CACHE_DIR '[{"lr":1e-4,"ep":4},{"lr":3e-5,"ep":4}]' --base
    (OOD=ood/test.jsonl to add the out-of-distribution set; T=threads)
"""

import json
import math
import os
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
import numpy as np
import torch

from whisper_tune.data import WhisperCollator, prepare_dataset
from whisper_tune.models import load_model
from whisper_tune.scoring import error_rates

torch.set_num_threads(int(os.environ.get("T", "2")))
corpus = Path(sys.argv[1])
cache = Path(sys.argv[2])
configs = json.loads(sys.argv[3])
model, proc = load_model("tiny.en")
model.eval()


def enc_cache(split, path=None):
    f = cache / f"{split}_enc.pt"
    if f.exists():
        return torch.load(f)
    prep = prepare_dataset(str(path or corpus / f"{split}.jsonl"), proc, feature_cache=str(cache / "feat"))
    hs, labels = [], []
    t = time.time()
    with torch.no_grad():
        for i in range(0, len(prep.dataset), 16):
            items = [prep.dataset[j] for j in range(i, min(i + 16, len(prep.dataset)))]
            x = torch.tensor(np.stack([it["input_features"] for it in items]))
            hs.append(model.model.encoder(x).last_hidden_state.half())
            labels += [it["labels"] for it in items]
    print(split, "encoder", time.time() - t, flush=True)
    d = {
        "h": torch.cat(hs),
        "labels": labels,
        "texts": [s.text for s in prep.samples],
        "meta": [s.meta for s in prep.samples],
    }
    torch.save(d, f)
    return d


tr, te = enc_cache("train"), enc_cache("test")
va = enc_cache("validation")
ood = enc_cache("ood", os.environ["OOD"]) if os.environ.get("OOD") else None
sot = proc.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
coll = WhisperCollator(proc, sot)
state0 = {k: v.clone() for k, v in model.state_dict().items()}


def decode(d, bs=32):
    out = []
    with torch.no_grad():
        for i in range(0, len(d["h"]), bs):
            h = d["h"][i : i + bs].float()
            from transformers.modeling_outputs import BaseModelOutput

            g = model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=h), max_new_tokens=96)
            out += proc.batch_decode(g, skip_special_tokens=True)
    return out


def score(d, hyps):
    res = {}
    for dom in ("banking", "general"):
        idx = [i for i, m in enumerate(d["meta"]) if m.get("domain") == dom]
        res[dom] = error_rates([d["texts"][i] for i in idx], [hyps[i] for i in idx], "whisper_en")["wer"]
    return res


def evaluate(tag):
    r = {"test": score(te, decode(te)), "val": score(va, decode(va))}
    if ood is not None:
        r["ood"] = score(ood, decode(ood))
    print(tag, json.dumps(r), flush=True)
    return r


if "--base" in sys.argv:
    evaluate("base")
for cfg in configs:
    model.load_state_dict(state0)
    torch.manual_seed(0)
    for p in model.model.encoder.parameters():
        p.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.01)
    n = len(tr["h"])
    bs = cfg.get("bs", 32)
    steps_ep = math.ceil(n / bs)
    total = int(steps_ep * cfg["ep"])
    warm = max(1, steps_ep // 2)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s, warm=warm, total=total: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))),
    )
    model.train()
    t = time.time()
    step = 0
    g = torch.Generator().manual_seed(0)
    while step < total:
        perm = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            if step >= total:
                break
            idx = perm[i : i + bs].tolist()
            b = coll(
                [{"input_features": np.zeros((1, 1), np.float32), "labels": tr["labels"][j]} for j in idx]
            )
            out = model(encoder_outputs=(tr["h"][idx].float(),), labels=b["labels"])
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            opt.zero_grad()
            step += 1
    model.eval()
    print(
        "train",
        cfg,
        "steps",
        total,
        "s",
        round(time.time() - t, 1),
        "loss",
        round(out.loss.item(), 3),
        flush=True,
    )
    evaluate(json.dumps(cfg))
