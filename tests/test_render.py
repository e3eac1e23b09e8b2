"""The synthetic word renderer: fonts, words, effects, determinism and LMDB export."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest

from ocrkit.data.render import imageops
from ocrkit.data.render.effects import EffectConfig, contrast_ratio, contrasting_color
from ocrkit.data.render.fonts import (
    MissingFontError,
    covers,
    fonts_for,
    list_fonts,
    load_font,
)
from ocrkit.data.render.renderer import RenderConfig, WordRenderer
from ocrkit.data.render.words import WordConfig, WordSource, wordfreq_words

PLAIN = RenderConfig(font_size=(24, 32), effects=EffectConfig.none())


@pytest.fixture(scope="module")
def latin() -> list:
    # matplotlib's DejaVu only, so results do not depend on what else is installed.
    return [f for f in list_fonts("latin", system=False) if "cjk" not in f.scripts]


@pytest.fixture(scope="module")
def cjk() -> list:
    fonts = list_fonts("cjk")
    if not fonts:
        pytest.skip("no CJK font installed (pip install noto-cjk-sans-otc)")
    return fonts


def test_latin_fonts_always_include_dejavu_from_matplotlib(latin):
    names = {f.name for f in latin}
    assert {"DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "DejaVu Sans Bold"} <= names
    assert {f.style for f in latin} >= {"regular", "bold", "italic", "bold-italic"}


def test_coverage_rejects_a_font_lacking_a_glyph(latin):
    dejavu = next(f for f in latin if f.name == "DejaVu Sans")
    assert covers(dejavu, "Hello, World! 42")
    assert not covers(dejavu, "中文")
    with pytest.raises(MissingFontError, match="noto-cjk-sans-otc"):
        fonts_for("中文", [dejavu])


def test_renderer_without_cjk_font_says_what_to_install(latin):
    with pytest.raises(MissingFontError, match="pip install"):
        WordRenderer(fonts=latin, words=WordConfig(lang="zh"))


def test_unknown_script_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown script"):
        list_fonts("klingon")


def test_wordfreq_words_are_offline_and_printable():
    words = wordfreq_words("en", 2000)
    assert "the" in words[:5] and len(words) > 1500
    assert all(c.isascii() and c.isprintable() and c != " " for w in words for c in w)


def test_word_source_mixes_dictionary_and_random_strings_deterministically():
    source = WordSource(WordConfig(lang="en", vocab_size=5000, random_ratio=0.5))
    a = [source.sample(np.random.default_rng([3, i])) for i in range(200)]
    b = [source.sample(np.random.default_rng([3, i])) for i in range(200)]
    assert a == b
    lexicon = {w.lower() for w in wordfreq_words("en", 5000)}
    in_lexicon = sum(w.lower() in lexicon for w in a)
    assert 50 < in_lexicon < 170  # about half dictionary words, half random strings
    assert any(w.isdigit() for w in a) and any(w != w.lower() for w in a)


def test_word_config_validates():
    with pytest.raises(ValueError, match="lang"):
        WordConfig(lang="fr")
    with pytest.raises(ValueError, match="random_ratio"):
        WordConfig(random_ratio=1.5)


def test_sample_is_deterministic_per_seed_and_index(latin):
    r = WordRenderer(seed=7, fonts=latin)
    (a, ta), (b, tb) = r.sample(3), WordRenderer(seed=7, fonts=latin).sample(3)
    assert ta == tb and a.tobytes() == b.tobytes()
    c, _ = WordRenderer(seed=8, fonts=latin).sample(3)
    d, _ = r.sample(4)
    assert c.tobytes() != a.tobytes() and d.tobytes() != a.tobytes()


def test_render_is_rgb_uint8_with_visible_text(latin):
    r = WordRenderer(seed=0, fonts=latin, config=PLAIN)
    img = r.render("Hello", np.random.default_rng(0))
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    # Plain config: solid background plus ink of a contrasting colour.
    background = img[0, 0]
    ink = np.any(img != background, axis=-1)
    assert 0.05 < ink.mean() < 0.8
    darkest = img[ink].astype(int).sum(-1)
    extreme = img[ink][np.argmax(np.abs(darkest - int(background.astype(int).sum())))]
    assert contrast_ratio(extreme, background) >= 3.0


def test_tight_crop_keeps_text_at_the_edges(latin):
    cfg = RenderConfig(
        font_size=(30, 30), effects=dataclasses.replace(EffectConfig.none(), margin=(0, 0))
    )
    img = WordRenderer(fonts=latin, config=cfg).render("WIDE", np.random.default_rng(1))
    bg = img[0, 0] if not np.array_equal(img[0, 0], img[-1, -1]) else img[-1, -1]
    ink = np.any(img != bg, axis=-1)
    # With zero margin the ink touches the left and right borders.
    assert ink[:, 0].any() and ink[:, -1].any()


def test_margin_adds_exactly_its_size_beyond_the_canvas(latin):
    def render(margin: float) -> np.ndarray:
        effects = dataclasses.replace(EffectConfig.none(), margin=(margin, margin))
        r = WordRenderer(fonts=latin, config=RenderConfig(font_size=(30, 30), effects=effects))
        return r.render("Margin", np.random.default_rng(4))

    tight, wide = render(0.0), render(1.0)  # 1.0 x size = 30 px per side, past the canvas pad
    assert wide.shape[:2] == (tight.shape[0] + 60, tight.shape[1] + 60)
    assert np.array_equal(wide[30:-30, 30:-30], tight)


def test_longer_text_renders_wider(latin):
    r = WordRenderer(
        fonts=latin, config=RenderConfig(font_size=(30, 30), effects=EffectConfig.none())
    )
    short = r.render("ab", np.random.default_rng(0))
    long = r.render("ab" * 6, np.random.default_rng(0))
    assert long.shape[1] > 3 * short.shape[1]


# Each effect forced on "Effect9" (28 px, seed 5; the plain render is 24 x 107, sha256 digest
# 47ed06244b578fd4): output size and the first 16 hex digits of sha256(output uint8 bytes),
# produced by this test's calls with matplotlib's DejaVu fonts, Pillow 13.0 / FreeType 2.14.3,
# OpenCV 5.1.0 and numpy 2.4.6 (the same on repeated runs).
GOLDEN_EFFECTS = {
    "p_stroke": ((25, 116), "e11cb2ccc6cae743"),
    "p_shadow": ((36, 107), "11955e9632bcf5c8"),
    "p_rotate": ((23, 113), "73a5b794ba82dc98"),
    "p_perspective": ((36, 102), "1899162cdfeacf7b"),
    "p_curve": ((37, 105), "644a16d63953bcd3"),
    "p_blur": ((24, 107), "de988521aa159a2e"),
    "p_motion_blur": ((24, 107), "b18ab6d667ece61f"),
    "p_noise": ((24, 107), "109d75391ca82100"),
    "p_jpeg": ((24, 107), "325ba6a604554f12"),
}


def _digest(img: np.ndarray) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()[:16]


@pytest.mark.parametrize("effect", sorted(GOLDEN_EFFECTS))
def test_every_effect_gives_valid_rgb_and_its_golden_image(latin, effect):
    base = EffectConfig.none()
    forced = dataclasses.replace(base, **{effect: 1.0})
    plain = WordRenderer(fonts=latin, config=RenderConfig((28, 28), base))
    with_effect = WordRenderer(fonts=latin, config=RenderConfig((28, 28), forced))
    a = plain.render("Effect9", np.random.default_rng(5))
    b = with_effect.render("Effect9", np.random.default_rng(5))
    assert b.dtype == np.uint8 and b.ndim == 3 and b.shape[2] == 3 and min(b.shape[:2]) > 8
    assert (a.shape[:2], _digest(a)) == ((24, 107), "47ed06244b578fd4")
    assert (b.shape[:2], _digest(b)) == GOLDEN_EFFECTS[effect]
    if effect in ("p_blur", "p_motion_blur"):  # a normalized kernel keeps the mean (0.03 here)
        assert b.mean() == pytest.approx(a.mean(), abs=0.1) and (a != b).any()


@pytest.mark.parametrize("kind", ["solid", "gradient", "noise"])
def test_backgrounds(latin, kind):
    cfg = dataclasses.replace(EffectConfig.none(), backgrounds=((kind, 1.0),))
    img = WordRenderer(fonts=latin, config=RenderConfig((28, 28), cfg)).render(
        "bg", np.random.default_rng(2)
    )
    corner = img[:3, :3].reshape(-1, 3)
    assert (len(np.unique(corner, axis=0)) == 1) == (kind == "solid")


def test_image_backgrounds_from_a_folder(latin, tmp_path):
    import cv2

    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "a.png"), rng.integers(0, 256, (80, 120, 3), dtype=np.uint8))
    cfg = dataclasses.replace(EffectConfig.none(), p_image_background=1.0)
    r = WordRenderer(fonts=latin, config=RenderConfig((28, 28), cfg), background_dir=tmp_path)
    img = r.render("photo", np.random.default_rng(0))
    assert img.dtype == np.uint8 and len(np.unique(img.reshape(-1, 3), axis=0)) > 50
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        WordRenderer(fonts=latin, background_dir=tmp_path / "empty")


def test_contrasting_color_meets_the_ratio():
    rng = np.random.default_rng(0)
    for bg in ([0, 0, 0], [255, 255, 255], [128, 128, 128], [200, 30, 40]):
        color = contrasting_color(rng, np.array(bg), 3.0)
        assert contrast_ratio(color, np.array(bg)) >= 3.0


def test_empty_text_is_rejected(latin):
    with pytest.raises(ValueError, match="empty"):
        WordRenderer(fonts=latin).render("  ")


def test_cjk_rendering(cjk, latin):
    r = WordRenderer(seed=1, fonts=latin + cjk, words=WordConfig(lang="zh", vocab_size=3000))
    image, text = r.sample(0)
    assert text and all(0x4E00 <= ord(c) <= 0x9FFF for c in text)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    # The font chosen for Chinese text must come from the CJK fonts.
    assert fonts_for(text, latin + cjk) == [f for f in cjk if covers(f, text)]
    glyph = load_font(cjk[0], 32).getmask("中")
    assert glyph.getbbox() is not None


def test_imageops_keep_uint8_and_expand_geometry():
    img = np.full((20, 60, 3), 255, np.uint8)
    img[5:15, 10:50] = 0
    rng = np.random.default_rng(0)
    rotated = imageops.rotate(img, 30)
    assert rotated.shape[0] > 20 and rotated.dtype == np.uint8
    curved = imageops.sine_warp(img, 4.0, 1.0, 0.0)
    assert curved.shape == (28, 60, 3)
    for out in (
        imageops.perspective(img, 0.3, rng),
        imageops.jpeg(img, 30),
        imageops.motion_blur(img, 5, 45),
    ):
        assert out.dtype == np.uint8 and out.ndim == 3


def test_render_to_lmdb_is_independent_of_worker_count(latin, tmp_path):
    lmdb = pytest.importorskip("lmdb")
    from ocrkit.data.render.export import iter_encoded, render_to_lmdb

    kwargs = dict(seed=3, words=WordConfig(vocab_size=2000), fonts=latin, config=PLAIN)
    n0 = render_to_lmdb(tmp_path / "w0", 12, num_workers=0, **kwargs)
    n2 = render_to_lmdb(tmp_path / "w2", 12, num_workers=2, **kwargs)
    assert n0 == n2 == 12

    def read(path):
        env = lmdb.open(str(path), readonly=True, lock=False)
        with env.begin() as txn:
            rows = [(txn.get(b"image-%09d" % i), txn.get(b"label-%09d" % i)) for i in range(1, 13)]
            count = txn.get(b"num-samples")
        env.close()
        return count, rows

    count, rows = read(tmp_path / "w0")
    assert count == b"12" and read(tmp_path / "w2") == (count, rows)
    renderer = WordRenderer(**kwargs)
    first = next(iter_encoded(renderer, [0]))
    assert rows[0] == (first[0], first[1].encode())


def test_cli_render_writes_lmdb_and_reports_speed(tmp_path, capsys):
    from ocrkit.cli import main

    out = tmp_path / "synth"
    args = ["data", "render", "--out", str(out), "--num", "5", "--no-effects", "--no-system-fonts"]
    assert main(args) == 0
    assert "wrote 5 images" in capsys.readouterr().out and (out / "data.mdb").is_file()
    assert main(args) == 1  # exists without --overwrite: a one-line error
    assert "--overwrite" in capsys.readouterr().err
