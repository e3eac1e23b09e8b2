"""Start-up: what a cold ``ocrkit`` process imports (sys.modules in a subprocess; no timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, sys
HEAVY = ("torch", "timm", "torchvision")
from ocrkit.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
print(json.dumps({"rc": rc, "heavy": [m for m in HEAVY if m in sys.modules]}))
"""


def run_cold(*argv: str) -> tuple[dict, str]:
    """Run the CLI in a fresh interpreter; its exit code, the heavy modules it imported and its
    standard output (the probe's JSON line removed)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OCRKIT_CACHE": os.devnull}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, cwd=ROOT
    )
    *lines, last = out.stdout.strip().splitlines()
    return json.loads(last), "\n".join(lines)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["recognize"], ["recognize", "-h"]])
def test_help_version_and_argument_errors_do_not_import_torch(argv):
    result, _ = run_cold(*argv)
    assert result["rc"] in (0, 2)
    assert result["heavy"] == []


@pytest.fixture(scope="module")
def exported_ctc(tmp_path_factory):
    """A tiny random ViT + CTC recognizer, its ONNX export and a word image."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import torch

    from ocrkit.export.onnx import export_onnx
    from ocrkit.models import Recognizer

    torch.manual_seed(0)
    vit = {"name": "vit_tiny", "embed_dim": 32, "depth": 1, "num_heads": 2, "patch_size": 8}
    model = Recognizer.from_config({"backbone": vit, "decoder": "ctc", "charset": "36"}).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.5)
    root = tmp_path_factory.mktemp("startup")
    image = np.full((32, 100, 3), 255, np.uint8)
    cv2.putText(image, "cat", (4, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 2)
    cv2.imwrite(str(root / "word.png"), image)
    expected = model.predict([image])[0].text
    assert expected  # a non-empty reading, so the comparisons below can fail
    return export_onnx(model, root / "onnx"), root / "word.png", expected


def test_recognize_onnx_on_a_ctc_model_does_not_import_torch(exported_ctc):
    folder, image, expected = exported_ctc
    result, stdout = run_cold("recognize", "--onnx", str(folder), str(image))
    assert result == {"rc": 0, "heavy": []}
    assert stdout.split("\t")[:2] == [str(image), expected]


def test_the_onnx_api_for_a_ctc_model_does_not_import_torch(exported_ctc):
    folder, image, expected = exported_ctc
    code = (
        "import sys; from ocrkit.export import OnnxRecognizer; "
        f"print(OnnxRecognizer.from_pretrained({str(folder)!r}).recognize({str(image)!r})[0].text);"
        "print('torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == [expected, "False"]


def test_the_default_model_on_pytorch_imports_neither_timm_nor_torchvision():
    word = ROOT / "examples" / "word1.png"
    result, stdout = run_cold("recognize", str(word))
    assert result["rc"] == 0
    assert result["heavy"] == ["torch"]
    assert stdout.split("\t")[1] == "Hello"


def test_lazy_registry_entries_import_on_first_get():
    from ocrkit.registry import Registry

    code = (
        "import sys; from ocrkit.registry import Registry; r = Registry('x'); "
        "r.register_lazy('tool', 'json.tool:main'); before = 'json.tool' in sys.modules; "
        "f = r.get('tool'); print(before, r.list(), f.__module__)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["False", "['tool']", "json.tool"]
    registry = Registry("x")
    with pytest.raises(ValueError, match="module:attribute"):
        registry.register_lazy("bad", "no_colon")
    registry.register_lazy("a", "json:dumps")
    with pytest.raises(KeyError, match="already registered"):
        registry.register_lazy("a", "json:loads")


def test_the_model_registries_list_every_entry_without_importing_timm():
    code = (
        "import sys; from ocrkit.models.backbones import BACKBONES; "
        "from ocrkit.models.decoders import DECODERS; "
        "print(len(BACKBONES.list()), DECODERS.list(), 'timm' in sys.modules, "
        "'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["8", "['ar',", "'ctc',", "'mdiff']", "False", "False"]


def test_vit_names_match_the_vit_configs():
    from ocrkit.models.backbones import VIT_NAMES
    from ocrkit.models.backbones.vit import VIT_CONFIGS

    assert tuple(VIT_CONFIGS) == VIT_NAMES
