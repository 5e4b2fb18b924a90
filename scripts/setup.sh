#!/usr/bin/env bash
# Set up svs-zoo in ./.venv from a fresh clone: the system tools some features need (installed with apt-get
# when missing and we are root; otherwise named), then torch and svs-zoo with its test extras.
#   ffmpeg/ffprobe   museval (zoo eval) imports stempeg, which looks for them at import time
#   cmake, g++       the example C++ host (examples/cpp_host)
#   chromium         the browser that the tests of `zoo serve`'s page drive (tests/test_serve_browser.py)
# TORCH_SPEC overrides the torch requirement (default torch==2.13.0; svs-zoo supports >=2.4,<2.15).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { echo "setup: $*" >&2; }

missing=()
{ command -v ffmpeg && command -v ffprobe; } >/dev/null || missing+=(ffmpeg)
command -v cmake >/dev/null || missing+=(cmake)
command -v g++ >/dev/null || missing+=(g++)
[ -x /usr/bin/chromium ] || [ -n "${ZOO_CHROMIUM:-}" ] || missing+=(chromium)
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "[1/4] installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    step "[1/4] please install ${missing[*]} (needed by zoo eval / the C++ host / the page's tests); continuing without"
  fi
else
  step "[1/4] system packages present (ffmpeg, cmake, g++, chromium)"
fi

if [ -x .venv/bin/python ]; then
  step "[2/4] using the existing virtual environment $(pwd)/.venv"
else
  step "[2/4] creating the virtual environment $(pwd)/.venv"
  python3 -m venv .venv
fi
pip_install() {  # quiet pip; drop this machine's notes about missing local package folders, keep real errors
  .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
step "[3/4] installing ${TORCH_SPEC:-torch==2.13.0} and svs-zoo with its test extras (a minute or two)"
pip_install --upgrade pip
pip_install "${TORCH_SPEC:-torch==2.13.0}" -e ".[test]"
step "[4/4] checking the installation"
.venv/bin/python -c "import torch, zoo_core; print(f'svs-zoo {zoo_core.__version__} ready (torch {torch.__version__}) in $(pwd)/.venv')"
cat >&2 <<'HINT'
Run the zoo from this folder as .venv/bin/zoo (e.g. .venv/bin/zoo list), or activate the environment first
(source .venv/bin/activate) and call zoo; the tests run with .venv/bin/python -m pytest -q.
HINT
