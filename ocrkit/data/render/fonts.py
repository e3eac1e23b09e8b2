"""Font discovery and glyph coverage for the word renderer.

Fonts come from three places, all offline:

* the DejaVu family that matplotlib ships (Sans, Serif, Sans Mono in regular/bold/oblique), so
  Latin rendering always works;
* system fonts under ``/usr/share/fonts`` (Debian ``fonts-*`` packages) and any ``font_dirs``;
* a CJK font shipped by a Python package: ``pip install noto-cjk-sans-otc`` (the ``cjk`` extra).

Coverage is read from the font's ``cmap`` table with fontTools (a matplotlib dependency): a word is
only ever drawn in a font that maps every one of its characters, so no tofu boxes reach a label.
"""

from __future__ import annotations

import functools
import importlib
import logging
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fontTools.ttLib import TTCollection, TTFont
from PIL import ImageFont

logger = logging.getLogger(__name__)

FONT_SUFFIXES = (".ttf", ".otf", ".ttc", ".otc")
SYSTEM_FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
# Python packages that ship a CJK font and expose its path as a module attribute.
CJK_FONT_PACKAGES = (("noto_cjk_sans_otc", "FONT_PATH"),)
CJK_INSTALL_HINT = (
    "no CJK font found: install one with 'pip install noto-cjk-sans-otc' (or 'pip install "
    "ocrkit[cjk]'), or 'apt-get install fonts-wqy-microhei', or pass --font-dir with a CJK font"
)
# A font belongs to a script when it maps every character of that script's probe string.
SCRIPT_PROBES = {
    "latin": string.ascii_letters + string.digits + string.punctuation,
    "cjk": "的一是了我不人在他有这中大来上国个到说们为子和你地出道也时年",
}
# Regional faces of a CJK collection draw some Han characters differently; keep the simplified
# Chinese face (SC) when a collection has one.
_REGIONAL_SUFFIXES = (" JP", " KR", " TC", " HK")


class MissingFontError(FileNotFoundError):
    """No available font can draw the requested text (the message says what to install)."""


@dataclass(frozen=True, order=True)
class FontSpec:
    """One font face: a file (and face ``index`` inside a collection) and what it can draw."""

    name: str
    path: str
    style: str = "regular"
    scripts: tuple[str, ...] = ()
    index: int = 0


def _style(subfamily: str) -> str:
    sub = subfamily.lower()
    bold = "bold" in sub
    italic = "italic" in sub or "oblique" in sub
    return {(False, False): "regular", (True, False): "bold", (False, True): "italic"}.get(
        (bold, italic), "bold-italic"
    )


def _faces(path: Path) -> list[TTFont]:
    if path.suffix.lower() in (".ttc", ".otc"):
        return list(TTCollection(str(path), lazy=True).fonts)
    return [TTFont(str(path), lazy=True)]


def _read_font_file(path: Path) -> list[FontSpec]:
    """Every usable face of one font file with the scripts it covers (empty on a broken file)."""
    try:
        faces = _faces(path)
    except Exception as exc:  # a broken or unsupported file is skipped, never fatal
        logger.debug("skipping font %s: %s", path, exc)
        return []
    names = [face["name"].getDebugName(4) or path.stem for face in faces]
    specs = []
    for index, (face, name) in enumerate(zip(faces, names)):
        if name.endswith(_REGIONAL_SUFFIXES) and name.rsplit(" ", 1)[0] + " SC" in names:
            continue
        cmap = frozenset(face.getBestCmap() or {})
        _CMAPS[(str(path), index)] = cmap
        scripts = tuple(
            s for s, probe in SCRIPT_PROBES.items() if all(ord(c) in cmap for c in probe)
        )
        style = _style(face["name"].getDebugName(2) or "")
        specs.append(FontSpec(name, str(path), style, scripts, index))
    return specs


_CMAPS: dict[tuple[str, int], frozenset[int]] = {}


def _matplotlib_font_files() -> list[Path]:
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    # Only DejaVu: the STIX/cm fonts are math fonts and LastResort maps everything to placeholders.
    return sorted(p for p in ttf.glob("DejaVu*.ttf") if "Display" not in p.stem)


def _package_font_files() -> list[Path]:
    found = []
    for module_name, attribute in CJK_FONT_PACKAGES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        path = Path(str(getattr(module, attribute)))
        if path.is_file():
            found.append(path)
    return found


def _dir_font_files(directories: Iterable[Path]) -> list[Path]:
    files = []
    for directory in directories:
        if directory.is_dir():
            files += [p for p in directory.rglob("*") if p.suffix.lower() in FONT_SUFFIXES]
    return sorted(files)


@functools.lru_cache(maxsize=16)
def _discover(font_dirs: tuple[str, ...], system: bool) -> tuple[FontSpec, ...]:
    files = _matplotlib_font_files() + _package_font_files()
    files += _dir_font_files([Path(d) for d in font_dirs])
    if system:
        files += _dir_font_files(SYSTEM_FONT_DIRS)
    by_face: dict[tuple[str, str], FontSpec] = {}
    for path in files:
        for spec in _read_font_file(path):
            if spec.scripts:  # first file wins for a (name, style) seen twice
                by_face.setdefault((spec.name, spec.style), spec)
    return tuple(sorted(by_face.values()))


def discover_fonts(font_dirs: Sequence[str | Path] = (), system: bool = True) -> list[FontSpec]:
    """All fonts that cover at least one known script, sorted (deterministic across runs).

    ``font_dirs`` are searched recursively in addition to matplotlib's DejaVu, the CJK font
    packages and (when ``system``) ``/usr/share/fonts``.
    """
    for d in font_dirs:
        if not Path(d).is_dir():
            raise FileNotFoundError(f"font directory {str(d)!r} does not exist")
    return list(_discover(tuple(str(d) for d in font_dirs), system))


def list_fonts(
    script: str = "latin", font_dirs: Sequence[str | Path] = (), system: bool = True
) -> list[FontSpec]:
    """Fonts that can draw ``script`` (``"latin"`` or ``"cjk"``); may be empty for ``"cjk"``."""
    if script not in SCRIPT_PROBES:
        raise ValueError(f"unknown script {script!r}; expected one of {sorted(SCRIPT_PROBES)}")
    return [f for f in discover_fonts(font_dirs, system) if script in f.scripts]


def require_fonts(
    script: str = "latin", font_dirs: Sequence[str | Path] = (), system: bool = True
) -> list[FontSpec]:
    """Like :func:`list_fonts` but raises :class:`MissingFontError` with an install hint if empty."""
    fonts = list_fonts(script, font_dirs, system)
    if not fonts:
        hint = CJK_INSTALL_HINT if script == "cjk" else f"no font covers script {script!r}"
        raise MissingFontError(hint)
    return fonts


def codepoints(font: FontSpec) -> frozenset[int]:
    """The code points ``font`` maps to a glyph (read once per face, then cached)."""
    key = (font.path, font.index)
    if key not in _CMAPS:
        _CMAPS[key] = frozenset(_faces(Path(font.path))[font.index].getBestCmap() or {})
    return _CMAPS[key]


def covers(font: FontSpec, text: str) -> bool:
    """True when ``font`` has a glyph for every non-whitespace character of ``text``."""
    cmap = codepoints(font)
    return all(ord(c) in cmap for c in text if not c.isspace())


def fonts_for(text: str, fonts: Sequence[FontSpec]) -> list[FontSpec]:
    """The fonts of ``fonts`` that can draw ``text``; raises :class:`MissingFontError` if none."""
    usable = [f for f in fonts if covers(f, text)]
    if not usable:
        missing = sorted(
            {c for c in text if not c.isspace() and not any(covers(f, c) for f in fonts)}
        )
        is_cjk = any(0x2E80 <= ord(c) <= 0x9FFF or 0xF900 <= ord(c) <= 0xFAFF for c in missing)
        hint = CJK_INSTALL_HINT if is_cjk else "pass a font that has them (--font-dir)"
        raise MissingFontError(f"no font has glyphs for {''.join(missing)!r} in {text!r}; {hint}")
    return usable


@functools.lru_cache(maxsize=512)
def load_font(font: FontSpec, size: int) -> ImageFont.FreeTypeFont:
    """A PIL font object for ``font`` at ``size`` pixels (cached per process)."""
    return ImageFont.truetype(font.path, size=size, index=font.index)
