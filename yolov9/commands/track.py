"""`yolov9 track --weights W --source VIDEO`: ByteTrack over the detector's boxes; annotated videos with ids and
trails and MOT-challenge files (`mot/<video>.txt`) in a run folder."""
from __future__ import annotations

import argparse

from yolov9.commands.arguments import add_run_folder_options, positive_int
from yolov9.commands.detect import add_predict_options, prepare, summary
from yolov9.engine.tracking import TRACKERS, ByteTrackOptions, track_stream
from yolov9.engine.tracking.predict import TRACK_CONF


def register(subparsers) -> None:
    p = subparsers.add_parser("track", help="track objects in videos, streams, webcams or folders of frames")
    add_predict_options(p, conf=TRACK_CONF)
    p.add_argument("--tracker", default="bytetrack", choices=sorted(TRACKERS), help="tracking algorithm")
    p.add_argument("--confirm-frames", type=positive_int, default=ByteTrackOptions.confirm_frames,
                   help="consecutive matches before a new track gets an id (1: from its first frame)")
    p.add_argument("--lost-frames", type=positive_int, default=ByteTrackOptions.lost_frames,
                   help="frames (at 30 fps) a lost track waits to be found again")
    p.add_argument("--trail", type=positive_int, default=30, help="centre points drawn behind each track")
    p.add_argument("--no-mot", action="store_true", help="do not write MOT-challenge files (mot/<video>.txt)")
    add_run_folder_options(p, "runs/track")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    model, frames, save_dir, options = prepare(args)
    tracker_options = ByteTrackOptions(confirm_frames=args.confirm_frames, lost_frames=args.lost_frames)
    boxes = count = 0
    for result in track_stream(model, frames, tracker=args.tracker, tracker_options=tracker_options,
                               trail=args.trail, save_mot=not args.no_mot, **options):
        boxes += len(result)
        count += 1
    print(summary(f"{boxes} tracked boxes in {count} frames", frames, save_dir))
    return 0
