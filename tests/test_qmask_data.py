"""Anchoring data: de-stylized masks, SPI statistics, instance generation and JSONL."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrkit.anchoring.data import AnchorDataset, AnchorInstance, read_instances, write_instances
from ocrkit.anchoring.generate import build_instances, t2r_answer
from ocrkit.anchoring.masks import default_font, render_mask, render_region_mask, render_text_mask
from ocrkit.anchoring.spi import (
    PRIOR_HEADER,
    PriorItem,
    SPIConfig,
    corrupt,
    format_prior,
    inject_prior,
    jitter_box,
    perturb_transcript,
)
from ocrkit.tabench.geometry import iou_matrix

# --- de-stylized masks -----------------------------------------------------------------------


def test_text_mask_ink_fills_the_box_exactly() -> None:
    m = render_text_mask("Hello", 120, 30)
    ys, xs = np.nonzero(m)
    assert m.shape == (30, 120) and m.dtype == np.uint8
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (0, 119, 0, 29)  # cropped to ink, resized
    assert 0.15 < (m > 127).mean() < 0.7  # glyph strokes, not a filled rectangle


def test_mask_does_not_depend_on_the_photo_style() -> None:
    """Same transcript and box -> same mask, whatever the image looks like (it is never read)."""
    a = render_mask([("EXIT", [10, 20, 90, 50])], 100, 60)
    b = render_mask([("EXIT", [10, 20, 90, 50])], 100, 60)
    assert np.array_equal(a, b)
    assert not render_mask([("EXIT", [10, 20, 90, 50])], 100, 60)[:20].any()


def test_region_mask_follows_a_quadrilateral() -> None:
    quad = [[20, 10], [100, 30], [95, 60], [15, 40]]
    m = render_region_mask("SIGN", quad, 120, 80)
    inside = np.zeros((80, 120), np.uint8)
    cv2.fillPoly(inside, [np.array(quad, np.int32)], 1)
    ink = m > 127
    assert ink.sum() > 100
    assert (ink & (cv2.dilate(inside, np.ones((3, 3))) == 0)).sum() == 0  # all ink inside the quad


def test_default_font_is_the_paper_choice_or_a_named_fallback() -> None:
    latin = default_font("Hello")
    assert latin.name in ("Ubuntu", "Ubuntu Regular", "DejaVu Sans")
    cjk = pytest.importorskip("noto_cjk_sans_otc")
    assert cjk and default_font("中文").name.startswith("Noto Sans CJK SC")
    vertical = render_text_mask("中文字", 30, 100)
    assert vertical.shape == (100, 30) and (vertical > 127).mean() > 0.1


def test_font_argument_changes_the_mask(tmp_path: Path) -> None:
    from ocrkit.data.render.fonts import list_fonts

    # matplotlib's DejaVu faces are present on every install (system=False: no host fonts).
    by_name = {f.name: f for f in list_fonts("latin", system=False)}
    sans, mono = by_name["DejaVu Sans"], by_name["DejaVu Sans Mono"]
    a = render_text_mask("Wg", 60, 30, font=sans)
    assert np.array_equal(a, render_text_mask("Wg", 60, 30, font=sans.path))  # spec == its path
    b = render_text_mask("Wg", 60, 30, font=mono.path)
    assert a.shape == b.shape == (30, 60)
    # Sans vs Sans Mono: 28.7% of the binarized pixels differ (516 of 1800, measured with
    # Pillow 13.0 / FreeType 2.14.3); the band allows another FreeType's anti-aliasing.
    assert ((a > 127) != (b > 127)).mean() == pytest.approx(0.287, abs=0.05)
    with pytest.raises(ValueError, match="not found"):
        render_text_mask("A", 10, 10, font="No Such Font")


# --- Stochastic Prior Injection ----------------------------------------------------------------


def test_spi_operation_frequencies_match_the_paper() -> None:
    rng = np.random.default_rng(0)
    cfg = SPIConfig()
    item = PriorItem("SAMPLE", [0, 0, 100, 30])
    counts = {"delete": 0, "jitter": 0, "perturb": 0}
    n = 20000
    for _ in range(n):
        _, op = corrupt(item, rng, cfg)
        counts[op] += 1
    for op, p in cfg.op_probs.items():
        assert counts[op] / n == pytest.approx(p, abs=0.012)


def test_box_jitter_ratio_and_mean_iou() -> None:
    rng = np.random.default_rng(1)
    box = [100.0, 50.0, 300.0, 110.0]  # 200 x 60
    ious, moves = [], []
    for _ in range(5000):
        j = jitter_box(box, rng)
        moves.append(np.abs(np.array(j) - box) / np.array([200, 60, 200, 60]))
        ious.append(iou_matrix([j], [box])[0, 0])
    moves = np.array(moves)
    assert moves.max() <= 0.17 + 1e-9 and moves.max() > 0.165  # amplitude r ~ U[0.12, 0.17]
    assert np.mean(ious) == pytest.approx(0.76, abs=0.015)  # the paper's ~0.76 IoU


def test_transcript_perturbation_ratio_and_split() -> None:
    rng = np.random.default_rng(2)
    text = "abcdefghijklmnopqrst"  # 20 characters
    ratios, dels, ins = [], 0, 0
    for _ in range(5000):
        new, d, i = perturb_transcript(text, rng)
        assert len(new) == len(text) - d + i
        ratios.append((d + i) / len(text))
        dels, ins = dels + d, ins + i
    assert min(ratios) >= 0.2 - 0.025 and max(ratios) <= 0.6 + 0.025  # rounding of rho * len
    assert np.mean(ratios) == pytest.approx(0.4, abs=0.01)
    assert dels / (dels + ins) == pytest.approx(0.7256, abs=0.01)


def test_inject_prior_by_gamma() -> None:
    items = [PriorItem(f"w{i}", [i * 10, 0, i * 10 + 8, 8], target=i == 3) for i in range(40)]
    cfg = SPIConfig(max_items=10)
    rng = np.random.default_rng(3)
    clean, info = inject_prior(items, rng, cfg, gamma=1.0)
    assert len(clean) == 10 and any(p.target for p in clean) and sum(info["ops"].values()) == 0
    assert inject_prior(items, rng, cfg, gamma=0.0)[0] == []
    corrupted = [
        sum(inject_prior(items, rng, cfg, gamma=0.5)[1]["ops"].values()) for _ in range(400)
    ]
    assert np.mean(corrupted) / 10 == pytest.approx(0.5, abs=0.04)  # 1 - gamma of the lines
    gammas = [inject_prior(items, rng, cfg)[1]["gamma"] for _ in range(3000)]
    for g in (1.0, 0.5, 0.0):
        assert gammas.count(g) / 3000 == pytest.approx(1 / 3, abs=0.03)
    text = format_prior(clean)
    assert text.startswith(PRIOR_HEADER) and "[30, 0, 38, 8] w3" in text


# --- generation and the instance format ----------------------------------------------------------


@pytest.fixture
def icdar_folder(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.full((80, 160, 3), 200, np.uint8))
    inst = [
        {"text": "OPEN", "points": [[10, 10], [60, 10], [60, 30], [10, 30]]},
        {"text": "OPEN!", "points": [[90, 40], [140, 40], [140, 60], [90, 60]]},
        {"text": "###", "points": [[0, 60], [20, 60], [20, 79], [0, 79]], "ignore": True},
    ]
    (tmp_path / "annotations.jsonl").write_text(
        json.dumps({"image": "images/a.png", "instances": inst}) + "\n"
    )
    return tmp_path


def test_icdar_regions_become_r2t_t2r_read_instances(icdar_folder: Path) -> None:
    out = build_instances(
        {
            "type": "icdar",
            "path": str(icdar_folder),
            "tasks": ["r2t", "t2r", "read"],
            "per_image": None,
            "prior": "gt",
        }
    )
    by_task = {t: [i for i in out if i.task == t] for t in ("r2t", "t2r", "read")}
    assert len(by_task["r2t"]) == 2 and len(by_task["t2r"]) == 1 and len(by_task["read"]) == 1
    r = by_task["r2t"][0]
    assert r.question == "What is the text at location [10, 10, 60, 30]?" and r.answer == "OPEN"
    t = by_task["t2r"][0]  # OPEN and OPEN! share a canonical string: one query, two targets
    assert t.question == 'Where is "OPEN" located in the image?'
    assert json.loads(t.answer) == json.loads(t2r_answer([[10, 10, 60, 30], [90, 40, 140, 60]]))
    assert len(t.regions) == 2 and all(p["target"] for p in t.prior)
    assert by_task["read"][0].answer == "OPEN OPEN!" and not by_task["read"][0].has_mask
    assert "###" not in {p["text"] for p in r.prior}


def test_funsd_vqa_with_and_without_masks(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "f.png"), np.full((100, 200, 3), 255, np.uint8))
    form = {
        "form": [
            {
                "id": 0,
                "label": "question",
                "text": "Date:",
                "box": [5, 5, 40, 20],
                "linking": [[0, 1]],
                "words": [{"text": "Date:", "box": [5, 5, 40, 20]}],
            },
            {
                "id": 1,
                "label": "answer",
                "text": "12/03/98",
                "box": [50, 5, 120, 20],
                "linking": [[0, 1]],
                "words": [{"text": "12/03/98", "box": [50, 5, 120, 20]}],
            },
        ]
    }
    (tmp_path / "annotations" / "f.json").write_text(json.dumps(form))
    with_mask = build_instances({"type": "funsd", "path": str(tmp_path), "tasks": ["vqa"]})
    assert len(with_mask) == 1 and with_mask[0].answer == "12/03/98" and with_mask[0].has_mask
    assert with_mask[0].question == 'What is the value of the field "Date"?'
    without = build_instances(
        {"type": "funsd", "path": str(tmp_path), "tasks": ["vqa"], "vqa_masks": False}
    )
    assert not without[0].has_mask
    with pytest.raises(ValueError, match="unknown data spec keys"):
        build_instances({"type": "funsd", "path": str(tmp_path), "typo": 1})


def test_synthetic_scenes_and_jsonl_round_trip(tmp_path: Path) -> None:
    out = build_instances(
        {"type": "synth", "num_images": 3, "per_image": 2, "prior": "gt"},
        seed=0,
        cache_dir=str(tmp_path),
    )
    assert out and {i.task for i in out} == {"r2t", "t2r"}
    write_instances(tmp_path / "set" / "instances.jsonl", out)
    back = read_instances(tmp_path / "set" / "instances.jsonl")
    assert [b.to_record() for b in back] == [o.to_record() for o in out]
    ds = AnchorDataset(back, SPIConfig())
    np.random.seed(0)
    s = ds[0]
    assert s["images"][0].shape[:2] == s["masks"][0].shape
    assert s["prompt"].endswith(s["question"]) and s["masks"][0].max() > 0


def test_instance_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(AnchorInstance("a.png", "q", "a").to_record()) + "\n" + '{"image": "x"}\n'
    )
    with pytest.raises(ValueError, match=r"bad.jsonl:2: an anchoring instance needs 'question'"):
        read_instances(path)


@pytest.mark.shared_data
def test_generator_on_the_shared_region_annotations(shared_data: Path) -> None:
    ic15 = build_instances(
        {"type": "icdar", "path": str(shared_data / "ic15_train"), "limit": 50, "prior": "gt"}
    )
    funsd = build_instances(
        {"type": "funsd", "path": str(shared_data / "funsd_train"), "tasks": ["vqa"]}
    )
    assert len(ic15) == 50 and len(funsd) > 100
    s = AnchorDataset(ic15[:1])[0]
    assert s["masks"][0].shape == s["images"][0].shape[:2] and s["masks"][0].any()


def test_deletion_share_is_per_edit_by_default() -> None:
    """10 characters at rho = 0.4: n = 4 edits. Per edit the deletions are Binomial(4, 0.7256):
    mean 2.9024, P(all four) = 0.7256^4 = 0.2772, P(none) = 0.2744^4 = 0.0057. Per transcript
    (the option) every string gets 4 deletions (p 0.7256) or 4 insertions."""
    text, n = "abcdefghij", 4
    rng = np.random.default_rng(5)
    edit = [perturb_transcript(text, rng, (0.4, 0.4))[1] for _ in range(20000)]
    assert np.mean(edit) == pytest.approx(n * 0.7256, abs=0.02)
    assert np.mean(np.array(edit) == 4) == pytest.approx(0.7256**4, abs=0.01)
    assert np.mean(np.array(edit) == 0) == pytest.approx(0.2744**4, abs=0.003)
    whole = [
        perturb_transcript(text, rng, (0.4, 0.4), share_per="transcript")[1:] for _ in range(20000)
    ]
    assert {w for w in whole} == {(4, 0), (0, 4)}
    assert np.mean([d == 4 for d, _ in whole]) == pytest.approx(0.7256, abs=0.01)
    with pytest.raises(ValueError, match="share_per"):
        SPIConfig(share_per="sample")
