#!/usr/bin/env bash
# The README's main job: `zoo demo` from ./.venv. Where this checkout sits beside a workspace's shared/ folder
# (offline machines: CI, the team's sandboxes) its copy of the authors' original checkpoints serves as the
# weights mirror; elsewhere the weights are downloaded from the authors' repository.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${ZOO_WEIGHTS_MIRROR:-}" ] && [ -d ../shared/weights/ismir2020 ]; then
  ZOO_WEIGHTS_MIRROR="$(cd ../shared/weights/ismir2020 && pwd)"
  export ZOO_WEIGHTS_MIRROR
fi
exec .venv/bin/zoo demo "$@"
