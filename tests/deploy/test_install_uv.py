"""scripts/install-uv.sh on what a fresh Debian looks like: python3 without pip, and a
pip that refuses system-wide installs (PEP 668). Run with PATH narrowed to stand-ins
for python3, apt-get and sudo (that only record their calls and change state as the
real ones would) and a few coreutils, so the machine itself is left alone."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PYTHON3 = """#!/bin/bash
echo "python3 $*" >> "$STATE/calls"
if [ "$1 $2" = "-m pip" ]; then
  [ -f "$STATE/pip" ] || { echo "/usr/bin/python3: No module named pip" >&2; exit 1; }
  if [ "$3" = install ]; then
    case " $* " in
      *" --break-system-packages "*) ;;
      *) echo "error: externally-managed-environment" >&2; exit 1 ;;
    esac
    printf '#!/bin/bash\\necho uv 0.0.0\\n' > "$STUBS/uv"; chmod +x "$STUBS/uv"
  fi
  exit 0
fi
exit 2
"""
APT_GET = """#!/bin/bash
echo "apt-get $*" >> "$STATE/calls"
case " $* " in *" python3-pip "*) : > "$STATE/pip" ;; esac
"""
SUDO = """#!/bin/bash
exec "$@"
"""


@dataclass
class Machine:
    stubs: Path
    state: Path
    env: dict[str, str]

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.env["BASH"], str(ROOT / "scripts" / "install-uv.sh")],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    @property
    def calls(self) -> list[str]:
        log = self.state / "calls"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    stubs, tools, state, home = (tmp_path / d for d in ("stubs", "tools", "state", "home"))
    for d in (stubs, tools, state, home):
        d.mkdir()
    for name, text in (("python3", PYTHON3), ("apt-get", APT_GET), ("sudo", SUDO)):
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    for tool in ("bash", "dirname", "id", "env", "chmod"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    env = {
        "PATH": f"{stubs}{os.pathsep}{tools}",
        "HOME": str(home),
        "STATE": str(state),
        "STUBS": str(stubs),
        "BASH": str(tools / "bash"),
    }
    return Machine(stubs, state, env)


def test_without_pip_installs_python3_pip_from_apt_first(machine: Machine) -> None:
    result = machine.run()
    assert result.returncode == 0, result.stdout + result.stderr
    calls = machine.calls
    apt = [c for c in calls if c.startswith("apt-get")]
    assert apt[0] == "apt-get update -qq"
    assert apt[1].startswith("apt-get install") and "python3-pip" in apt[1].split()
    installs = [c for c in calls if c.startswith("python3 -m pip install")]
    assert calls.index(apt[1]) < calls.index(installs[0])  # pip before uv
    assert installs[-1].endswith("--break-system-packages uv")
    assert (machine.stubs / "uv").is_file()


def test_with_pip_leaves_apt_alone(machine: Machine) -> None:
    (machine.state / "pip").touch()
    result = machine.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [c for c in machine.calls if c.startswith("apt-get")]
    assert (machine.stubs / "uv").is_file()


def test_with_uv_does_nothing(machine: Machine) -> None:
    (machine.stubs / "uv").write_text("#!/bin/bash\n")
    (machine.stubs / "uv").chmod(0o755)
    result = machine.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert machine.calls == []
