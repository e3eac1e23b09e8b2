"""The README's code blocks run as written: every Python block, and every shell command that is
cheap here (long runs on ../shared/data are run only when the data is present and
OCRKIT_README_FULL=1; the install line is checked, not run)."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def commands(block: str) -> list[str]:
    """Shell commands of a block, continuation lines joined."""
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip()]


@pytest.fixture
def clone_dir(tmp_path) -> Path:
    """A working folder that looks like the root of a fresh clone for the snippets: the examples
    (copied), ``../shared/data`` (a link, when the data is here) and outputs/ written there; the
    package is imported from this checkout."""
    from ocrkit.utils.paths import shared_data_dir

    clone = tmp_path / "ocrkit"
    shutil.copytree(ROOT / "examples", clone / "examples")
    data = shared_data_dir()
    if data is not None:
        (tmp_path / "shared").mkdir()
        (tmp_path / "shared" / "data").symlink_to(data.resolve())
    return clone


def run(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``argv`` in its own process group (a timeout ends the commands a shell started too)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OCRKIT_CACHE": str(cwd / ".cache")}
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)


def test_every_block_has_a_language_and_the_python_blocks_exist():
    fences = FENCE.findall(README.read_text())
    assert fences and all(lang for lang, _ in fences), "tag every code block (```text for output)"
    assert len(blocks("python")) >= 3


def test_python_blocks_run_and_read_the_example_words(clone_dir):
    """Each block in its own interpreter, in order; known answers: the texts they print are the
    example words' labels, and the evaluation reads all three."""
    printed = []
    for index, code in enumerate(blocks("python")):
        out = run([sys.executable, "-c", code], clone_dir)
        assert out.returncode == 0, f"README python block {index}:\n{code}\n{out.stderr[-3000:]}"
        assert out.stdout.strip(), f"README python block {index} prints nothing"
        printed.append(out.stdout)
    for word in ("Hello", "ocrkit", "World"):
        assert word in "".join(printed)
    assert re.search(r"examples\s+3\s+100\.00", printed[-1])


def needs_shared_data(command: str) -> bool:
    return "../shared/data" in command


def test_bash_commands_run(clone_dir):
    """Every ``ocrkit`` command of the README's bash blocks, in order, as a user types it."""
    ran = 0
    shim = f'ocrkit() {{ {shlex.quote(sys.executable)} -m ocrkit "$@"; }}\nset -eo pipefail\n'
    full = os.environ.get("OCRKIT_README_FULL") == "1"
    for block in blocks("bash"):
        for command in commands(block):
            if not command.startswith("ocrkit "):
                continue
            if needs_shared_data(command) and not (full and (clone_dir / "../shared").is_dir()):
                continue  # minutes of CPU: only on request, and only with the data
            out = run(["bash", "-c", shim + command], clone_dir, timeout=3600)
            assert out.returncode == 0, f"{command}\n{out.stderr[-3000:]}"
            ran += 1
    assert ran >= 2


def test_install_line_names_real_files_and_extras():
    install = [c for b in blocks("bash") for c in commands(b) if "pip install" in c]
    assert install
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = set(cfg["options.extras_require"])
    for command in install:
        words = shlex.split(command.replace("&&", " "))
        for flag, value in zip(words, words[1:]):
            if flag == "-r":
                assert (ROOT / value).is_file(), value
            if flag == "-e":
                wanted = re.fullmatch(r"\.\[(.*)\]", value)
                assert wanted and set(wanted.group(1).split(",")) <= extras, value


def test_make_targets_of_the_quick_start_exist():
    if shutil.which("make") is None:
        pytest.skip("no make")
    quick = re.findall(r"^    make (\w+)", README.read_text(), re.M)
    assert quick == ["demo", "test"]
    out = subprocess.run(["make", "-n", *quick], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
