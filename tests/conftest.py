"""Shared fixtures. Tests build their own data; ``shared_data`` skips when ../shared is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ocrkit.utils.paths import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if path is None:
        pytest.skip("../shared/data (or $OCRKIT_DATA) is not available")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread per test: the models are tiny and the CI machine has 2 shared cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
