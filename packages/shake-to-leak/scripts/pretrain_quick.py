"""Pre-train the quick-scale tiny model ahead of the experiments, which reuse it.

`uv run python packages/shake-to-leak/scripts/pretrain_quick.py [RUNS_DIR]`
"""

import sys
from pathlib import Path

import torch
from repro_shared.logging import setup_logging
from shake_to_leak.pretrain import ensure_pretrained
from shake_to_leak.scales import QUICK_DATA, QUICK_MODEL, QUICK_PRETRAIN

if __name__ == "__main__":
    torch.set_num_threads(1)
    setup_logging()
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs")
    path = ensure_pretrained(root, QUICK_MODEL, QUICK_DATA, QUICK_PRETRAIN, seed=0,
                             on_log=lambda step, loss: print(f"step {step} loss {loss:.4f}", flush=True))
    print(path)
