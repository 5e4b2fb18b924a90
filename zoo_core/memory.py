"""How much memory a segment needs, measured on the model itself, and whether this machine has it.

A separation's memory is what one model call holds at its peak: the activations of a batch of segments (the
weights are loaded already; the engine's own buffers are a few percent of one call). A segment given in samples
instead of seconds (``--segment 64512``) asks for terabytes, so every command that separates checks the segment
before any work (`check_segment_memory`) and refuses, in one line, what does not fit.

The peak is measured, not tabulated, so that it holds for any architecture a plugin registers: `measure_peak`
runs two short forwards (8 and 16 frames, or multiples of the network's time factor) and counts the bytes of
the tensors alive at once, call by call (`_LiveBytes`). Every activation of these networks is proportional to
the frame count, so the two points give a line, extrapolated to the padded length the model will see. Not
counted: what one call frees before it returns (a kernel's scratch memory, oneDNN's reorders, NNPACK's and
cuDNN's workspaces) and the allocator's own overhead. ``benchmarks/segment_memory.py`` compares the line with the
peak RSS of real forwards: the line matches the count at the real length within 0.5%, and real peaks were
1.16-1.75x the count (two built-in families' models; 1.5 to 12 s), so the estimate is the count times `MARGIN`.

The limit is the memory available now: on the CPU what the kernel can hand out without swapping (psutil), less
when the process's cgroup (a container's memory limit) allows less; on a GPU its free memory. ``ZOO_MAX_MEMORY``
(e.g. ``8G``, ``500MB``, ``16GiB``) replaces it.
"""

from __future__ import annotations

import math
import os
import re
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .errors import ZooError

ENVIRONMENT = "ZOO_MAX_MEMORY"
MARGIN = 2.0  # real peak / counted peak, measured 1.16-1.75 (module doc)
SAMPLES_HINT_SECONDS = 600.0  # a longer segment is more likely a count of samples than a number of seconds
_CALIBRATION_FRAMES = 8  # the shorter calibration input has at least this many frames, the longer twice as many
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True)
class PeakModel:
    """Peak bytes of one model call: ``fixed + per_sample * batch * padded_samples``."""

    fixed: float
    per_sample: float

    def bytes(self, padded_samples: int, batch: int = 1) -> float:
        return self.fixed + self.per_sample * batch * padded_samples


class _LiveBytes:
    """Counts the bytes of the tensor storages that Python code holds, call by call (every torch function and
    tensor method a forward calls, through a `torch.overrides.TorchFunctionMode`), and their peak. A storage is
    freed when the last tensor viewing it is (a weakref callback); in-place results and views add nothing."""

    def __init__(self):
        from torch.overrides import TorchFunctionMode

        counter = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                counter.track(out)
                return out

        self.mode = Mode()
        self.live: dict[int, list[int]] = {}  # storage -> [bytes, tensors viewing it]
        self.current = 0
        self.peak = 0

    def track(self, out) -> None:
        from torch.utils._pytree import tree_flatten

        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage._cdata  # the storage itself: views share it, a new tensor has its own
            if key in self.live:
                self.live[key][1] += 1
            else:
                self.live[key] = [storage.nbytes(), 1]
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
            weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if not entry[1]:
            del self.live[key]
            self.current -= entry[0]


def padded_samples(model, samples: int) -> int:
    """The length the network sees for a segment of ``samples`` (the model pads to a frame count it accepts)."""
    padding = getattr(model, "padding", None)
    return samples + sum(padding(samples)) if callable(padding) else samples


def measure_peak(model) -> Optional[PeakModel]:
    """The peak-memory line of one call of ``model`` (on its own device and dtype), from two short forwards;
    None for a model this cannot measure (an exported file: TorchScript, compiled code and ONNX Runtime
    allocate out of Python's sight)."""
    settings = getattr(model, "settings", None)
    time_factor = getattr(model, "time_factor", None)
    if settings is None or not isinstance(time_factor, int) or not hasattr(model, "padding"):
        return None
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    frames = math.ceil(_CALIBRATION_FRAMES / time_factor) * time_factor
    points = []
    for count in (frames, 2 * frames):
        samples = settings.samples(count)
        counter = _LiveBytes()
        mixture = torch.zeros(1, 2, samples, device=device)
        with torch.inference_mode(), counter.mode:
            estimate = model(mixture)
            del estimate
        points.append((padded_samples(model, samples), counter.peak))
    (x1, y1), (x2, y2) = points
    per_sample = max(0.0, (y2 - y1) / (x2 - x1))
    return PeakModel(max(0.0, y1 - per_sample * x1), per_sample)


def parse_size(text: str, what: str = ENVIRONMENT) -> int:
    """``"8G"``, ``"500 MB"``, ``"16GiB"``, ``"1000000"`` → bytes (K, M, G, T are powers of 1000; KiB... of 1024)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ZooError(f"{what}={text!r}: give a size such as 8G, 500MB or 16GiB")
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(size: float) -> str:
    """Bytes in TB, GB or MB with one decimal, powers of 1000 as `parse_size` reads them."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1e6:.1f} MB"


def _cgroup_headroom() -> Optional[int]:
    """Bytes this process's memory cgroup (v2, or v1) still allows, when it sets a limit."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            folder, limit_file, usage_file = Path("/sys/fs/cgroup") / path.lstrip("/"), "memory.max", "memory.current"
        elif "memory" in controllers.split(","):
            folder, limit_file, usage_file = (Path("/sys/fs/cgroup/memory") / path.lstrip("/"),
                                              "memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        try:
            limit = (folder / limit_file).read_text().strip()
            usage = int((folder / usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge number: no limit
            return max(0, int(limit) - usage)
    return None


def memory_limit(device: torch.device) -> tuple[int, str]:
    """(bytes a separation may use, what that figure is) on ``device``."""
    given = os.environ.get(ENVIRONMENT)
    if given:
        return parse_size(given), f"set by {ENVIRONMENT}"
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0], f"free on {device}"
    import psutil

    available = psutil.virtual_memory().available
    cgroup = _cgroup_headroom()
    if cgroup is not None and cgroup < available:
        return cgroup, "left in this cgroup"
    return available, "available"


def check_segment_memory(model, options, label: str, jobs: int = 1) -> Optional[str]:
    """Refuse (a `ZooError`, before any work) a segment whose separation would need more memory than the limit:
    ``options`` (`zoo_core.separation.SeparationSettings`) cut for ``model`` (``label`` in the message), ``jobs``
    processes each holding a model. Returns a warning for a segment over `SAMPLES_HINT_SECONDS` that fits (it
    may be a count of samples), else None."""
    if options.method != "overlap-add":
        return None  # the authors' procedure cuts by the training window, whatever --segment says
    segment, _ = options.geometry(model)
    counted = measure_peak(model)
    if counted is None:
        return None
    peak = PeakModel(MARGIN * counted.fixed, MARGIN * counted.per_sample)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    per_process = peak.bytes(padded_samples(model, segment), options.batch_size)
    needed = jobs * per_process + (jobs - 1) * weights  # the workers load their own copy; this one is loaded
    limit, source = memory_limit(device)
    seconds, rate = options.segment, model.sample_rate
    # a long segment that read as samples is a usable one (at least two hops) may well be samples
    samples = seconds is not None and seconds > SAMPLES_HINT_SECONDS and seconds >= 2 * model.hop_length
    samples_hint = f"did you mean samples? use --segment {seconds / rate:.2f}" if samples else ""
    if needed <= limit:
        return f"--segment {seconds:g} s is over {SAMPLES_HINT_SECONDS:g} s; {samples_hint}" if samples else None
    what = f"--segment {seconds:g} s" if seconds is not None else f"the default segment ({segment / rate:.2f} s)"
    if options.batch_size > 1:
        what += f" with --batch-size {options.batch_size}"
    if jobs > 1:
        what += f" in {jobs} processes (--jobs)"
    message = f"{what} needs about {format_size(needed)} for {label} (limit {format_size(limit)} {source})"
    if samples:
        raise ZooError(f"{message}; {samples_hint}")
    fitting = _longest_fitting(model, options, peak, (limit - (jobs - 1) * weights) / jobs)
    if fitting is not None:
        advice = f"use --segment {fitting:.2f} or less"
    elif options.batch_size > 1 or jobs > 1:
        advice = "use a smaller --batch-size or --jobs"
    else:
        advice = "use a machine with more memory"
    override = f"raise {ENVIRONMENT}" if os.environ.get(ENVIRONMENT) else f"set {ENVIRONMENT}=SIZE to allow more"
    raise ZooError(f"{message}; {advice} (or {override})")


def _longest_fitting(model, options, peak: PeakModel, budget: float) -> Optional[float]:
    """The longest segment in seconds (two decimals, rounded down) whose call fits in ``budget`` bytes; None
    when not even the shortest one does."""
    from dataclasses import replace

    if peak.per_sample <= 0:
        return None
    seconds = math.floor((budget - peak.fixed) / (peak.per_sample * options.batch_size) / model.sample_rate * 100) / 100
    shortest = 2 * model.hop_length / model.sample_rate
    while seconds >= shortest:  # the line ignored the padding: step down until the padded call fits
        segment, _ = replace(options, segment=seconds).geometry(model)
        if peak.bytes(padded_samples(model, segment), options.batch_size) <= budget:
            return seconds
        seconds = round(seconds - 0.01, 2)
    return None
