#!/usr/bin/env bash
# GPU proof of the real `whisper-tune train` path (Ray TorchTrainer + DeepSpeed ZeRO-2 + fast path)
# on random whisper-small shapes and 256+32 synthetic 2-7.5 s clips. Run on the GPU machine from the
# repo root after ../shared/device/pack.sh (see docs/performance.md, "Training pipeline on one H100"),
# carrying .carry/ray.tar.xz, .carry/whl, .carry/perf/site; results land in $OUT/{a,b}.
set -euo pipefail
T0=$(date +%s)
if [ ! -d /tmp/site/deepspeed ]; then mkdir -p /tmp/site
tar xJf .carry/ray.tar.xz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .carry/whl/*.whl
DS_BUILD_OPS=0 PYTHONPATH=/tmp/site python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target /tmp/site .carry/whl/*.tar.gz; fi
export PYTHONPATH=$PWD/src:$PWD/.carry/perf/site:/tmp/site HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
echo "unpacked in $(( $(date +%s) - T0 )) s"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
W=/tmp/fpw; mkdir -p $W
[ -f /tmp/fpw/eval.jsonl ] || python3 - <<'PY'
import json, numpy as np, soundfile as sf, pathlib
from whisper_tune.models.random_init import save_random_whisper
W = pathlib.Path("/tmp/fpw"); save_random_whisper(W / "small", "small")
texts = ["freeze my card please", "what is my balance", "send money with zelle", "what is the apr on this card",
         "i lost my debit card", "transfer fifty dollars to savings", "dispute a charge on my statement"]
rng = np.random.default_rng(0)
for split, n in (("train", 256), ("eval", 32)):
    (W / split).mkdir(exist_ok=True); rows = []
    for i in range(n):
        dur = float(rng.uniform(2.0, 7.5)); t = np.arange(int(16000 * dur)) / 16000
        wav = 0.3 * np.sin(2 * np.pi * (150 + 7 * i) * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.03 * rng.standard_normal(t.size)
        p = W / split / f"{i}.wav"; sf.write(p, wav.astype(np.float32), 16000)
        rows.append({"audio_filepath": str(p), "text": texts[i % len(texts)], "duration": round(dur, 3)})
    (W / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
PY
set +e +o pipefail
echo "data+model in $(( $(date +%s) - T0 )) s"
cat > $W/job.yaml <<'Y'
# whisper-tune train --config job.yaml  (GPU proof, random whisper-small shapes)
model: {name: /tmp/fpw/small}
data: {train: /tmp/fpw/train.jsonl, eval: /tmp/fpw/eval.jsonl}
train: {learning_rate: 1.0e-4, per_device_batch_size: 32, max_steps: 48, eval_steps: 48, save_steps: 48,
        logging_steps: 8, generation_max_length: 24, deepspeed: zero2, precision: auto,
        short_audio: true, group_by_length: true, compile: auto}
scaling: {num_workers: 1, use_gpu: true, cpus_per_worker: 8}
run: {storage_path: /tmp/fpw/runs, name: gpu}
Y
W_RUN() { python3 -c "import sys; from whisper_tune.cli import main; sys.exit(main(sys.argv[1:]))" train --config $W/job.yaml "$@"; }
rm -rf $W/runs; S=$(date +%s); W_RUN 2>&1 | grep -v -E "Loading weights|Writing model|it/s\]$" | tail -40; echo "run A wall $(( $(date +%s) - S )) s"
mkdir -p $OUT/a; cp $W/runs/gpu/{fast_path.json,status.json,data_report.json} $OUT/a/ ; cp $W/runs/gpu/best/metrics.json $OUT/a/best_metrics.json; cp $W/runs/gpu/best/config.json $OUT/a/best_config.json; ls $W/runs/gpu $W/runs/gpu/best > $OUT/a/ls.txt
python3 - <<'PY'
import torch
from transformers import WhisperForConditionalGeneration, WhisperProcessor
m = WhisperForConditionalGeneration.from_pretrained("/tmp/fpw/runs/gpu/best"); p = WhisperProcessor.from_pretrained("/tmp/fpw/runs/gpu/best")
f = p.feature_extractor([0.1] * 48000, sampling_rate=16000, return_tensors="pt").input_features
print("best/ loads; features", tuple(f.shape), "generate ->", m.generate(f, max_new_tokens=4).shape)
PY
echo "--- run B: compile true (Ray + ZeRO-2), eval through uncompiled()"
S=$(date +%s); timeout 150 bash -c "$(declare -f W_RUN); W=$W; W_RUN run.name=gpuc train.compile=true" 2>&1 | grep -v -E "Loading weights|Writing model|it/s\]$" | tail -15 || echo "run B stopped rc=$?"; echo "run B wall $(( $(date +%s) - S )) s"
mkdir -p $OUT/b; cp $W/runs/gpuc/{fast_path.json,status.json} $OUT/b/ 2>/dev/null || true
echo total $(( $(date +%s) - T0 )) s
