#!/usr/bin/env bash
# The GPU check: every CUDA figure of svs-zoo in one run (under 8 minutes on one datacenter GPU).
#
#   bash scripts/gpu-check.sh prepare   here, with network and ../shared: writes .gpu-check/ (under 64 MiB):
#                                       pure-Python wheels the GPU image lacks, the MUSDB clip decoded to
#                                       clip.npz, the authors' tdc-17 top1 checkpoint
#   bash scripts/gpu-check.sh           on the GPU machine (no network; its own python3 with torch, CMake, nvcc):
#                                       the CUDA-marked tests, then benchmarks/gpu_check.py (precision, C++ host
#                                       on CUDA, AOTInductor for CUDA, speed and peak memory of every model)
#
# The GPU machine needs this checkout and .gpu-check/ (the device tool: carry .gpu-check). svs-zoo is not
# installed there: PYTHONPATH points at the checkout, which finds its built-in plugins through pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=.gpu-check
PY=${PYTHON:-python3}

if [ "${1:-}" = prepare ]; then
  SHARED=${ZOO_SHARED_DIR:-../shared}
  VENV_PY=${VENV_PY:-.venv/bin/python}
  rm -rf "$DATA" && mkdir -p "$DATA/wheels" "$DATA/shared/weights/ismir2020"
  # what the image lacks: the test runner, WAV I/O for the C++ comparison, and the two peers' packages
  # (pure Python except lameenc and soundfile's bundled libsndfile); the image's Python is 3.12
  "$VENV_PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$DATA/wheels" pytest iniconfig soundfile demucs openunmix julius lameenc \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  cp "$SHARED/weights/ismir2020/cac_tdc_17_vocals_top1.pt" "$DATA/shared/weights/ismir2020/"
  "$VENV_PY" - "$SHARED" "$DATA/clip.npz" <<'PY'
import sys

import av
import numpy as np

shared, out = sys.argv[1], sys.argv[2]
path = f"{shared}/audio/The Easton Ellises - Falcon 69.stem.mp4"
streams = []
for index in (0, 4):  # a MUSDB .stem.mp4 holds mixture, drums, bass, other, vocals
    with av.open(path) as container:
        frames = [f.to_ndarray() for f in container.decode(container.streams.audio[index])]
    streams.append(np.concatenate(frames, axis=1).astype(np.float32))
length = min(s.shape[1] for s in streams)
np.savez(out, mixture=streams[0][:, :length], vocals=streams[1][:, :length])
print(f"wrote {out}: {length / 44100:.2f} s of mixture and vocals")
PY
  du -sh "$DATA"
  exit 0
fi

[ -d "$DATA/wheels" ] || { echo "error: $DATA/ is missing: run 'bash scripts/gpu-check.sh prepare' first" >&2; exit 2; }
began=$(date +%s)
echo "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -m pip install --quiet --no-deps --no-index "$DATA"/wheels/*.whl 2>&1 | grep -v "^\s*$" || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export ZOO_SHARED_DIR="$PWD/$DATA/shared" ZOO_CLIP_NPY="$PWD/$DATA/clip.npz" ZOO_OFFLINE=1

echo "== tests marked cuda"
status=0
"$PY" -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider || status=1

echo "== figures"
"$PY" benchmarks/gpu_check.py --data "$DATA" "$@" || status=1
echo "== gpu-check finished in $(( $(date +%s) - began )) s (exit $status)"
exit $status
