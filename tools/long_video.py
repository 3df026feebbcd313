"""Write a long sample video of known parts (for `vdg predict` and `vdg benchmark stream`).

    python tools/long_video.py OUT.mp4 [--parts 32] [--seconds 2] [--size 320x240] [--fps 25]

Part i shows sample class i % 8 (its motion and its tone) for `--seconds`; the part
labels are printed as JSON Lines (`start`, `end`, `label`), so predictions can be checked.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from vdg_tf.data.sample import class_cues, render_audio, render_frames, write_clip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--parts", type=int, default=32)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--size", default="320x240")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--seed", type=int, default=3)
    a = p.parse_args()
    width, height = (int(v) for v in a.size.split("x"))
    rng = np.random.default_rng(a.seed)
    frames, audio = [], []
    for i in range(a.parts):
        direction, pitch, word = class_cues(i % 8)
        frames.append(render_frames(rng, direction, int(a.seconds * a.fps), width, height))
        audio.append(render_audio(rng, pitch, a.seconds, 16000))
        start = i * a.seconds
        print(json.dumps({"start": start, "end": start + a.seconds,
                          "label": f"{direction}-{pitch}-{word}"}))  # fmt: skip
    write_clip(a.out, np.concatenate(frames), a.fps, np.concatenate(audio), 16000)


if __name__ == "__main__":
    main()
