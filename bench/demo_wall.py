"""Wall time of ``whisper-tune demo`` on this machine, with the per-stage breakdown.

Why: issue targets are about the whole demo on a 2-core CPU (synthesis, feature extraction and
encoder caching, training, evaluation), and wall time alone is misleading on a shared machine,
so CPU time of the process tree (children included) and the load average are recorded too.

    python bench/demo_wall.py --out /tmp/demo_bench [--size small] [--json bench/results/demo_cpu.json] [demo options, e.g. --epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/whisper-tune-demo-bench")
    ap.add_argument("--size", default="small")
    ap.add_argument("--json", default="")
    args, demo_args = ap.parse_known_args(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    cmd = [
        sys.executable,
        "-m",
        "whisper_tune.cli",
        "demo",
        "--out",
        args.out,
        "--size",
        args.size,
        *demo_args,
    ]
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, check=False)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    result_file = Path(args.out) / "demo_result.json"
    demo = json.loads(result_file.read_text(encoding="utf-8")) if result_file.is_file() else {}
    out = {
        "command": " ".join(cmd),
        "exit_code": proc.returncode,
        "wall_s": round(wall, 1),
        "cpu_s_children": round(ru.ru_utime + ru.ru_stime, 1),
        "cores": os.cpu_count(),
        "loadavg_start": load0,
        "loadavg_end": os.getloadavg(),
        "machine": platform.platform(),
        "stages_s": {k: round(v, 1) for k, v in demo.get("timings_s", {}).items()},
        "base_wer": demo.get("base_wer"),
        "tuned_wer": demo.get("tuned_wer"),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
