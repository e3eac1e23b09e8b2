"""Cached frozen-encoder outputs: the same loss as from images, the right gradients, one
computation per distinct data part, and a disk cache that is reused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset
from word_fixtures import WORDS, Words, word_image

from ocrkit.config import ConfigError
from ocrkit.models import Recognizer
from ocrkit.train import frozen_features
from ocrkit.train.frozen_features import cache_frozen_features, collate_features
from ocrkit.train.tasks import init_model


def ppocr_config(arch: str = "ppocrv4_rec", decoder: str = "ctc") -> dict:
    return {
        "backbone": {"name": arch},
        "decoder": {"name": decoder, **({"dropout": 0.0} if decoder == "ar" else {})},
        "charset": "36",
        "max_length": 25,
        "img_size": [48, 320],
        "preprocess": {"name": "ppocr", "bgr": True},
    }


def _model(part: str, decoder: str = "ctc") -> Recognizer:
    torch.manual_seed(0)
    model = Recognizer.from_config(ppocr_config(decoder=decoder))
    model.freeze_encoder(part)
    model.freeze_batchnorm()
    return model


@pytest.mark.parametrize("part", ["all", "body"])
@pytest.mark.parametrize("decoder", ["ctc", "ar"])
def test_cached_features_give_the_loss_and_gradients_of_images(part, decoder):
    model = _model(part, decoder).train()
    data = Words(model.transform)
    cached = cache_frozen_features(model, data, cache_dir="unused-without-keys")
    assert len(cached) == len(WORDS) and model.training  # the mode is restored
    images = torch.stack([data[i].image for i in range(len(data))])
    from_images = model.training_step({"images": images, "labels": list(WORDS)})
    from_images["loss"].backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    batch = collate_features([cached[i] for i in range(len(cached))])
    assert batch["labels"] == list(WORDS)
    from_cache = model.training_step(batch)
    from_cache["loss"].backward()
    torch.testing.assert_close(from_cache["loss"], from_images["loss"], rtol=1e-5, atol=1e-6)
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == set(grads)
    for name in trained:
        torch.testing.assert_close(
            model.get_parameter(name).grad, grads[name], rtol=1e-4, atol=1e-6
        )
    neck = {n for n in trained if n.startswith("backbone.neck.")}
    body = {n for n in trained if n.startswith("backbone.backbone.")}
    assert not body  # the frozen body never trains
    assert bool(neck) == (part == "body")  # the neck trains only when the body alone is frozen
    assert any(n.startswith("decoder.") for n in trained)


@pytest.mark.parametrize("arch", ["ppocrv4_rec", "ppocrv6_rec_small"])
def test_a_body_tail_trains_from_cached_features_like_from_images(arch):
    """``tail=2``: the cache holds the body's map before its last 2 blocks; those blocks, the
    neck and the head get the gradients they get from images, the rest of the body none."""
    torch.manual_seed(0)
    model = Recognizer.from_config(ppocr_config(arch))
    model.freeze_encoder("body", tail=2)
    model.freeze_batchnorm()
    model.train()
    data = Words(model.transform)
    cached = cache_frozen_features(model, data, cache_dir="unused-without-keys")
    images = torch.stack([data[i].image for i in range(len(data))])
    assert cached.features.shape[1:] != model.backbone.features(images[:1]).shape[1:]  # unpooled
    from_images = model.training_step({"images": images, "labels": list(WORDS)})
    from_images["loss"].backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    from_cache = model.training_step(collate_features([cached[i] for i in range(len(cached))]))
    from_cache["loss"].backward()
    torch.testing.assert_close(from_cache["loss"], from_images["loss"], rtol=1e-5, atol=1e-6)
    trained = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trained == set(grads)
    last = len(model.backbone.backbone.blocks) - 2
    body = {n.split(".")[3] for n in trained if n.startswith("backbone.backbone.blocks.")}
    assert body == {str(last), str(last + 1)}  # exactly the last two blocks
    assert not any(n.startswith("backbone.backbone.stem.") for n in trained)
    for name in trained:
        torch.testing.assert_close(
            model.get_parameter(name).grad, grads[name], rtol=1e-4, atol=1e-6
        )
    with pytest.raises(ValueError, match="only with part 'body'"):
        model.freeze_encoder("all", tail=1)
    with pytest.raises(ValueError, match="tail: 0 to"):
        model.freeze_encoder("body", tail=99)


def test_half_cache_is_float16_keyed_apart_and_trains_alike(tmp_path):
    from ocrkit.data import open_dataset

    model = _model("body")
    dataset = open_dataset(
        str(_folder(tmp_path / "set", WORDS)), protocol="parseq36", transform=model.transform
    )
    full = cache_frozen_features(model, dataset, tmp_path / "cache")
    half = cache_frozen_features(model, dataset, tmp_path / "cache", half=True)
    assert full.features.dtype == torch.float32 and half.features.dtype == torch.float16
    assert torch.equal(half.features, full.features.half())
    assert len(list((tmp_path / "cache" / "frozen").glob("*.safetensors"))) == 2  # two keys
    again = cache_frozen_features(model, dataset, tmp_path / "cache", half=True)
    assert again.features.dtype == torch.float16
    losses = [
        model.training_step(collate_features([c[i] for i in range(len(c))]))["loss"]
        for c in (full, half)
    ]
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-2, atol=1e-3)


def test_a_repeated_part_is_computed_once_and_indexed_twice(monkeypatch):
    model = _model("body")
    a, b = Words(model.transform), Words(model.transform, words=["xy", "z"])
    calls = []
    original = frozen_features._compute
    monkeypatch.setattr(
        frozen_features,
        "_compute",
        lambda m, part, *args: calls.append(part) or original(m, part, *args),
    )
    cached = cache_frozen_features(model, ConcatDataset([a, a, b]), cache_dir="unused")
    assert calls == [a, b]
    assert len(cached) == 2 * len(WORDS) + 2 and cached.features.shape[0] == len(WORDS) + 2
    labels = [cached[i]["label"] for i in range(len(cached))]
    assert labels == WORDS + WORDS + ["xy", "z"]
    assert torch.equal(cached[0]["features"], cached[len(WORDS)]["features"])


def _folder(tmp_path, words, broken: int | None = None):
    (tmp_path / "images").mkdir(parents=True)
    lines = []
    for i, word in enumerate(words):
        path = tmp_path / "images" / f"{i}.png"
        if i == broken:
            path.write_bytes(b"not an image")
        else:
            cv2.imwrite(str(path), word_image(word))
        lines.append(f"images/{i}.png\t{word}")
    (tmp_path / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def test_disk_cache_is_reused_and_keyed_by_the_frozen_weights(tmp_path, monkeypatch):
    from ocrkit.data import open_dataset

    model = _model("all")
    folder = _folder(tmp_path / "set", WORDS, broken=1)
    dataset = open_dataset(str(folder), protocol="parseq36", transform=model.transform)
    first = cache_frozen_features(model, dataset, tmp_path / "cache")
    assert [first[i]["label"] for i in range(len(first))] == ["cat", "sun", "a1b2"]  # 1 unreadable
    assert len(list((tmp_path / "cache" / "frozen").glob("*.safetensors"))) == 1

    def fail(*_):
        raise AssertionError("recomputed")

    monkeypatch.setattr(frozen_features, "_compute", fail)
    again = cache_frozen_features(model, dataset, tmp_path / "cache")
    assert torch.equal(again.features, first.features) and again.labels == first.labels
    with torch.no_grad():
        next(model.backbone.backbone.parameters()).add_(1.0)  # other frozen weights: another key
    with pytest.raises(AssertionError, match="recomputed"):
        cache_frozen_features(model, dataset, tmp_path / "cache")


def test_recipe_errors_name_the_key():
    vit = Recognizer.from_config({"backbone": {"name": "vit_tiny"}, "decoder": {"name": "ar"}})
    with pytest.raises(ConfigError, match="init.freeze_encoder.*body and a neck"):
        init_model(vit, {"freeze_encoder": "body"})
    with pytest.raises(ConfigError, match="init.cache_frozen: needs init.freeze_encoder"):
        init_model(vit, {"cache_frozen": True})
    with pytest.raises(ValueError, match="freeze part of the encoder first"):
        vit.frozen_features(torch.zeros(1, 3, 32, 128))
    ppocr = Recognizer.from_config(ppocr_config())
    for init in ({"train_body_tail": 2}, {"freeze_encoder": True, "train_body_tail": 2}):
        with pytest.raises(ConfigError, match="init.train_body_tail: .* freeze_encoder: body"):
            init_model(ppocr, init)
    with pytest.raises(ConfigError, match="init.train_body_tail"):
        init_model(ppocr, {"freeze_encoder": "body", "train_body_tail": -1})
    with pytest.raises(ConfigError, match="init.freeze_encoder: tail: 0 to"):
        init_model(ppocr, {"freeze_encoder": "body", "train_body_tail": 999})
    init_model(ppocr, {"freeze_encoder": "body", "train_body_tail": 2})
    assert ppocr.frozen_tail == 2


def test_frozen_vit_caches_its_tokens():
    torch.manual_seed(0)
    vit = Recognizer.from_config({"backbone": {"name": "vit_tiny"}, "decoder": {"name": "ar"}})
    vit.freeze_encoder()
    image = vit.transform(np.ascontiguousarray(word_image("cat")))[None]
    with torch.no_grad():
        assert torch.equal(vit.frozen_features(image), vit.backbone.eval()(image))


class _Brighten:
    """Adds one draw of numpy's global RNG to the crop: an augmentation stand-in."""

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return np.clip(image.astype(np.int16) + np.random.randint(-80, 80), 0, 255).astype(np.uint8)

    def __repr__(self) -> str:
        return "Brighten(-80, 80)"


def test_augmented_views_differ_repeat_with_the_seed_and_are_reused(tmp_path, monkeypatch):
    from ocrkit.data import Compose, open_dataset

    model = _model("body")
    folder = _folder(tmp_path / "set", WORDS)
    transform = Compose([_Brighten(), model.transform])
    dataset = open_dataset(str(folder), protocol="parseq36", transform=transform)
    n = len(WORDS)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    views = cache_frozen_features(model, dataset, tmp_path / "a", views=3, seed=7)
    assert np.array_equal(np.random.get_state()[1], before)  # the caller's RNG stream is kept
    assert len(views) == 3 * n and views.labels == WORDS * 3
    rows = views.features.reshape(3, n, -1)
    assert not torch.equal(rows[0], rows[1]) and not torch.equal(rows[1], rows[2])
    assert len(list((tmp_path / "a" / "frozen").glob("*.safetensors"))) == 3  # one file per view
    fresh = cache_frozen_features(model, dataset, tmp_path / "b", views=3, seed=7)
    assert torch.equal(fresh.features, views.features)  # recomputed: the same draws
    other = cache_frozen_features(model, dataset, tmp_path / "c", views=3, seed=8)
    assert not torch.equal(other.features, views.features)
    monkeypatch.setattr(frozen_features, "_compute", lambda *_: pytest.fail("recomputed"))
    again = cache_frozen_features(model, dataset, tmp_path / "a", views=3, seed=7)
    assert torch.equal(again.features, views.features)
    with pytest.raises(ValueError, match="views must be >= 1"):
        cache_frozen_features(model, dataset, tmp_path / "a", views=0)


@pytest.mark.parametrize(
    ("cache", "augment", "expected"),
    [
        (None, "parseq", (0, False)),
        (True, None, (1, False)),
        ({"views": 4}, "parseq", (4, False)),
        (True, "parseq", "set data.augment=null"),
        ({"views": 4}, None, "need data.augment"),
        ({"views": 1}, "parseq", "set data.augment=null"),
        ({"views": 4, "half": True}, "parseq", (4, True)),
        ({"views": 1, "half": True}, None, (1, True)),
        ({"views": 1, "half": True}, "parseq", "set data.augment=null"),
        ({"views": 4, "seed": 1}, "parseq", "true or {views: K, half: bool}"),
        ("yes", "parseq", "true or {views: K"),
    ],
)
def test_cache_options_read_the_recipe(cache, augment, expected):
    from ocrkit.train.tasks import cache_options

    config = {"init": {"cache_frozen": cache}, "data": {"augment": augment}}
    if isinstance(expected, tuple):
        assert tuple(cache_options(config)) == expected
    else:
        with pytest.raises(ConfigError, match=expected):
            cache_options(config)


def test_str_task_caches_the_views_the_recipe_asks_for(tmp_path, monkeypatch):
    """The recipe path end to end: views, float16 and the body tail reach the cache."""
    from ocrkit.train.tasks import str_task

    monkeypatch.setenv("OCRKIT_CACHE", str(tmp_path / "cache"))
    folder = _folder(tmp_path / "set", WORDS)
    config = {
        "model": ppocr_config(),
        "init": {
            "freeze_encoder": "body",
            "train_body_tail": 1,
            "cache_frozen": {"views": 2, "half": True},
        },
        "data": {"protocol": "parseq36", "augment": "parseq", "train": [str(folder)]},
        "train": {"seed": 0},
    }
    parts = str_task(config)
    assert parts.model.frozen_tail == 1
    assert len(parts.train_dataset) == 2 * len(WORDS) and parts.train_dataset.labels == WORDS * 2
    assert parts.train_dataset.features.dtype == torch.float16
    assert len(list((tmp_path / "cache" / "frozen").glob("*.safetensors"))) == 2  # one per view
