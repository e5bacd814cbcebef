"""Time-to-tuned-model at equal WER: the seed recipe at 30 s vs the fast path at a short context.

Why: a shortened encoder context is only a win if the fine-tuned model is as accurate. This
fine-tunes real tiny.en weights (packed by ``bench/short_audio_prep.py``: int8 rows,
dequantized here, the same start for both recipes) on a synthesized banking corpus with

  seed: fp16 + GradScaler, batch 16, gradient checkpointing, eager attention, 30 s inputs;
  fast: ``whisper_tune.train.fastpath.plan_fast_path`` (bf16, SDPA, fused AdamW, torch.compile,
        no checkpointing) with the encoder cut to the longest clip + 64 frames;

both trained through the product's Trainer path (the training recipe's ``training_arguments``
and ``WhisperTrainer``, ``bench/_lib.py``), evaluating greedy transcripts of the held-out test
split after every epoch (evaluation time is not counted as training time). Token ids come back
as JSON; WER is scored on the CPU machine with the project's normalizer (``--score``).

    # GPU machine (carry .carry/perf):
    PYTHONPATH=src:.carry/perf/site python bench/short_audio_wer.py --data .carry/perf/b --out $OUT/b.json
    # here:
    PYTHONPATH=src python bench/short_audio_wer.py --score b.json --processor /tmp/whisper_tune_short_audio_processor
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

import _lib as lib

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def load_split(
    data: Path, split: str, n_frames: int, device: str
) -> tuple[torch.Tensor, list[list[int]], list[str]]:
    items = json.loads((data / f"{split}.json").read_text())
    blob = np.load(data / f"{split}_feats.npy")
    feats = torch.empty(len(items), 80, n_frames)
    off = 0
    for i, it in enumerate(items):
        size = 80 * it["frames"]
        q = torch.from_numpy(blob[off : off + size].reshape(80, it["frames"]).astype(np.float32))
        off += size
        x = q * it["scale"] + it["lo"]
        keep = min(n_frames, it["frames"])
        feats[i].fill_(it["lo"])  # Whisper's log-mel of zero padding is the clip's floor
        feats[i, :, :keep] = x[:, :keep]
    return feats.to(device), [it["labels"] for it in items], [it["text"] for it in items]


def load_model(data: Path, device: str) -> Any:
    from transformers import GenerationConfig, WhisperConfig, WhisperForConditionalGeneration

    from short_audio_prep import dequantize_state_dict

    cfg = WhisperConfig.from_json_file(str(data / "config.json"))
    model = WhisperForConditionalGeneration(cfg)
    sd = dequantize_state_dict(torch.load(data / "weights_q8.pt", weights_only=True))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert set(missing) <= {"proj_out.weight"} and not unexpected, (missing, unexpected)
    model.proj_out.weight = model.model.decoder.embed_tokens.weight
    model.generation_config = GenerationConfig.from_pretrained(str(data))
    torch.nn.Module.to(model, torch.device(device))
    return model


@torch.no_grad()
def transcribe(
    model: Any, feats: torch.Tensor, dtype: torch.dtype | None, batch: int = 32
) -> list[list[int]]:
    from whisper_tune.train.fastpath import uncompiled

    model.eval()
    out: list[list[int]] = []
    with uncompiled(model):
        for s in range(0, feats.shape[0], batch):
            with torch.autocast(feats.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                ids = model.generate(feats[s : s + batch], max_new_tokens=96, num_beams=1)
            out.extend(ids.tolist())
    model.train()
    return out


class _Labelled(torch.utils.data.Dataset):
    """Training items as the data pipeline yields them: features + labels without the start token."""

    def __init__(self, feats: torch.Tensor, labels: list[list[int]], sot: int) -> None:
        self.feats = feats
        self.labels = [torch.tensor(x[1:] if x and x[0] == sot else x) for x in labels]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_features": self.feats[i], "labels": self.labels[i]}


class EpochEval(TrainerCallback):
    """After each epoch: its training time (this evaluation excluded), its loss, test transcripts."""

    def __init__(
        self, name: str, model: Any, test_x: torch.Tensor, dtype: Any, device: str, rec: dict
    ) -> None:
        self.name, self.model, self.test_x, self.dtype, self.device, self.rec = (
            name,
            model,
            test_x,
            dtype,
            device,
            rec,
        )
        self.t0 = 0.0
        self.train_s = 0.0

    def on_epoch_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        lib.sync(self.device)
        self.t0 = time.perf_counter()

    def on_epoch_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
        lib.sync(self.device)
        dt = time.perf_counter() - self.t0
        self.train_s += dt
        loss = next((float(e["loss"]) for e in reversed(state.log_history) if "loss" in e), math.nan)
        hyps = transcribe(self.model, self.test_x, self.dtype)
        epoch = len(self.rec["epochs"]) + 1
        self.rec["epochs"].append(
            {
                "epoch": epoch,
                "steps": state.global_step,
                "epoch_s": dt,
                "train_s": self.train_s,
                "loss": loss,
                "hyps": hyps,
            }
        )
        print(
            f"{self.name}: epoch {epoch} steps {state.global_step} epoch {dt:6.1f}s cum {self.train_s:6.1f}s loss {loss:.3f}",
            flush=True,
        )
        if not math.isfinite(loss):
            control.should_training_stop = True
        return control


def run_recipe(name: str, args: argparse.Namespace, data: Path, results: dict[str, Any]) -> None:
    from whisper_tune.train import fastpath as fp

    dev = args.device
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = load_model(data, dev)
    sot = int(model.generation_config.decoder_start_token_id)
    if name == "seed":
        frames, batch, lr, epochs = 3000, 16, args.lr, args.seed_epochs
        plan = lib.seed_plan(dev, frames)
    else:
        frames = fp.choose_encoder_frames(args.max_seconds, args.margin_frames)
        plan = fp.plan_fast_path(dev, "auto", n_frames=frames, compile=args.fast_compile)
        batch, lr, epochs = args.fast_batch, args.lr * args.fast_batch / 16, args.fast_epochs
    fp.apply_fast_path(model, plan)
    train_x, train_y, _ = load_split(data, "train", frames, "cpu")  # the Trainer's loader moves batches
    test_x, _, _ = load_split(data, "test", frames, dev)
    n = train_x.shape[0]
    per_epoch = (
        n // batch if plan.compile_scope != "none" else math.ceil(n / batch)
    )  # drop_last when compiled
    job = lib.trainer_job(
        batch,
        num_epochs=epochs,
        total_steps=per_epoch * epochs,
        learning_rate=lr,
        warmup_steps=10,
        lr_scheduler="constant_with_warmup",
        logging_steps=per_epoch,  # one mean loss per epoch
        gradient_checkpointing=plan.gradient_checkpointing,
    )
    rec: dict[str, Any] = {"frames": frames, "batch": batch, "lr": lr, "epochs": [], "plan": plan.to_dict()}
    evaluate = EpochEval(name, model, test_x, lib.autocast_dtype(plan.precision), dev, rec)
    lib.run_product_trainer(
        model, plan, job, _Labelled(train_x, train_y, sot), lib.FeatureCollate(frames), [evaluate]
    )
    results[name] = rec


def gpu_main(args: argparse.Namespace) -> int:
    from whisper_tune.train import fastpath as fp

    data = Path(args.data)
    env = lib.environment()
    results: dict[str, Any] = {
        "device": env["device"],
        "torch": env["torch"],
        "transformers": env["transformers"],
    }
    # the untuned starting point, at 30 s and at the short context
    model = load_model(data, args.device)
    for frames in (
        (3000, fp.choose_encoder_frames(args.max_seconds, args.margin_frames)) if not args.no_untuned else ()
    ):
        if frames != fp.encoder_frames(model):
            fp.shorten_encoder_context(model, frames)
        x, _, _ = load_split(data, "test", frames, args.device)
        results[f"untuned_{frames}"] = {"frames": frames, "hyps": transcribe(model, x, None)}
    del model
    for name in args.recipes.split(","):
        run_recipe(name, args, data, results)
        Path(args.out).write_text(json.dumps(results))
    Path(args.out).write_text(json.dumps(results))
    return 0


def score(args: argparse.Namespace) -> int:
    import jiwer
    from transformers import WhisperProcessor

    try:
        from whisper_tune.evaluate import get_normalizer

        norm = get_normalizer("whisper_en")
    except Exception:  # noqa: BLE001 - fall back to a basic normaliser if evaluate is not ready
        import re

        def norm(s: str) -> str:
            return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]", " ", s.lower())).strip()

    proc = WhisperProcessor.from_pretrained(args.processor)
    refs = [it["text"] for it in json.loads((Path(args.data) / "test.json").read_text())]
    res = json.loads(Path(args.score).read_text())

    def wer(hyps: list[list[int]]) -> float:
        texts = proc.batch_decode(hyps, skip_special_tokens=True)
        r = [norm(x) for x in refs]
        h = [norm(x) for x in texts]
        return float(jiwer.wer(r, h))

    table: dict[str, Any] = {"device": res.get("device")}
    for key, val in res.items():
        if key.startswith("untuned_"):
            table[key] = {"frames": val["frames"], "wer": wer(val["hyps"])}
            print(f"{key}: WER {100 * table[key]['wer']:.2f}%")
        elif isinstance(val, dict) and "epochs" in val:
            rows = []
            for ep in val["epochs"]:
                rows.append(
                    {k: ep[k] for k in ("epoch", "steps", "epoch_s", "train_s", "loss")}
                    | {"wer": wer(ep["hyps"])}
                )
                print(
                    f"{key} frames={val['frames']} bs={val['batch']} epoch {ep['epoch']}: train {ep['train_s']:6.1f}s WER {100 * rows[-1]['wer']:.2f}%"
                )
            table[key] = {k: val[k] for k in ("frames", "batch", "lr")} | {"epochs": rows}
    if "seed" in table and "fast" in table:
        target = table["seed"]["epochs"][-1]["wer"]
        seed_t = table["seed"]["epochs"][-1]["train_s"]
        hit = next((e for e in table["fast"]["epochs"] if e["wer"] <= target), None)
        table["time_to_seed_wer"] = {
            "seed_final_wer": target,
            "seed_train_s": seed_t,
            "fast_epoch_reaching_it": hit["epoch"] if hit else None,
            "fast_train_s": hit["train_s"] if hit else None,
            "speedup_incl_compile": seed_t / hit["train_s"] if hit else None,
        }
        print(json.dumps(table["time_to_seed_wer"], indent=1))
    Path(args.table).write_text(json.dumps(table, indent=1))
    print(f"wrote {args.table}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=".carry/perf/b")
    ap.add_argument("--out", default="short_audio_wer_raw.json")
    ap.add_argument("--recipes", default="seed,fast")
    ap.add_argument(
        "--lr", type=float, default=1e-5, help="seed learning rate (batch 16); fast scales it linearly"
    )
    ap.add_argument("--seed-epochs", type=int, default=5)
    ap.add_argument("--fast-epochs", type=int, default=10)
    ap.add_argument("--fast-batch", type=int, default=32)
    ap.add_argument("--fast-compile", default="model", help="model | encoder | none (torch.compile scope)")
    ap.add_argument("--max-seconds", type=float, default=8.0)
    ap.add_argument("--margin-frames", type=int, default=64)
    ap.add_argument("--no-untuned", action="store_true", help="skip the untuned baseline transcripts")
    ap.add_argument(
        "--device", default="cuda", help="cuda (the benchmark) or cpu (a smoke run of the script)"
    )
    ap.add_argument("--score", default="", help="score a raw JSON from the GPU run (CPU side)")
    ap.add_argument("--processor", default="/tmp/whisper_tune_short_audio_processor")
    ap.add_argument("--table", default="bench/results/h100_short_audio_wer.json")
    args = ap.parse_args(argv)
    if args.score:
        return score(args)
    return gpu_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
