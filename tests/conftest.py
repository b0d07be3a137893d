import os, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli_path() -> str:
    "The installed `anomaly-tutor` console script (next to the running Python), else from PATH."
    exe = Path(sys.executable).parent/'anomaly-tutor'
    return str(exe) if exe.exists() else (shutil.which('anomaly-tutor') or 'anomaly-tutor')


@pytest.fixture
def run_cli():
    "Run the installed console script; return the CompletedProcess (text mode)."
    def _run(*args, timeout=300):
        return subprocess.run([cli_path(), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, 'PYTHONUNBUFFERED': '1'})
    return _run
