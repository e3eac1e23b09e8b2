"""One line that says what a measurement ran on (benchmarks, model cards)."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_hardware(device: str = "cpu") -> str:
    """CPU model, logical cores, Python, torch version and threads (and the GPU for cuda)."""
    import torch

    text = (
        f"{cpu_model()}, {os.cpu_count()} logical cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    if str(device).startswith("cuda"):
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text
