"""The shipped ``whisper-tune train`` (Ray + HF Trainer, ``configs/small-gpu.yaml``) beside the
seed's recipe, in one call on one card, on a corpus of thousands of short clips.

Why: the benchmark loop's speed is worth nothing unless the command a user runs reaches it.
This runs the real pipeline as a subprocess (``whisper-tune train --config
configs/small-gpu.yaml`` with only the paths overridden, and ``data.guard=none`` because the
built-in guard's recordings are Debian packages the GPU machine lacks), times it from start to
``best/`` written, and reads what the run wrote (``plan.json``, ``fast_path.json``, the
checkpoint's ``metrics.json``). Next to it, in the same call, the seed's recipe (fp16 +
GradScaler, batch 16, gradient checkpointing, eager attention, 30 s inputs, the product's
Trainer path: ``bench/_lib.py:seed_plan``) trains on the same clips' features for
``--seed-steps`` steps and evaluates ``--seed-eval`` clips; its time-to-model for the same job
is projected from those measured rates (training it for the whole job would cost ~7 minutes of
device time), and the JSON says so. ``--shapes`` adds the larger real shapes (random init) under
the plan: step/wall samples/s, MFU and peak memory at 30 s and at the short context, beside the
seed recipe at 30 s.

Corpus: ``--n-train`` + ``--n-eval`` clips of 2.0-7.5 s (uniform), a tone with vibrato plus
noise (16 kHz WAV written on the machine; speed does not depend on the audio), labels drawn
from banking phrases (3-12 words).

    PYTHONPATH=src:bench python bench/gpu_pipeline_vs_seed.py --out bench/results/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

import _lib as lib
from gpu_shape_rows import _timer, eval_rows, shape_rows

REPO = Path(__file__).resolve().parents[1]
PHRASES = [
    "freeze my card please", "what is my balance", "send money with zelle", "what is the apr on this card",
    "i lost my debit card", "transfer fifty dollars to savings", "dispute a charge on my statement",
    "when is my payment due", "open a new checking account", "my card was declined at the store",
]  # fmt: skip


def make_corpus(root: Path, n_train: int, n_eval: int, seed: int = 0) -> dict[str, Path]:
    import soundfile as sf

    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("eval", n_eval)):
        (root / split).mkdir(parents=True, exist_ok=True)
        durs = rng.uniform(2.0, 7.5, n)
        words = [
            " ".join(" ".join(rng.choice(PHRASES, 3)).split()[: int(rng.integers(3, 13))]) for _ in range(n)
        ]

        def write(i: int, split: str = split, durs: Any = durs, words: list[str] = words) -> dict[str, Any]:
            t = np.arange(int(16000 * durs[i])) / 16000
            g = np.random.default_rng(i)
            wav = 0.3 * np.sin(2 * np.pi * (150 + (7 * i) % 300) * t) * (1 + 0.5 * np.sin(6 * np.pi * t))
            wav += 0.03 * g.standard_normal(t.size)
            p = root / split / f"{i}.wav"
            sf.write(p, wav.astype(np.float32), 16000)
            return {"audio_filepath": str(p), "text": words[i], "duration": round(float(durs[i]), 3)}

        with ThreadPoolExecutor(16) as pool:
            rows = list(pool.map(write, range(n)))
        out[split] = root / f"{split}.jsonl"
        out[split].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def run_pipeline(
    work: Path, corpus: dict[str, Path], name: str, extra: list[str], log: Path
) -> dict[str, Any]:
    """``whisper-tune train`` as a user runs it; seconds from start to ``best/`` written, and its files."""
    cmd = [
        sys.executable, "-c", "import sys; from whisper_tune.cli import main; sys.exit(main(sys.argv[1:]))",
        "train", "--config", str(REPO / "configs" / "small-gpu.yaml"),
        f"model.name={work / 'small'}", f"data.train={corpus['train']}", f"data.eval={corpus['eval']}",
        "data.guard=none", f"run.storage_path={work / 'runs'}", f"run.name={name}", *extra,
    ]  # fmt: skip
    t0 = time.time()
    with open(log, "w") as fh:  # each line stamped with seconds since start: where the time went
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if "it/s]" not in line and "Loading weights" not in line:
                fh.write(f"{time.time() - t0:7.1f} {line}")
        rc = proc.wait()
    found: dict[str, Any] = {"rc": rc, "process_wall_s": round(time.time() - t0, 1), "overrides": extra}
    found["t0"] = t0
    run_log = work / "runs" / name / "train.log"
    if run_log.is_file():  # the run's own log (timestamps of each phase) beside the console's
        log.with_suffix(".train.log").write_text(run_log.read_text(errors="replace")[-200_000:])
    return read_run(work / "runs" / name, t0, found)


def read_run(run: Path, t0: float, found: dict[str, Any]) -> dict[str, Any]:
    """What a finished run wrote: plan, throughput, status, the last checkpoint's metrics and evaluations."""
    best = run / "best" / "config.json"
    if best.is_file():
        found["time_to_model_s"] = round(best.stat().st_mtime - t0, 1)
    for f in ("plan.json", "fast_path.json", "status.json"):
        if (run / f).is_file():
            found[f.split(".")[0]] = json.loads((run / f).read_text())
    ckpts = sorted(p for p in run.glob("checkpoint_0*") if p.is_dir())
    if ckpts:
        metrics = json.loads((ckpts[-1] / "metrics.json").read_text())
        found["last_metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        state = ckpts[-1] / "checkpoint" / "trainer_state.json"
        if state.is_file():
            hist = json.loads(state.read_text())["log_history"]
            found["evals"] = [
                {
                    k: e[k]
                    for k in ("step", "eval_runtime", "eval_samples_per_second", "eval_generate_runtime")
                    if k in e
                }
                for e in hist
                if "eval_runtime" in e
            ]
    return found


def pipeline_summary(found: dict[str, Any], n_train: int, peak: float | None, config: Any) -> dict[str, Any]:
    thr = (found.get("fast_path") or {}).get("throughput") or {}
    plan = (found.get("plan") or {}).get("choices", {})
    frames = int((plan.get("encoder_frames") or {}).get("value", 3000))
    flops = lib.whisper_forward_flops(config, 14.0, frames)
    evals = found.get("evals") or []
    epochs = float((found.get("last_metrics") or {}).get("epoch", 0) or 0)
    train_s = n_train * epochs / thr["wall_samples_per_s"] if thr.get("wall_samples_per_s") else None
    eval_s = sum(e.get("eval_runtime", 0.0) for e in evals)
    epoch_s = n_train / thr["wall_samples_per_s"] if thr.get("wall_samples_per_s") else None
    return {
        "step_samples_per_s": thr.get("step_samples_per_s"),
        "wall_samples_per_s": thr.get("wall_samples_per_s"),
        "warmup_s (first steps: compile when on; not in the rates, in time_to_model)": thr.get("warmup_s"),
        "epoch_s_from_wall_rate": round(epoch_s, 2) if epoch_s else None,
        "eval_share_of_epoch (each evaluation / one epoch)": [
            round(e.get("eval_runtime", 0.0) / epoch_s, 3) for e in evals
        ]
        if epoch_s
        else None,
        "evals": evals,
        "wall_over_step": round(thr["wall_samples_per_s"] / thr["step_samples_per_s"], 3) if thr else None,
        "mfu_step": lib.model_flops_utilization(thr.get("step_samples_per_s") or 0, flops, peak),
        "peak_mem_gib": thr.get("peak_mem_gib"),
        "eval_samples_per_s": max((e.get("eval_samples_per_second", 0) for e in evals), default=None),
        "eval_s_total": round(eval_s, 2),
        "train_s_from_wall_rate": round(train_s, 1) if train_s else None,
        "eval_share_of_training": round(eval_s / train_s, 3) if train_s else None,
        "time_to_model_s": found.get("time_to_model_s"),
        # seconds from the command's start to the end of each worker step (the run's fast_path.json)
        "worker_timeline_s": {
            k: round(v - found["t0"], 1)
            for k, v in ((found.get("fast_path") or {}).get("timeline") or {}).items()
        }
        if "t0" in found
        else None,
        "n_frames": frames,
        "plan": {k: v.get("value") for k, v in plan.items()},
    }


def run_seed_on_corpus(
    work: Path, corpus: dict[str, Path], steps: int, n_eval: int, peak: float | None
) -> dict[str, Any]:
    """The seed recipe on the corpus' own features (the pipeline's feature cache), 30 s inputs."""
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    from whisper_tune.data import WhisperCollator, prepare_dataset
    from whisper_tune.models import load_model
    from whisper_tune.train import fastpath as fp

    model, processor = load_model(str(work / "small"), attn_implementation="eager")
    cache = next((work / "runs").glob("*/features"), work / "features")
    t0 = time.time()
    # cache hits, read in-process (a spawned pool of 8 took ~3 minutes to start and read them)
    train = prepare_dataset(str(corpus["train"]), processor, feature_cache=str(cache), num_workers=1)
    evaluation = prepare_dataset(str(corpus["eval"]), processor, feature_cache=str(cache), num_workers=1)
    prep_s = time.time() - t0
    plan = lib.seed_plan("cuda", workers=4)
    fp.apply_fast_path(model, plan)
    collator = WhisperCollator(processor, int(model.config.decoder_start_token_id))
    job = lib.trainer_job(16, max_steps=steps, total_steps=steps)
    timer = _timer(16, warmup=3)
    torch.cuda.reset_peak_memory_stats()
    lib.run_product_trainer(model, plan, job, train.dataset, collator, [timer])
    thr = timer.summary() or {}
    flops = lib.whisper_forward_flops(model.config, 14.0, 3000)
    # evaluation as the seed ran it: predict-with-generate, batch 16, fp16, eager, max 225 tokens
    model.config.use_cache = True
    sub = torch.utils.data.Subset(evaluation.dataset, range(min(n_eval, len(evaluation.dataset))))
    args = Seq2SeqTrainingArguments(
        output_dir=str(work / "seed_eval"), per_device_eval_batch_size=16, predict_with_generate=True,
        generation_max_length=225, fp16=True, report_to="none", remove_unused_columns=False,
    )  # fmt: skip
    ev = Seq2SeqTrainer(model=model, args=args, data_collator=collator, processing_class=processor)
    t1 = time.time()
    ev.predict(sub)
    eval_rate = len(sub) / (time.time() - t1)
    return {
        "recipe": "seed: fp16 + GradScaler, batch 16, gradient checkpointing, eager, 30 s, AdamW",
        "steps_timed": thr.get("measured_steps"),
        "step_samples_per_s": thr.get("step_samples_per_s"),
        "wall_samples_per_s": thr.get("wall_samples_per_s"),
        "mfu_step": lib.model_flops_utilization(thr.get("step_samples_per_s") or 0, flops, peak),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
        "eval_samples_per_s": round(eval_rate, 2),
        "eval_clips_timed": len(sub),
        "feature_prep_s_from_cache": round(prep_s, 1),
    }


def project_seed(
    seed: dict[str, Any], n_train: int, n_eval: int, epochs: float, fixed_s: float
) -> dict[str, Any]:
    """Seed time-to-model for the same job from its measured rates (the shipped eval schedule)."""
    steps = int(np.ceil(n_train / 16) * epochs)
    evals = steps // 200 + 1  # eval_steps 200, and the final evaluation
    train_s = n_train * epochs / seed["wall_samples_per_s"]
    eval_s = evals * n_eval / seed["eval_samples_per_s"]
    return {
        "projected": True,
        "steps": steps,
        "evaluations": evals,
        "train_s": round(train_s, 1),
        "eval_s": round(eval_s, 1),
        "fixed_s (data prep, start-up, export: the pipeline's measured non-training time)": round(fixed_s, 1),
        "time_to_model_s": round(train_s + eval_s + fixed_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="/tmp/gpb")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n-train", type=int, default=5000)
    ap.add_argument("--n-eval", type=int, default=500)
    ap.add_argument("--seed-steps", type=int, default=40)
    ap.add_argument("--seed-eval", type=int, default=64)
    ap.add_argument(
        "--pipeline",
        default="shipped",
        help="comma list: shipped, compiled (train.compile=true), or NAME=override+override",
    )
    ap.add_argument(
        "--shapes", default="", help="comma list of larger shapes, e.g. medium,large-v3,large-v3-turbo"
    )
    ap.add_argument("--shape-steps", type=int, default=10)
    ap.add_argument("--shape-compile", action="store_true", help="the plan rows compile the model")
    ap.add_argument("--shape-frames", default="", help="e.g. plan@816+seed@3000 (default: all three runs)")
    ap.add_argument("--shape-batch", type=int, default=None, help="the plan rows at this batch")
    ap.add_argument(
        "--alloc-conf",
        default=None,
        help="PYTORCH_CUDA_ALLOC_CONF for this process, e.g. expandable_segments:True",
    )
    ap.add_argument("--peak-flops", type=float, default=None)
    ap.add_argument(
        "--eval-batches", default="", help="comma list: time evaluation alone at these eval batches"
    )
    ap.add_argument("--profile-eval", action="store_true", help="cProfile the first evaluation")
    ap.add_argument("--skip-pipeline", action="store_true", help="no pipeline or seed run (shapes/eval only)")
    args = ap.parse_args(argv)
    if args.alloc_conf is not None:  # before the first CUDA allocation (the shape rows run in-process)
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = args.alloc_conf
    from transformers import WhisperConfig

    from whisper_tune.models.random_init import save_random_whisper

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = lib.environment()
    peak = lib.peak_flops(env["device"], args.peak_flops)
    result: dict[str, Any] = {"environment": env, "corpus": {}, "pipeline": {}, "shapes": []}
    out = Path(args.out)

    def save() -> None:
        lib.write_json(out, result)

    t0 = time.time()
    if args.eval_batches:
        prof = out.with_name(f"{out.stem}_first_eval_profile.txt") if args.profile_eval else None
        result["eval"] = eval_rows(
            args.n_eval, [int(b) for b in args.eval_batches.split(",")], profile_to=prof
        )
        save()
    if args.skip_pipeline:
        for shape in [x for x in args.shapes.split(",") if x]:
            result["shapes"].extend(
                shape_rows(
                    shape, peak, args.shape_steps, args.shape_frames, args.shape_compile, args.shape_batch
                )
            )
            save()
        return 0
    corpus = make_corpus(work / "corpus", args.n_train, args.n_eval)
    if not (work / "small" / "config.json").is_file():
        save_random_whisper(work / "small", "small")
    result["corpus"] = {
        "train": args.n_train, "eval": args.n_eval, "durations_s": "uniform 2.0-7.5",
        "audio": "tone with vibrato + noise, 16 kHz WAV, made on the machine", "made_in_s": round(time.time() - t0, 1),
    }  # fmt: skip
    save()
    for variant in [v for v in args.pipeline.split(",") if v]:
        name, _, spec = variant.partition("=")
        extra = ["train.compile=true"] if name == "compiled" else [o for o in spec.split("+") if o]
        variant = name
        found = run_pipeline(
            work, corpus, f"pipe_{variant}", extra, out.with_name(f"{out.stem}_{variant}.log")
        )
        found["summary"] = pipeline_summary(
            found, args.n_train, peak, WhisperConfig.from_pretrained(work / "small")
        )
        result["pipeline"][variant] = found
        print(variant, json.dumps(found["summary"]), flush=True)
        save()
    try:
        seed = run_seed_on_corpus(work, corpus, args.seed_steps, args.seed_eval, peak)
        shipped = result["pipeline"].get("shipped", {})
        s = shipped.get("summary", {})
        fixed = (
            (s.get("time_to_model_s") or 0)
            - (s.get("train_s_from_wall_rate") or 0)
            - (s.get("eval_s_total") or 0)
        )
        epochs = float((shipped.get("last_metrics") or {}).get("epoch", 3) or 3)
        seed["time_to_model"] = project_seed(seed, args.n_train, args.n_eval, epochs, max(0.0, fixed))
        result["seed"] = seed
        print("seed", json.dumps(seed), flush=True)
        if s.get("wall_samples_per_s") and seed.get("wall_samples_per_s"):
            result["ratios"] = {
                "wall_samples_per_s": round(s["wall_samples_per_s"] / seed["wall_samples_per_s"], 2),
                "time_to_model": round(seed["time_to_model"]["time_to_model_s"] / s["time_to_model_s"], 2)
                if s.get("time_to_model_s")
                else None,
            }
    except Exception as exc:  # keep what was measured
        result["seed_error"] = f"{type(exc).__name__}: {exc}"[:500]
    save()
    for shape in [x for x in args.shapes.split(",") if x]:
        try:
            result["shapes"].extend(
                shape_rows(
                    shape, peak, args.shape_steps, args.shape_frames, args.shape_compile, args.shape_batch
                )
            )
        except Exception as exc:
            result["shapes"].append({"shape": shape, "error": f"{type(exc).__name__}: {exc}"[:500]})
        save()
    result["total_s"] = round(time.time() - t0, 1)
    save()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
