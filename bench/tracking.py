"""Tracker quality on the test clips: ferhub's tracker vs ByteTrack (``supervision`` 0.30.9, its last release
with
ByteTrack) on the same MTCNN detections, in one run. Prints a Markdown table.

    python bench/tracking.py

The scenes are ``tests/clips.py``'s (pan, zoom, cut, two faces crossing, a face leaving and returning), 15
fps, faces detected on every frame. ByteTrack runs in the fer benchmark venv (``bench/fer_env.py``) with
``supervision==0.30.9`` added, so ferhub's environment is untouched. Per scene: the people in it, the ids each
tracker gave, identity switches (a person's id differs from that person's previous id) and impure ids (one id
on two people).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]

SCENES = ["pan", "zoom", "cut", "crossing", "leave_and_return"]
FPS = 15

BYTETRACK = r"""
import json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
import supervision as sv
scenes = json.load(open(sys.argv[1]))
out = {}
for name, frames in scenes.items():
    tracker = sv.ByteTrack(frame_rate=15)
    ids = []
    for frame in frames:
        if not frame:
            tracker.update_with_detections(sv.Detections.empty())
            ids.append([])
            continue
        det = sv.Detections(xyxy=np.array([f[:4] for f in frame], dtype=float),
                            confidence=np.array([f[4] for f in frame]), class_id=np.zeros(len(frame), int),
                            data={"i": np.arange(len(frame))})
        tracked = tracker.update_with_detections(det)
        row = [None] * len(frame)
        for i, t in zip(tracked.data["i"], tracked.tracker_id):
            row[int(i)] = int(t)
        ids.append(row)
    out[name] = ids
print(json.dumps(out))
"""


def detections() -> tuple[dict[str, list], dict[str, list], dict[str, list]]:
    """Per scene: per frame ``[x1, y1, x2, y2, score]`` of every detected face, the truth, and the frames."""
    import clips
    from PIL import Image

    from ferhub.faces import FaceDetector

    detector = FaceDetector()
    dets, truth, images = {}, {}, {}
    for name in SCENES:
        frames, t = getattr(clips, name)()
        images[name] = frames
        dets[name] = [[[*f.box, f.score] for f in detector.detect(Image.fromarray(a))] for a in frames]
        truth[name] = t
    return dets, truth, images


def ferhub_ids(dets: dict[str, list], images: dict[str, list] | None = None) -> dict[str, list]:
    """ferhub's tracker on the detections; with ``images``, also its shot-cut detector, as ferhub.video
    runs."""
    from PIL import Image

    from ferhub.tracking import FaceTracker
    from ferhub.video import ShotCuts

    out = {}
    for name, frames in dets.items():
        tracker, cuts, ids = FaceTracker(), ShotCuts(), []
        for i, frame in enumerate(frames):
            if images is not None and cuts.is_cut(Image.fromarray(images[name][i])):
                tracker.end_all()
            ids.append([t.id for t in tracker.update([f[:4] for f in frame], time=i / FPS)])
        out[name] = ids
    return out


def bytetrack_ids(dets: dict[str, list]) -> dict[str, list] | str:
    from fer_env import fer_python

    python = fer_python()
    check = subprocess.run([str(python), "-c", "import supervision"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "supervision==0.30.9"], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(dets, f)
    out = subprocess.run([str(python), "-c", BYTETRACK, f.name], capture_output=True, text=True)
    os.unlink(f.name)
    if out.returncode != 0:
        return "ByteTrack failed: " + out.stderr.strip().splitlines()[-1]
    return json.loads(out.stdout)


def score(frames: list, ids: list, truth: list) -> tuple[int, int, int, int]:
    """(distinct ids, identity switches, impure ids, detections left without an id)."""
    last: dict[str, int] = {}
    owners: dict[int, set[str]] = {}
    switches = unassigned = 0
    for frame, row, people in zip(frames, ids, truth):
        for det, track_id in zip(frame, row):
            if track_id is None:
                unassigned += 1
                continue
            cx, cy = (det[0] + det[2]) / 2, (det[1] + det[3]) / 2
            person = min(people, key=lambda p: (p[1] - cx) ** 2 + (p[2] - cy) ** 2)[0] if people else "?"
            if person in last and last[person] != track_id:
                switches += 1
            last[person] = track_id
            owners.setdefault(track_id, set()).add(person)
    return len(owners), switches, sum(len(p) > 1 for p in owners.values()), unassigned


def main() -> None:
    from video import cpu_name

    dets, truth, images = detections()
    results = {
        "ferhub FaceTracker": ferhub_ids(dets),
        "ferhub FaceTracker + cut detector (the video path)": ferhub_ids(dets, images),
        "ByteTrack (supervision 0.30.9)": bytetrack_ids(dets),
    }
    print(f"\n### Tracking on the test clips (MTCNN on every frame, 15 fps)\n\n{cpu_name()}\n")
    print("| scene | people | tracker | ids | id switches | impure ids | detections without id |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name in SCENES:
        people = len({p[0] for row in truth[name] for p in row})
        for tracker, ids in results.items():
            if isinstance(ids, str):
                print(f"| {name} | {people} | {tracker} | {ids} | | | |")
                continue
            n, switches, impure, unassigned = score(dets[name], ids[name], truth[name])
            print(f"| {name} | {people} | {tracker} | {n} | {switches} | {impure} | {unassigned} |")


if __name__ == "__main__":
    main()
