"""MDiff4STR recipes against the reference (the README's 4-GPU launch, OpenOCR's configs)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from ocrkit.config import load_config
from ocrkit.models.decoders.mdiff import loss as losses

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "str"


@pytest.mark.parametrize("name", ["svtrv2_small_mdiff.yaml", "svtrv2_base_mdiff.yaml"])
def test_documented_launch_gives_the_reference_global_batch(name: str, monkeypatch) -> None:
    """4 GPUs x 256 = 1,024 at lr 5e-4 (the README trains on 4 GPUs; OpenOCR's comments)."""
    for var in ("UNION14M", "UNION14M_FILTER"):
        monkeypatch.setenv(var, "/data")
    config = load_config(RECIPES / name)
    header = (RECIPES / "svtrv2_small_mdiff.yaml").read_text()  # the base recipe documents it
    launches = re.findall(r"--num_processes (\d+)", header)
    assert launches == ["4"]
    train = config["train"]
    assert 4 * train["batch_size"] * train.get("grad_accum", 1) == 1024
    assert train["lr"] == pytest.approx(5e-4)


def test_denoising_loss_divides_by_label_length_plus_one() -> None:
    """The reference's normalizer: the label length + 1 (EOS counted), as the decoder computes
    it. Label "ab" + EOS, one masked position whose logits favour the right class by 2 (CE
    ``c = log(e^2 + 36) - 2`` over 37 classes), p_mask = 1/3: ``c / (1/3) / 3 = c``; dividing by
    the label length alone would give ``1.5 c``."""
    import math

    from ocrkit.text import Charset, Tokenizer

    tok = Tokenizer(Charset.preset("36"), max_length=4)
    labels = tok.encode(["ab"], bos=False)  # a, b, EOS, PAD, PAD
    lengths = (labels != tok.PAD).sum(1)  # what MDiffDecoder.loss passes
    assert lengths.tolist() == [len("ab") + 1]
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[0, 1] = True
    logits = torch.zeros(1, labels.shape[1], tok.num_classes)
    logits[0, 1, labels[0, 1]] = 2.0
    c = math.log(math.exp(2) + 36) - 2
    got = losses.denoising_loss(logits, labels, mask, torch.tensor([1 / 3]), lengths)
    assert got.item() == pytest.approx(c / (1 / 3) / 3, rel=1e-6)
    assert got.item() == pytest.approx(c, rel=1e-6)
