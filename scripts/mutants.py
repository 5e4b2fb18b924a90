#!/usr/bin/env python
"""Plant known bugs, one at a time, in a copy of the repository and check that the tests meant to catch each fail.

    .venv/bin/python scripts/mutants.py                 # every mutant; a table; exit 1 if any survives
    .venv/bin/python scripts/mutants.py --list          # the mutants and the tests that must catch them
    .venv/bin/python scripts/mutants.py --only v3-gelu-tanh,chunking-ramp-unflipped --jobs 2 -v

Each mutant replaces one exact source snippet (it must occur exactly once: a snippet that no longer matches is
reported as DRIFT and fails the run, so that code changes cannot silently retire a mutant) in a fresh copy of the
working tree (tracked and untracked, not ignored, files), then runs only its tests there with this interpreter.
The copy's own code is imported: ``PYTHONPATH`` puts the copy and its ``plugins`` folder ahead of the editable
install, and a pre-flight check fails the run unless ``zoo_core`` and every plugin import from the copy. A
baseline run first checks that every listed test passes on the unmutated copy, so a failure under a mutant means
the mutant was caught, not that a test was broken or missing. ``CI=1`` is set: tests that need ``../shared``
(found through ``ZOO_SHARED_DIR``, default the checkout's ``../shared``) fail rather than skip.

Every test named here checks against an independent expected value (the authors' or the reference code's
outputs, museval, a numpy definition, the documented rule or formula); see each test's docstring.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = "tests/test_golden_ismir2020.py::test_imported_model_reproduces_the_authors_output"
GOLDEN_OPTIMIZED = "tests/test_golden_ismir2020.py::test_optimized_model_reproduces_the_authors_output_in_float32"
ROFORMER = "tests/test_roformer_fidelity.py::test_small_configurations_match_the_reference_output"
ROFORMER_OPTIMIZED = "tests/test_roformer_fidelity.py::test_optimized_small_configurations_match_the_reference_output"
MDX23C = "tests/test_mdx23c_fidelity.py::test_the_registry_model_matches_the_reference_output[tfc-tdf-v3-2stem]"
OVERLAP_ADD = "tests/test_overlap_add.py"
COMPLEMENT = "tests/test_overlap_add.py::test_separate_gives_the_blend_and_accompaniment_is_mixture_minus_vocals"
RESUME = "tests/test_catalogue.py::test_resume_rule"
ENSEMBLE_RULES = "tests/test_ensemble.py::test_each_rule_equals_numpy_over_the_members_written_outputs"
RESUME_STARTED = "tests/test_catalogue.py::test_a_started_item_is_redone_even_when_its_outputs_exist"
PLUGIN_MODULES = ("zoo_unet", "zoo_tfc_tdf_v3", "zoo_roformer")


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to the repository root
    find: str  # exact snippet, once in the file
    replace: str
    tests: tuple[str, ...]  # pytest node ids, relative to the root; run in this order with -x
    bug: str


MUTANTS = [
    # ---- the model's own contract
    Mutant("legacy-network-keys", "zoo_core/model.py",
           "state_dict[new + key[len(old):]] = state_dict.pop(key)", "state_dict[new + key] = state_dict.pop(key)",
           ("tests/test_weights_convert.py::test_a_state_dict_saved_by_release_0_1_with_unet_keys_still_loads",),
           "state dicts of releases before 0.2 renamed wrongly"),
    # ---- the paper's U-Nets (ISMIR 2020)
    Mutant("unet-dense-order", "plugins/zoo_unet/layers.py",
           "features = torch.cat((out, features), 1)", "features = torch.cat((features, out), 1)",
           (f"{GOLDEN}[tdc-17]",), "dense block: earlier outputs concatenated oldest first"),
    Mutant("unet-tdf-min-units", "plugins/zoo_unet/layers.py",
           "self.units = max(out_bins // bottleneck_factor, min_units)", "self.units = out_bins // bottleneck_factor",
           ("tests/test_golden_ismir2020.py::test_trainable_parameters_equal_the_authors_construction[tdf-17]",),
           "TDF bottleneck without its minimum width"),
    Mutant("unet-tfc-tdf-residual", "plugins/zoo_unet/tfc_tdf.py",
           "return x + self.tdf(x)", "return self.tdf(x)",
           (f"{GOLDEN}[tfc-tdf-small]",), "TFC-TDF block without the TDF's residual connection"),
    Mutant("unet-rnn-residual", "plugins/zoo_unet/recurrent.py",
           "return x + self.branch(x)", "return self.branch(x)",
           (f"{GOLDEN}[tdc-rnn]",), "recurrent block without its residual connection"),
    Mutant("unet-mask", "zoo_core/model.py",
           "return estimate * image.unsqueeze(1)", "return estimate",
           (f"{GOLDEN}[tfc-tdf-small-mag]",), "masking model returns the mask, not mask x mixture"),
    # ---- TFC-TDF-UNet v3 (MDX23C)
    Mutant("v3-gelu-tanh", "plugins/zoo_tfc_tdf_v3/network.py",
           "return nn.GELU()", 'return nn.GELU(approximate="tanh")',
           (MDX23C,), "tanh-approximated GELU (3e-4 off the reference)"),
    Mutant("v3-import-norm-swap", "plugins/zoo_tfc_tdf_v3/convert.py",
           '("tdf.0.", "tdf.norm1."),\n    ("tdf.2.", "tdf.squeeze."),\n    ("tdf.3.", "tdf.norm2."),',
           '("tdf.0.", "tdf.norm2."),\n    ("tdf.2.", "tdf.squeeze."),\n    ("tdf.3.", "tdf.norm1."),',
           (MDX23C,), "import renames the TDF's two norms the wrong way round (same shapes)"),
    # ---- band-split RoFormers
    Mutant("roformer-rotary-halves", "plugins/zoo_roformer/network.py",
           "pairs = x.unflatten(-1, [x.shape[-1] // 2, 2])",
           "pairs = x.unflatten(-1, [2, x.shape[-1] // 2]).transpose(-1, -2)",
           (f"{ROFORMER}[bs-roformer-small-float32]", f"{ROFORMER}[mel-band-roformer-small-float32]"),
           "rotary embedding pairs features (i, i + d/2) instead of adjacent (2i, 2i+1): 0.25 of peak off"),
    Mutant("roformer-dc-kept", "plugins/zoo_roformer/network.py",
           "keep[0] = 0.0", "keep[0] = 1.0",
           (f"{ROFORMER}[bs-roformer-small-float32]", f"{ROFORMER}[mel-band-roformer-small-float32]"),
           "the estimates keep the DC bin the reference filters out"),
    Mutant("roformer-gate-gain-unfolded", "plugins/zoo_roformer/optimize.py",
           "_gained(qkv, attention.norm), _gained(gates, attention.norm)", "_gained(qkv, attention.norm), gates.weight",
           (f"{ROFORMER_OPTIMIZED}[bs-roformer-small-process]", f"{ROFORMER_OPTIMIZED}[mel-band-roformer-small-onnx]"),
           "the inference rewrite folds the attention norm's gain into q, k, v but not into the gates"),
    Mutant("roformer-complex-rotary-conjugate", "plugins/zoo_roformer/optimize.py",
           "return [cos, sin, torch.complex(cos, sin)[:, None, :]]", "return [cos, sin, torch.complex(cos, -sin)[:, None, :]]",
           (f"{ROFORMER_OPTIMIZED}[bs-roformer-small-process]", f"{ROFORMER_OPTIMIZED}[mel-band-roformer-small-process]"),
           "the in-process rewrite rotates pairs the other way (q and k alike, so only relative signs change)"),
    Mutant("roformer-feedforward-last-block-dropped", "plugins/zoo_roformer/optimize.py",
           "for start in range(0, tokens, self.rows):", "for start in range(0, tokens - self.rows, self.rows):",
           ("tests/test_roformer_fidelity.py::test_released_configurations_match_the_reference_output_on_one_chunk"
            "[bs-roformer-viperx-optimized]",),
           "the blocked feed-forward skips the last, partial block of tokens"),
    # ---- framing
    Mutant("framing-cac-order", "zoo_core/framing.py",
           "torch.view_as_real(spec[:, :, :kept]).permute(0, 1, 4, 2, 3)",
           "torch.view_as_real(spec[:, :, :kept]).permute(0, 4, 1, 2, 3)",
           ("tests/test_framing.py::test_complex_as_channels_order_and_inverse",),
           "CaC channels [Re L, Re R, Im L, Im R] instead of [Re L, Im L, Re R, Im R]"),
    Mutant("framing-window-symmetric", "zoo_core/framing.py",
           'self.register_buffer("window", torch.hann_window(n_fft), persistent=False)',
           'self.register_buffer("window", torch.hann_window(n_fft, periodic=False), persistent=False)',
           ("tests/test_framing.py::test_stft_matches_numpy_reference",), "symmetric instead of periodic Hann"),
    Mutant("framing-istft-centre", "zoo_core/framing.py",
           "start = self.n_fft // 2 if self.center else 0", "start = 0",
           ("tests/test_framing.py::test_istft_inverts_stft[True]",), "inverse STFT ignores the centring pad"),
    # ---- chunking, overlap-add, stems
    Mutant("chunking-ramp-unflipped", "zoo_core/chunking.py",
           "torch.minimum(weights[length - ramp_length :], ramp.flip(0))",
           "torch.minimum(weights[length - ramp_length :], ramp)",
           (OVERLAP_ADD,), "the falling ramp rises"),
    Mutant("chunking-stride", "zoo_core/chunking.py",
           "stride = segment - overlap", "stride = segment - overlap // 2",
           (OVERLAP_ADD,), "segments start every segment - overlap/2"),
    Mutant("engine-unweighted", "zoo_core/separation/engine.py",
           "self.weights[at : at + length] += weights", "self.weights[at : at + length] += 1.0",
           (OVERLAP_ADD,), "streaming engine normalises by the segment count, not the weights"),
    Mutant("stems-complement-sign", "zoo_core/separation/engine.py",
           "mixture - out[\"vocals\"]", "out[\"vocals\"] - mixture",
           (COMPLEMENT,), "accompaniment = vocals - mixture"),
    Mutant("export-complement-sign", "zoo_core/export/artifact.py",
           "mixture.unsqueeze(1) - estimates", "estimates - mixture.unsqueeze(1)",
           (COMPLEMENT,), "the exported module's accompaniment = vocals - mixture"),
    # ---- metrics
    Mutant("metrics-partial-frame", "zoo_core/metrics.py",
           "return (samples - window + hop) // hop", "return (samples + hop - 1) // hop",
           ("tests/test_metrics.py::test_frame_count_follows_museval", "tests/test_metrics.py::test_equals_museval_on_real_audio"),
           "SDR keeps museval's dropped partial last frame"),
    # ---- import renames
    Mutant("import-lightning-cac", "plugins/zoo_unet/convert.py",
           "_CAC_FROM_LIGHTNING = [0, 2, 1, 3]", "_CAC_FROM_LIGHTNING = [0, 1, 2, 3]",
           (f"{GOLDEN}[tfc-tdf-small]",), "Lightning checkpoints' CaC channels not reordered"),
    # ---- the catalogue manifest's resume decision
    Mutant("manifest-status", "zoo_core/manifest.py",
           'if entry["status"] != DONE:', 'if entry["status"] == FAILED:',
           (RESUME, RESUME_STARTED), "a started (killed) item counts as done"),
    Mutant("manifest-model-key", "zoo_core/manifest.py",
           'if entry.get("model") == model:', "if True:",
           (RESUME,), "records of another model decide the resume"),
    # ---- optimize()
    Mutant("optimize-bn-eps", "plugins/zoo_unet/optimize.py",
           "torch.rsqrt(norm.running_var.double() + norm.eps)", "torch.rsqrt(norm.running_var.double())",
           (f"{GOLDEN_OPTIMIZED}[tdc-17]", f"{GOLDEN_OPTIMIZED}[tfc-tdf-small]"),
           "BatchNorm folded without its epsilon"),
    # ---- ensembles and test-time augmentation
    Mutant("ensemble-max-by-value", "zoo_core/ensemble/rules.py",
           "magnitude = np.abs(stack)", "magnitude = stack.real",
           (f"{ENSEMBLE_RULES}[max-spec-members3-None]",), "max-spec picks by the real part, not the magnitude"),
    Mutant("ensemble-weights-unnormalised", "zoo_core/ensemble/rules.py",
           "return (stack * w).sum(axis=0) / w.sum(axis=0)", "return (stack * w).sum(axis=0)",
           (f"{ENSEMBLE_RULES}[avg-wave-members0-weights0]",), "weighted average not divided by the weights' sum"),
    Mutant("tta-polarity-not-undone", "zoo_core/ensemble/tta.py",
           "total = total - self.inner(-mixture).float()", "total = total + self.inner(-mixture).float()",
           ("tests/test_ensemble.py::test_tta_equals_the_mean_of_the_unaugmented_separations",),
           "the polarity-inverted separation is not inverted back"),
    # ---- streaming
    Mutant("stream-latency-batch", "zoo_core/stream.py",
           "(options.batch_size - 1) * (segment - overlap) - 1", "(options.batch_size - 1) * segment - 1",
           ("tests/test_stream.py::test_batched_segments_add_their_strides_to_the_latency",),
           "batched stream latency counts whole segments instead of strides"),
]


@dataclass
class Outcome:
    mutant: Mutant
    status: str  # caught, SURVIVED, DRIFT, ERROR
    seconds: float
    detail: str = ""


# ------------------------------------------------------------------------------------------- the copy


def working_tree_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    return [name for name in listed if name and (ROOT / name).is_file()]


def make_copy(files: list[str]) -> Path:
    copy = Path(tempfile.mkdtemp(prefix="svs-zoo-mutant-"))
    for name in files:
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return copy


def environment(copy: Path, jobs: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(copy), str(copy / "plugins"), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["CI"] = "1"
    env.setdefault("ZOO_SHARED_DIR", str(ROOT.parent / "shared"))  # the copy has no ../shared of its own
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    return env


def check_imports(copy: Path, env: dict[str, str]) -> Optional[str]:
    """None if zoo_core and every plugin module import from ``copy``; else what imported from where."""
    probe = "import importlib, sys\nfor name in sys.argv[1:]:\n    print(importlib.import_module(name).__file__)"
    result = subprocess.run([sys.executable, "-c", probe, "zoo_core", *PLUGIN_MODULES], cwd=copy, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        return result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "import failed"
    outside = [path for path in result.stdout.split() if not Path(path).resolve().is_relative_to(copy.resolve())]
    return f"imported outside the copy: {', '.join(outside)}" if outside else None


def run_tests(copy: Path, env: dict[str, str], tests: tuple[str, ...], timeout: float) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)


def tail(result: subprocess.CompletedProcess, lines: int = 15) -> str:
    return "\n".join((result.stdout + result.stderr).strip().splitlines()[-lines:])


def failures(result: subprocess.CompletedProcess) -> str:
    """pytest's short summary lines (``FAILED node - message``, ``ERROR ...``): what caught the mutant."""
    found = [line for line in result.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return "\n".join(found) or tail(result, 5)


# ------------------------------------------------------------------------------------------- mutants


def drift(mutant: Mutant) -> Optional[str]:
    """Why the mutant cannot be applied to today's code, or None."""
    path = ROOT / mutant.file
    if not path.is_file():
        return f"{mutant.file} does not exist"
    count = path.read_text(encoding="utf-8").count(mutant.find)
    if count != 1:
        return f"snippet found {count} times in {mutant.file} (must be once): {mutant.find!r}"
    if mutant.find == mutant.replace:
        return "replacement equals the snippet"
    return None


def run_mutant(mutant: Mutant, files: list[str], jobs: int, timeout: float, keep: bool) -> Outcome:
    start = time.perf_counter()
    copy = make_copy(files)
    try:
        path = copy / mutant.file
        source = path.read_text(encoding="utf-8")
        path.write_text(source.replace(mutant.find, mutant.replace, 1), encoding="utf-8")
        try:
            result = run_tests(copy, environment(copy, jobs), mutant.tests, timeout)
        except subprocess.TimeoutExpired:
            return Outcome(mutant, "ERROR", time.perf_counter() - start, f"timed out after {timeout:.0f} s")
        seconds = time.perf_counter() - start
        # 1: a test failed; 2: collection failed (e.g. the mutant broke an import). Anything else (0 passed,
        # 4 no such test, 5 nothing collected) is not a catch.
        if result.returncode in (1, 2):
            return Outcome(mutant, "caught", seconds, failures(result))
        if result.returncode == 0:
            return Outcome(mutant, "SURVIVED", seconds, tail(result, 3))
        return Outcome(mutant, "ERROR", seconds, f"pytest exit {result.returncode}: {tail(result)}")
    finally:
        if keep:
            print(f"kept {mutant.name}'s copy: {copy}", file=sys.stderr)
        else:
            shutil.rmtree(copy, ignore_errors=True)


def print_table(outcomes: list[Outcome]) -> None:
    rows = [("mutant", "file", "result", "seconds", "tests")]
    for o in outcomes:
        tests = ", ".join(t.removeprefix("tests/") for t in o.mutant.tests)
        rows.append((o.mutant.name, o.mutant.file, o.status, f"{o.seconds:.1f}", tests))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for index, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), row[3].rjust(widths[3])]
        print("  ".join([*cells, row[4]]))
        if index == 0:
            print("  ".join("-" * width for width in [*widths, len(row[4])]))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Plant known bugs in a copy of the repository; every one must be caught.")
    parser.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    parser.add_argument("--only", help="comma-separated mutant names")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at the same time (default 1)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant's tests (default 900)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the check that the tests pass unmutated")
    parser.add_argument("--keep", action="store_true", help="keep each mutant's copy (its path is printed)")
    parser.add_argument("-v", "--verbose", action="store_true", help="also print the test failure that caught each")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    mutants = MUTANTS
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {m.name for m in MUTANTS})
        if unknown:
            parser.error(f"unknown mutant(s): {', '.join(unknown)} (see --list)")
        mutants = [m for m in MUTANTS if m.name in wanted]
    if args.list:
        for m in mutants:
            print(f"{m.name}: {m.bug}\n    {m.file}\n    " + "\n    ".join(m.tests))
        return 0

    started = time.perf_counter()
    files = working_tree_files()
    outcomes: list[Outcome] = []
    runnable = []
    for m in mutants:
        reason = drift(m)
        if reason:
            outcomes.append(Outcome(m, "DRIFT", 0.0, reason))
        else:
            runnable.append(m)

    clean = make_copy(files)
    try:
        env = environment(clean, 1)
        problem = check_imports(clean, env)
        if problem:
            print(f"error: the copy's tests would not test the copy's code: {problem}", file=sys.stderr)
            return 2
        if not args.no_baseline and runnable:
            tests = tuple(dict.fromkeys(t for m in runnable for t in m.tests))
            print(f"baseline: {len(tests)} tests on the unmutated copy ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            baseline = run_tests(clean, env, tests, args.timeout * 2)
            if baseline.returncode != 0:
                print(f"error: the tests fail without any mutant (pytest exit {baseline.returncode}):\n{tail(baseline, 30)}",
                      file=sys.stderr)
                return 2
            print(f"baseline: passed in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(clean, ignore_errors=True)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_mutant, m, files, args.jobs, args.timeout, args.keep) for m in runnable]
        for future in as_completed(futures):
            outcome = future.result()
            print(f"{outcome.mutant.name}: {outcome.status} ({outcome.seconds:.0f} s)", file=sys.stderr, flush=True)
            outcomes.append(outcome)

    order = {m.name: i for i, m in enumerate(mutants)}
    outcomes.sort(key=lambda o: order[o.mutant.name])
    print_table(outcomes)
    bad = [o for o in outcomes if o.status != "caught"]
    if args.verbose:
        for o in outcomes:
            if o.status == "caught":
                print(f"\n{o.mutant.name} ({o.mutant.bug}):\n{o.detail}")
    for o in bad:
        print(f"\n{o.mutant.name} {o.status}: {o.mutant.bug}\n{o.detail}")
    caught = len(outcomes) - len(bad)
    print(f"\n{caught} of {len(outcomes)} mutants caught, {len(bad)} not; {time.perf_counter() - started:.0f} s in all")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
