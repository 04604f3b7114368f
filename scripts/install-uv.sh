#!/usr/bin/env bash
# Install uv when it is missing, with `python3 -m pip`. A fresh Debian has python3 but
# no pip: then python3-pip comes from apt first. Quick when uv is already there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
export PATH="$HOME/.local/bin:$PATH"  # where pip puts uv when not run as root
command -v uv >/dev/null 2>&1 && exit 0
if ! python3 -m pip --version >/dev/null 2>&1; then
  say "installing pip from apt (python3-pip)"
  apt_install python3 python3-pip
fi
say "installing uv"
# Debian's Python refuses system-wide pip installs (PEP 668) unless told.
python3 -m pip install --quiet uv || python3 -m pip install --quiet --break-system-packages uv
command -v uv >/dev/null 2>&1 || { echo "uv was installed but is not on PATH" >&2; exit 1; }
