"""Tracker quality on the test clips: ferhub's tracker vs ByteTrack (``supervision`` 0.30.9, its last release
with ByteTrack) on the same MTCNN detections, in one run. Prints two Markdown tables.

    python bench/tracking.py

The scenes are ``tests/clips.py``'s (pan, zoom, cut, two faces crossing, a face leaving and returning, a face
pacing back and forth and one swaying from side to side) and three made here: two people sitting still through
a one-frame camera flash, and through the light dimmed for good; two people walking past each other across a
wider picture at an ordinary walking pace. First at their 15 fps, faces detected on every frame; then with
detections 5, 2, 1 and 0.5 times a second (``--fps`` with ``--detect-every 1``, the Video tab's range), and as
the video path detects at ``--fps 10`` (every third sampled frame: 0.3 s apart) and at the Video tab's default
``--fps 5`` (every other one: 0.4 s apart). ByteTrack runs in the fer benchmark venv
(``bench/fer_env.py``) with ``supervision==0.30.9`` added, so ferhub's environment is untouched. Per scene:
the people in it, the ids each tracker gave, identity switches (a person's id differs from that person's
previous id) and impure ids (one id on two people). "ferhub FaceTracker" is the tracker on boxes alone; the
video path and the webcam add the shot-cut detector and each face's look (``ferhub.tracking.appearance``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]

SCENES = ["pan", "zoom", "cut", "crossing", "leave_and_return", "pacing", "swaying"]
SCENES += ["flash", "dimmed", "walking"]  # made here: see scene()
FPS = 15
# detections a second, and their column: --fps N with --detect-every 1, and the video path's own intervals at
# --fps 10 (the detection on every 3rd sampled frame) and --fps 5 (at least every 0.3 s: every other frame)
SAMPLED = {
    5: "5 fps",
    10 / 3: "`--fps 10`: 0.3 s",
    2.5: "`--fps 5`: 0.4 s",
    2: "2 fps",
    1: "1 fps",
    0.5: "0.5 fps",
}

BYTETRACK = r"""
import json, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
import supervision as sv
scenes = json.load(open(sys.argv[1]))
out = {}
for name, (rate, frames) in scenes.items():
    tracker = sv.ByteTrack(frame_rate=max(1, round(rate)))
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
        for i, t in zip(tracked.data.get("i", []), tracked.tracker_id):
            row[int(i)] = int(t)
        ids.append(row)
    out[name] = ids
print(json.dumps(out))
"""


def walking(n: int = 45) -> tuple[list, list]:
    """Two people walking past each other across a 640x360 picture at 270 px/s for 3 s, their heads 60 px
    tall (34 px face boxes: 8 face sizes a second, an ordinary walking pace; 1.4 m/s is 9 widths of a 15 cm
    face): the astronaut left to right in front, Grace Hopper right to left behind her and a little lower,
    each coming in at one edge and going out at the other. The truth holds a person while their face's centre
    is in the picture."""
    import clips
    import numpy as np

    background = clips.photo("background").resize((640, 360))
    frames, truth = [], []
    for i in range(n):
        a, h = -30 + 270 * i / FPS, 670 - 270 * i / FPS
        canvas = background.copy()
        for name, x, y in (("hopper", h, 190), ("astronaut", a, 170)):
            face = clips.face(name, 60)
            canvas.paste(face, (round(x - face.width / 2), round(y - face.height / 2)))
        frames.append(np.asarray(canvas))
        truth.append(
            [(name, x, y) for name, x, y in (("astronaut", a, 170), ("hopper", h, 190)) if 0 < x < 640]
        )
    return frames, truth


def scene(name: str) -> tuple[list, list]:
    """Frames and truth of a scene: ``tests/clips.py``'s, two people sitting still through a one-frame flash
    (frame 20 brighter, saturating) or a light dimmed for good (40% darker from frame 20), or two walking
    past each other (:func:`walking`)."""
    import clips
    import numpy as np

    if name == "walking":
        return walking()
    if name not in ("flash", "dimmed"):
        return getattr(clips, name)()
    frames, truth = clips.leave_and_return(45, away=(45, 45))  # nobody leaves
    if name == "flash":
        frames[20] = np.clip(frames[20].astype(int) * 1.8 + 40, 0, 255).astype(np.uint8)
    else:
        frames[20:] = [np.clip(a.astype(int) * 0.6, 0, 255).astype(np.uint8) for a in frames[20:]]
    return frames, truth


def sampled(n: int, fps: float) -> list[int]:
    """The frames of an ``n``-frame 15 fps clip that ``--fps fps`` analyses: the first at or after each
    ``k / fps`` seconds."""
    step = FPS / fps
    return sorted({math.ceil(k * step - 1e-9) for k in range(n) if math.ceil(k * step - 1e-9) < n})


def detections() -> tuple[dict[str, list], dict[str, list], dict[str, list]]:
    """Per scene: per frame ``[x1, y1, x2, y2, score]`` of every detected face, the truth, and the frames."""
    from PIL import Image

    from ferhub.faces import FaceDetector

    detector = FaceDetector()
    dets, truth, images = {}, {}, {}
    for name in SCENES:
        frames, t = scene(name)
        images[name] = frames
        dets[name] = [[[*f.box, f.score] for f in detector.detect(Image.fromarray(a))] for a in frames]
        truth[name] = t
    return dets, truth, images


def ferhub_ids(
    dets: dict[str, list], images: dict[str, list] | None = None, frames: dict[str, list[int]] | None = None
) -> dict[str, list]:
    """ferhub's tracker on the detections (of ``frames`` only, where given); with ``images``, also its
    shot-cut detector and each face's look, as ferhub.video runs."""
    from PIL import Image

    from ferhub.tracking import FaceTracker, appearance
    from ferhub.video import ShotCuts

    out = {}
    for name, found in dets.items():
        tracker, cuts, ids = FaceTracker(), ShotCuts(), []
        for i in frames[name] if frames else range(len(found)):
            boxes, looks = [f[:4] for f in found[i]], None
            if images is not None:
                image = Image.fromarray(images[name][i])
                if cuts.is_cut(image):
                    tracker.cut()
                looks = [appearance(image, b) for b in boxes]
            ids.append([t.id for t in tracker.update(boxes, time=i / FPS, looks=looks)])
        out[name] = ids
    return out


def bytetrack_ids(
    dets: dict[str, list], frames: dict[str, list[int]] | None = None, rate: float = FPS
) -> dict[str, list] | str:
    from fer_env import fer_python

    python = fer_python()
    check = subprocess.run([str(python), "-c", "import supervision"], capture_output=True)
    if check.returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "supervision==0.30.9"], check=True)
    scenes = {n: (rate, [d[i] for i in frames[n]] if frames else d) for n, d in dets.items()}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(scenes, f)
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


TRACKERS = (
    "ferhub FaceTracker",
    "ferhub FaceTracker + cut detector and looks (the video path)",
    "ByteTrack (supervision 0.30.9)",
)


def run_all(
    dets: dict[str, list], images: dict[str, list], fps: float | None = None
) -> dict[str, dict | str]:
    """Each tracker's ids per scene, on every frame or on those ``--fps fps`` analyses."""
    frames = None if fps is None else {n: sampled(len(d), fps) for n, d in dets.items()}
    return dict(
        zip(
            TRACKERS,
            (
                ferhub_ids(dets, frames=frames),
                ferhub_ids(dets, images, frames),
                bytetrack_ids(dets, frames, FPS if fps is None else fps),
            ),
        )
    )


def main() -> None:
    from video import cpu_name

    dets, truth, images = detections()
    people = {n: len({p[0] for row in truth[n] for p in row}) for n in SCENES}
    results = run_all(dets, images)
    print(f"\n### Tracking on the test clips (MTCNN on every frame, 15 fps)\n\n{cpu_name()}\n")
    print("| scene | people | tracker | ids | id switches | impure ids | detections without id |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for name in SCENES:
        for tracker, ids in results.items():
            if isinstance(ids, str):
                print(f"| {name} | {people[name]} | {tracker} | {ids} | | | |")
                continue
            n, switches, impure, unassigned = score(dets[name], ids[name], truth[name])
            print(f"| {name} | {people[name]} | {tracker} | {n} | {switches} | {impure} | {unassigned} |")

    sampled_results = {fps: run_all(dets, images, fps) for fps in SAMPLED}
    print(
        "\n### Sampled (`--fps`): ids / id switches / impure ids, faces detected on every sampled frame, or"
        " as the video path detects at `--fps 10` and `--fps 5`\n"
    )
    print("| scene | people | tracker | " + " | ".join(SAMPLED.values()) + " |")
    print("|---|---:|---|" + "---:|" * len(SAMPLED))
    for name in SCENES:
        for tracker in TRACKERS:
            cells = []
            for fps in SAMPLED:
                ids = sampled_results[fps][tracker]
                if isinstance(ids, str):
                    cells.append(ids)
                    continue
                keep = sampled(len(dets[name]), fps)
                n, switches, impure, _ = score(
                    [dets[name][i] for i in keep], ids[name], [truth[name][i] for i in keep]
                )
                cells.append(f"{n} / {switches} / {impure}")
            print(f"| {name} | {people[name]} | {tracker} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
