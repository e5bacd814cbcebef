"""``python -m whisper_tune.data.synth``: the ``data synth`` command without the rest of the CLI."""

from __future__ import annotations

import sys

from whisper_tune.data.synth.cli import main

if __name__ == "__main__":
    sys.exit(main())
