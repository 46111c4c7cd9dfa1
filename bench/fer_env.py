"""A separate virtualenv with the ``fer`` package (25.10.3), for benchmarks that run fer side by side with
ferhub.

fer's declared dependencies would pull the full ``tensorflow``, the GUI OpenCV and, through facenet-pytorch,
an unpinned (CUDA) torch; its video path needs only TensorFlow Lite, OpenCV, pandas and tqdm. So fer is
installed without dependencies, next to ``tensorflow-cpu`` and headless OpenCV-contrib, in its own venv:
ferhub's environment is never touched.

>>> python = fer_python()          # doctest: +SKIP  (creates bench/.venv-fer on first use: a few minutes)
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

FER_VERSION = "25.10.3"
VENV = Path(__file__).resolve().parent / ".venv-fer"
# what fer's Video.analyze + FER(use_tflite=True) import; pkg_resources left setuptools in 81
PACKAGES = [
    "tensorflow-cpu==2.21.0",
    "opencv-contrib-python-headless>=4.8,<5",  # 5.0 cannot load fer's Haar cascade XML
    "pandas>=2",
    "tqdm>=4.62",
    "requests>=2",
    "pillow>=10",
    "setuptools<81",
]


def fer_python(path: Path = VENV) -> Path:
    """The python of a venv holding fer ``FER_VERSION``; created (and filled from PyPI) when missing."""
    python = path / "bin" / "python"
    check = [str(python), "-c", f"import fer, tensorflow, cv2; assert fer.__version__ == '{FER_VERSION}'"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"creating {path} with fer {FER_VERSION} (tensorflow-cpu, headless OpenCV)...", file=sys.stderr)
    venv.create(path, with_pip=True, clear=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *PACKAGES], check=True)
    subprocess.run([*pip, "--no-deps", f"fer=={FER_VERSION}"], check=True)
    subprocess.run(check, check=True)
    return python
