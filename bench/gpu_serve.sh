#!/usr/bin/env bash
# GPU run of the serving benchmarks (bench/serve.py end to end, bench/serve_profile.py in-process).
#
# The GPU machine lacks Ray, Serve's web stack, soundfile/soxr and CTranslate2, and one call
# carries at most 64 MiB, so the inputs travel in three consecutive calls while the machine
# stays warm; every piece is unpacked or stashed under /tmp there:
#   here:    bash bench/gpu_serve.sh pack            -> .carry/g1 .carry/g2 .carry/g3
#   device:  bash bench/gpu_serve.sh setup .carry/g1   (carry .carry/g1: Ray, wheels, weights part 1)
#            bash bench/gpu_serve.sh setup .carry/g2   (carry .carry/g2: CTranslate2, tokenizer, part 2)
#            bash bench/gpu_serve.sh run .carry/g3 [bench/serve.py args]   (part 3, clips; runs both)
# The weights are tiny.en's OpenAI float16 tensors, bit-exact (sha256 printed on both sides).
set -uo pipefail
stage=${1:?pack|setup|run}; dir=${2:-}; shift $(( $# < 2 ? $# : 2 ))
T0=$(date +%s)
el() { echo "[$stage +$(( $(date +%s) - T0 )) s] $*"; }

if [ "$stage" = pack ]; then
  set -e
  PLAT="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
  rm -rf .carry/g1 .carry/g2 .carry/g3 && mkdir -p .carry/g1/whl .carry/g2/whl .carry/g2/model .carry/g3
  grep -qx '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >> .git/info/exclude
  [ -f .carry/ray.tar.xz ] || ../shared/device/pack.sh
  ln -f .carry/ray.tar.xz .carry/g1/ray.tar.xz
  # what the image lacks for Serve + our app (pydantic-core pinned by pydantic; grpcio-reflection
  # must match the image's grpcio, 1.84.0 when this was written)
  python3 -m pip download -q --no-deps $PLAT -d .carry/g1/whl fastapi==0.165.0 starlette==1.10.0 \
    uvicorn==0.54.0 python-multipart==0.0.34 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types \
    typing-inspection jsonschema jsonschema-specifications referencing rpds-py soundfile soxr cffi \
    pycparser opentelemetry-api importlib-metadata grpcio-reflection==1.84.0
  python3 -m pip download -q --no-deps $PLAT -d .carry/g2/whl ctranslate2==4.8.5
  m=$(.venv/bin/python - <<'PY'
import pathlib, shutil, torch
from safetensors.torch import load_file, save_file
from whisper_tune.models import ensure_hf_dir
src = pathlib.Path(ensure_hf_dir("tiny.en")); out = pathlib.Path(".carry/full"); out.mkdir(exist_ok=True)
sd = load_file(src / "model.safetensors")
half = {k: v.to(torch.float16) for k, v in sd.items()}
assert all(torch.equal(v.float(), sd[k]) for k, v in half.items()), "float16 round trip is not exact"
save_file(half, out / "model.safetensors", metadata={"format": "pt"})
for f in src.iterdir():
    if f.name != "model.safetensors":
        shutil.copy(f, pathlib.Path(".carry/g2/model") / f.name)
print(out / "model.safetensors")
PY
)
  # 22 MB + 16 MB + the rest, so that each call stays under 64 MiB with the tracked tree
  python3 -c 'import sys; b = open(sys.argv[1], "rb").read(); [open(p, "wb").write(x) for p, x in
    ((".carry/g1/model.part0", b[:22_000_000]), (".carry/g2/model.part1", b[22_000_000:38_000_000]),
     (".carry/g3/model.part2", b[38_000_000:]))]' "$m"
  cat .carry/g1/model.part0 .carry/g2/model.part1 .carry/g3/model.part2 | cmp - "$m"
  sha256sum "$m"
  HF_HUB_OFFLINE=1 .venv/bin/python bench/serve.py --save-clips .carry/g3/clips
  du -sb .carry/g1 .carry/g2 .carry/g3
  exit 0
fi

export PYTHONPATH=$PWD/src:/tmp/site HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
[ -d "$dir" ] || { echo "no carried folder $dir"; exit 2; }
mkdir -p /tmp/site /tmp/model
[ -f "$dir/ray.tar.xz" ] && [ ! -d /tmp/site/ray ] && tar xJf "$dir/ray.tar.xz" -C /tmp/site
ls "$dir"/whl/*.whl >/dev/null 2>&1 && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$dir"/whl/*.whl 2>&1 | grep -v "already exists"
cp "$dir"/model.part* /tmp/model/ 2>/dev/null; [ -d "$dir/model" ] && cp "$dir"/model/* /tmp/model/
el "unpacked $dir"; ls /tmp/model

# PyPI CTranslate2 loads libcublas.so.12 (CUDA 12); this image has CUDA 13 only. Offer cuBLAS 13
# under the 12 name: the entry points CTranslate2 calls kept their names and signatures.
lib=$(dirname "$(find "$(python3 -c 'import torch, os; print(os.path.dirname(os.path.dirname(torch.__file__)))')" -name 'libcublas.so.*[0-9]' | head -1)")
mkdir -p /tmp/cu12 && ln -sf "$lib"/libcublas.so.1[3-9] /tmp/cu12/libcublas.so.12 && ln -sf "$lib"/libcublasLt.so.1[3-9] /tmp/cu12/libcublasLt.so.12
export LD_LIBRARY_PATH=/tmp/cu12:$lib:${LD_LIBRARY_PATH:-}

if [ "$stage" = setup ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'
  python3 -c 'import ray.serve, fastapi, soundfile, soxr, whisper_tune.serve.app; print("imports ok")'
  exit 0
fi

if [ ! -f /tmp/model/model.safetensors ]; then
  cat /tmp/model/model.part* > /tmp/model/model.safetensors && rm /tmp/model/model.part*
fi
sha256sum /tmp/model/model.safetensors
el "model assembled"
OUTD=${OUT:-/tmp}
[ "${PROFILE:-1}" = 0 ] || python3 bench/serve_profile.py --model /tmp/model --clips-dir "$dir/clips" --threads 1,16 --requests 96 \
  --out "$OUTD/serve_profile_gpu.json" 2>&1 | grep -v "Loading weights\|generation_config\|UserWarning\|warnings.warn"
el "profile done"
bench() {  # bench <json name> [bench/serve.py args]
  local name=$1; shift
  python3 bench/serve.py --model /tmp/model --clips-dir "$dir/clips" --out "$OUTD/$name" "$@" 2>&1 \
    | grep -vE "Loading weights|PlacementGroupCleaner|generation_config|UserWarning|warnings.warn|INFO|WARNING"
}
if [ -n "${VARIANTS:-}" ]; then  # VARIANTS="name1:args1;name2:args2" (serving knobs, same machine)
  IFS=';' read -ra vs <<< "$VARIANTS"
  for v in "${vs[@]}"; do el "variant ${v%%:*}"; bench "serve_gpu_${v%%:*}.json" $(echo "${v#*:}") "$@"; done
else
  bench serve_gpu.json "$@"
fi
el "bench done"
