"""Every model through every command: `zoo info` (table and --json), one short `zoo separate -m`, `zoo export
--init` in every format and `zoo separate --artifact` of each file, run as a user runs them (the CLI, in process).

Which models: every entry `zoo list` shows, the built-in registry's and those of the example third-party plugin
(examples/third-party-plugin, made importable with its entry point for this module; tests/test_plugins.py
installs it with pip). They are read when the tests are collected, so a model or an architecture that a plugin
adds later is in the matrix without editing this file, and fails it where a command does not work for it.

Each cell ends in a checked result, or in the one-line refusal that the model's architecture or block declares
(``unsupported`` of `zoo_core.architectures.Architecture` / `zoo_core.blocks.BlockType`: today the recurrent
blocks for AOTInductor, because torch.export fixes the length of their GRU); the matrix checks that line. A
failure nobody declared fails the matrix.

The rule that keeps it affordable on CI's two cores:

- every entry: `zoo info` and `zoo info --json`, and one short separation with `-m` (half a second of the real
  clip, every stem the model can give, accompaniment = mixture - vocals included), compared with the unmodified
  network applied once to the whole input (the definition of separating an input shorter than one segment);
  this runs every network at its full size, the MDX23C models' 112M parameters included (entries whose network
  and outputs are identical, differing only in weights, separate once);
- the export chain (`zoo export --init` in every format, then `zoo separate --artifact` of each file against
  the same definition) once per family: entries with one architecture, block and framing run the same code and
  differ only in sizes (blocks, levels, channels, bins, STFT, stems), so the smallest stands for the family;
  `test_family_members_are_their_representatives_network_at_another_size` checks that each skipped entry is
  built from exactly its representative's module classes (the export code does not depend on sizes; every
  network runs at its full size in the separation above);
- AOTInductor, whose compile takes about a minute: every exported model goes through torch.export exactly as
  `zoo export --format aoti` does (the step that fails when a network cannot be exported: NNPACK in v3, a GRU's
  fixed length), and the fewest models whose graphs hold every operator of all of them are compiled and
  separate with their package (Inductor lowers operators, whichever architecture arranges them; compiling per
  architecture cost CI minutes); the others use no operator that Inductor has not lowered for a compiled model,
  and every traced image has the hosts' layout. What this leaves unchecked: a compile failure that only another
  model's arrangement of already-compiled operators would cause;
- the exports' self-checks run on the shortest inputs (one and two blocks of frames; the CLI adds longer ones),
  and the AOTInductor compiles share one cache folder of this module.

Measured (one thread, this 2-core machine, otherwise lightly loaded): see the report of the change; the figure
per test is printed by ``pytest --durations=0 tests/test_every_model.py``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner

import zoo_core
from zoo_core.cli import main
from zoo_core.cli.export import SUFFIXES
from zoo_core.export.support import unsupported_reason
from zoo_core.registry import reset_catalogue

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = ROOT / "examples" / "third-party-plugin"
SEED = 0
FORMATS = sorted(SUFFIXES)  # every format `zoo export --format` writes
# a separation through an exported file against the unmodified network, of the output's peak: float32 rounding of
# the deepest networks with initialised parameters (MDX23C: 7.6e-5 from float64) stays far below, a wrong or
# missing layer far above
ARTIFACT_TOLERANCE = 1e-3
EAGER_TOLERANCE = 1e-4  # `zoo separate -m` (the optimised network) against the unmodified one, of the peak


def every_stem(stems) -> list[str]:
    """What separation can give (the issue's definition): the model's stems, and accompaniment = mixture - vocals
    for every model with a vocals stem."""
    return [*stems, "accompaniment"] if "vocals" in stems else list(stems)


def file_stems(stems) -> list[str]:
    """What an exported file gives: the model's stems, and the accompaniment a vocals-only model computes inside."""
    return [*stems, "accompaniment"] if list(stems) == ["vocals"] else list(stems)


# -- the example plugin, importable with its entry point ----------------------------------------------------


@contextlib.contextmanager
def example_plugin_on_path(site: Path) -> Iterator[None]:
    """examples/third-party-plugin on ``sys.path`` with the dist-info pip would write for it (its name, version
    and entry points, read from its pyproject.toml), for as long as the block runs."""
    project = tomllib.loads((EXAMPLE_PLUGIN / "pyproject.toml").read_text())["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    points = "".join(f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items())
                     for group, eps in project["entry-points"].items())
    (info / "entry_points.txt").write_text(points)
    added = [str(EXAMPLE_PLUGIN), str(site)]
    sys.path[:0] = added
    reset_catalogue()
    try:
        yield
    finally:
        for path in added:
            sys.path.remove(path)
        reset_catalogue()


def _collect() -> dict[str, zoo_core.ModelEntry]:
    with tempfile.TemporaryDirectory() as site, example_plugin_on_path(Path(site)):
        return {name: zoo_core.get_entry(name) for name in zoo_core.list_models()}


ENTRIES = _collect()
MODELS = sorted(ENTRIES)


def family(entry) -> tuple:
    """The code an entry's network runs: architecture, block and framing. Entries of one family differ only in
    sizes (blocks, levels, channels, bins, STFT, stems), which no export format treats differently."""
    return entry.architecture_name, entry.block, entry.representation, entry.estimation


def _parameters(name: str) -> int:
    return ENTRIES[name].parameters if ENTRIES[name].parameters is not None else 0


FAMILIES: dict[tuple, list[str]] = {}
for _name in MODELS:
    FAMILIES.setdefault(family(ENTRIES[_name]), []).append(_name)
# the smallest member of each family stands for it (fewest recorded parameters, then the name)
FAMILY_OF = {name: min(members, key=lambda n: (_parameters(n), n)) for members in FAMILIES.values() for name in members}
EXPORTED = sorted(set(FAMILY_OF.values()))


def _cells() -> list:
    return [pytest.param(name, fmt, id=f"{name}-{fmt}") for name in EXPORTED for fmt in FORMATS]


# -- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _with_example_plugin(tmp_path_factory):
    with example_plugin_on_path(tmp_path_factory.mktemp("site")):
        yield


@pytest.fixture(scope="module", autouse=True)
def _one_inductor_cache(tmp_path_factory):
    """One AOTInductor cache for this module's compiles (kernels and headers they share), nobody else's."""
    saved = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("inductor"))
    yield
    if saved is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    else:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = saved


@pytest.fixture(autouse=True)
def _short_export_checks(monkeypatch):
    """The exports' self-checks on the shortest inputs: the same checks, less arithmetic."""
    from zoo_core.export import aoti, onnx, torchscript

    def lengths(model):
        return [model.n_fft // 2 + 1, 3 * model.hop_length + 7]

    def frames(model):
        return [model.time_factor, 2 * model.time_factor]

    monkeypatch.setattr(torchscript, "default_check_lengths", lengths)
    monkeypatch.setattr(aoti, "default_check_frames", frames)
    monkeypatch.setattr(onnx, "default_check_frames", frames)


@pytest.fixture(scope="module")
def clip_wav(clip_path, tmp_path_factory) -> Path:
    """Half a second of the real clip's mixture, with singing (from 4.5 s), as a float WAV."""
    from zoo_core.audio import read_audio

    mixture, rate = read_audio(clip_path)
    path = tmp_path_factory.mktemp("clip") / "falcon.wav"
    sf.write(path, mixture[:, 9 * rate // 2 : 5 * rate].T, rate, subtype="FLOAT")
    return path


def seeded(name: str):
    """The model as `zoo export --init` builds it after ``torch.manual_seed(SEED)``."""
    torch.manual_seed(SEED)
    return zoo_core.load(name, init=True).eval()


def expected_stems(name: str, clip_wav: Path) -> dict[str, np.ndarray]:
    """The definition of separating an input shorter than one segment: the unmodified network applied once to
    the whole input, and accompaniment = mixture - vocals; ``{stem: [frames, channels]}``."""
    mixture = sf.read(clip_wav, dtype="float32", always_2d=True)[0]
    model = seeded(name)
    assert mixture.shape[0] < model.training_segment()  # one segment covers it
    with torch.no_grad():
        estimates = model(torch.from_numpy(mixture.T.copy())[None])[0].numpy()
    stems = {stem: estimates[index].T for index, stem in enumerate(model.stems)}
    if "accompaniment" in every_stem(model.stems):
        stems["accompaniment"] = mixture - stems["vocals"]
    return stems


def zoo(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def separate_and_compare(name: str, clip_wav: Path, out: Path, tolerance: float, *how: str) -> None:
    """`zoo separate` with every stem the model can give; each file read back against the definition."""
    stems = every_stem(ENTRIES[name].stems)
    code, stdout, stderr = zoo("separate", str(clip_wav), "-o", str(out), "--stems", ",".join(stems), "--json", *how)
    assert code == 0, stderr
    written = sorted(out.glob("*/falcon/*.wav"))
    assert sorted(p.stem for p in written) == sorted(stems)
    expected = expected_stems(name, clip_wav)
    mixture = sf.read(clip_wav, dtype="float32", always_2d=True)[0]
    peak = max(np.abs(value).max() for value in expected.values())
    for path in written:
        audio = sf.read(path, dtype="float32", always_2d=True)[0]
        assert audio.shape == mixture.shape, path.name
        error = np.abs(audio - expected[path.stem]).max()
        assert error <= tolerance * peak, f"{name} {path.stem}: max difference {error:.2e} (peak {peak:.2e})"


# -- every entry ---------------------------------------------------------------------------------------------


def test_the_matrix_holds_every_listed_model_and_the_example_plugins():
    assert zoo_core.list_models() == MODELS  # what `zoo list` lists
    assert {"plain-tfc-tdf-mdx", "plain-tfc-tdf-small", "tdc-17", "mdx23c-musdb18"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_info(name: str):
    code, stdout, stderr = zoo("info", name, "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    entry = ENTRIES[name]
    assert data["entry"]["name"] == data["summary"]["name"] == name
    parameters = data["architecture"]["parameters"]
    assert data["summary"]["parameters"] == parameters
    if entry.parameters is not None:  # the registry's count, from the reference construction
        assert parameters == entry.parameters
    assert data["summary"]["stems"] == list(entry.stems)
    code, table, stderr = zoo("info", name)
    assert code == 0, stderr
    lines = table.splitlines()
    assert lines[0] == f"{name}  {entry.description}"  # whole, however long (piped output is never cut)
    assert f"  parameters       {parameters:,} trainable" in lines
    assert "…" not in table


def _network_key(name: str) -> tuple:
    """What defines a network and its outputs (not its weights): entries that share it run the same code at the
    same size, so one of them separates for all (mdx23c-vocals and mdx23c-instvoc-hq)."""
    entry = ENTRIES[name]
    return (json.dumps(dict(entry.architecture), sort_keys=True), entry.block,
            json.dumps(dict(entry.block_args), sort_keys=True), entry.stems, entry.stft)


SEPARATED = sorted({_network_key(name): name for name in reversed(MODELS)}.values())


@pytest.mark.parametrize("name", SEPARATED)
def test_separate(name: str, clip_wav: Path, tmp_path: Path, monkeypatch):
    """`zoo separate -m NAME` with seeded parameters in place of weights (most models have none offline)."""
    import zoo_core.loading
    from zoo_core.registry import build_model

    def from_cache(model_name, variant=None):
        torch.manual_seed(SEED)
        return build_model(model_name.partition(":")[0], provenance=zoo_core.WeightsProvenance(name, f"seed{SEED}"))

    monkeypatch.setattr(zoo_core.loading, "_from_cache", from_cache)
    separate_and_compare(name, clip_wav, tmp_path, EAGER_TOLERANCE, "-m", name)


# -- the export chain, once per distinct network --------------------------------------------------------------


@pytest.mark.parametrize("name, fmt", _cells())
def test_export_and_separate_with_the_file(name: str, fmt: str, clip_wav: Path, tmp_path: Path, request):
    entry = ENTRIES[name]
    if fmt == "aoti" and unsupported_reason(entry, fmt) is None:
        plan = request.getfixturevalue("aoti_plan")
        if name not in plan.compiled:  # exported with torch.export in the plan; nothing new for Inductor to lower
            family = plan.compiled_operators(name)
            assert plan.operators[name] <= family, sorted(plan.operators[name] - family)
            return
    path = tmp_path / f"{name}{SUFFIXES[fmt]}"
    torch.manual_seed(SEED)
    code, stdout, stderr = zoo("export", name, "--init", "--format", fmt, "-o", str(path))
    reason = unsupported_reason(entry, fmt)
    if reason is not None:  # declared: one line that says why, and nothing written
        assert code == 1 and stderr.strip().splitlines()[-1] == f"error: {name} cannot be exported with --format {fmt}: {reason}"
        assert list(tmp_path.iterdir()) == []
        return
    assert code == 0, stderr
    assert stdout.startswith(f"wrote {path}: {name}, initialised parameters;") and path.is_file()
    from zoo_core.export.inspect import inspect_artifact

    metadata = inspect_artifact(path).metadata
    assert (metadata["model"], metadata["format"], metadata["weights"]) == (name, fmt, None)
    assert metadata["model_stems"] == list(entry.stems) and metadata["stems"] == file_stems(entry.stems)
    separate_and_compare(name, clip_wav, tmp_path / "separated", ARTIFACT_TOLERANCE, "--artifact", str(path))


def test_family_members_are_their_representatives_network_at_another_size():
    """Every entry whose export chain is skipped builds the network of its family's representative at another
    size: the same architecture, block and framing (by construction), made of exactly the same module classes."""

    def classes(name: str) -> set[str]:
        from zoo_core.registry import build_model

        with torch.device("meta"):  # the modules without the arithmetic of initialising them
            model = build_model(name)
        return {f"{type(m).__module__}.{type(m).__qualname__}" for m in model.modules()}

    for name in MODELS:
        representative = FAMILY_OF[name]
        if representative != name:
            assert classes(name) == classes(representative), (name, representative)
    assert {"mdx23c-vocals", "mdx23c-musdb18", "mdx23c-instvoc-hq"} <= {n for n in MODELS if FAMILY_OF[n] != n}


@dataclasses.dataclass
class AotiPlan:
    """Each model's operators after torch.export (and its architecture), and the models that get compiled."""

    operators: dict[str, set[str]]
    family: dict[str, str]  # model -> architecture
    compiled: list[str]
    contiguous_input: dict[str, bool]  # whether the traced image has the layout the hosts pass

    def compiled_operators(self, name: str) -> set[str]:
        """Every operator Inductor lowered for a compiled model, whatever its architecture."""
        return set().union(*(self.operators[m] for m in self.compiled))


@pytest.fixture(scope="module")
def aoti_plan() -> AotiPlan:
    """torch.export of every exported model's core, as `zoo export --format aoti` does it; then the fewest
    models whose graphs hold every operator of all of them (the one with the most operators first, then the fewest
    parameters) are the ones compiled: Inductor lowers operators, whichever architecture arranges them."""
    from zoo_core.export.aoti import _export_program, mixture_image, optimized_core

    operators, family, contiguous = {}, {}, {}
    for name in EXPORTED:
        if unsupported_reason(ENTRIES[name], "aoti") is not None:
            continue
        model = seeded(name)
        core = optimized_core(model, torch.device("cpu"))
        example = mixture_image(model, 2 * model.time_factor, 2, torch.Generator().manual_seed(SEED))
        program = _export_program(core, example, model.time_factor, name)  # a ZooError naming the model
        operators[name] = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
        family[name] = ENTRIES[name].architecture_name
        image = next(node for node in program.graph.nodes if node.op == "placeholder" and node.name == "image")
        contiguous[name] = image.meta["val"].is_contiguous()
        del model, core, program
    compiled, covered = [], set()
    for name in sorted(operators, key=lambda n: (-len(operators[n]), ENTRIES[n].parameters or 0, n)):
        if operators[name] - covered:
            compiled.append(name)
            covered |= operators[name]
    for name in list(compiled):  # then drop any the others cover (a greedy cover can keep a redundant one)
        if operators[name] <= set().union(*(operators[m] for m in compiled if m != name)):
            compiled.remove(name)
    return AotiPlan(operators, family, compiled, contiguous)


def test_aoti_traces_the_image_layout_the_hosts_pass(aoti_plan: AotiPlan):
    """A compiled package reads its input with the traced example's strides; both hosts pass contiguous images
    (a magnitude model's package traced on a frames-major image returned garbage for them)."""
    assert aoti_plan.contiguous_input and all(aoti_plan.contiguous_input.values()), aoti_plan.contiguous_input


# -- tables readable everywhere --------------------------------------------------------------------------------


LONG = ["plain-tfc-tdf-mdx", "multiplicative-unet/plain-tfc-tdf", "939,396", "plain-tfc-tdf-small", "unet/plain-tfc-tdf",
        "833,540", "tdc-17", "535,924", "4.86"]


def test_list_never_cuts_a_name_or_number_when_piped(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    code, stdout, _ = zoo("list", "plain*", "mdx23c-musdb18", "tdc-17")
    assert code == 0 and "…" not in stdout
    lines = stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[1:5]}
    assert rows["plain-tfc-tdf-mdx"][1:3] == ["multiplicative-unet/plain-tfc-tdf", "939,396"]
    assert rows["mdx23c-musdb18"][1:3] == ["tfc-tdf-v3", "111,994,368"] and rows["mdx23c-musdb18"][-1] == "9.23"
    # the set each SDR was measured on (registry.toml: the paper's Table 1; ZFTurbo's release notes)
    assert lines[5] == "SDR: vocals, dB, on MUSDB18 test (mdx23c-musdb18: MUSDB18-HQ test)"


def test_list_and_info_never_cut_on_a_narrow_terminal(tmp_path):
    """A real terminal 40 columns wide (a pseudo-terminal): every value whole; the terminal wraps long lines."""
    import fcntl
    import pty
    import re
    import struct
    import subprocess
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 40, 0, 0))
    site = tmp_path / "site"
    site.mkdir()
    with example_plugin_on_path(site):
        python_path = os.pathsep.join(sys.path)
    env = {**os.environ, "PYTHONPATH": python_path, "TERM": "xterm", "COLUMNS": "", "LINES": ""}
    env.pop("COLUMNS"), env.pop("LINES")
    outputs = []
    for args in (["list", "plain*", "tdc-17"], ["info", "plain-tfc-tdf-mdx"]):
        process = subprocess.Popen([sys.executable, "-m", "zoo_core.cli", *args], stdout=follower, stderr=subprocess.PIPE,
                                   env=env)
        chunks = []
        while process.poll() is None or _readable(leader):
            if _readable(leader):
                chunks.append(os.read(leader, 65536))
        assert process.returncode == 0, process.stderr.read()
        outputs.append(re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode()).replace("\r\n", "\n"))
    os.close(leader), os.close(follower)
    listing, info = outputs
    assert "…" not in listing + info
    for value in LONG:
        assert re.search(rf"(^|\s){re.escape(value)}(\s|$)", listing, re.M), value
    assert "  parameters       939,396 trainable" in info


def _readable(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0.05)[0])
