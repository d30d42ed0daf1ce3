"""Tracking: ByteTrack on a generated video with crossings, through the real predictor, ONNX Runtime, the
`track` API and CLI; ids in Results, annotated video with trails, MOT files; the tracker's rounds on their own."""
from __future__ import annotations


import cv2
import numpy as np
import pytest

from video_helpers import ColourBoxDetector, Mover, colours_rgb, export_detector, iou, render, write_video
from yolov9 import YOLOv9
from yolov9.cli import main
from yolov9.engine.tracking import ByteTracker, ByteTrackOptions, Trails, mot_lines

pytest.importorskip("lap", reason="tracking needs the `lap` package (the `track` extra)")

SIZE = (240, 320)  # h, w
FRAMES = 60
MOVERS = [
    Mover((0, 0, 255), (36, 36), (20, 100), (300, 100), 0, 59),    # A: right along y 100
    Mover((0, 255, 0), (30, 44), (300, 125), (20, 125), 0, 59),    # B: left along y 125, crosses A at frame ~30
    Mover((255, 0, 0), (28, 28), (200, 10), (200, 230), 5, 45),    # C: enters at 5, down x 200, crosses B ~22
    Mover((0, 255, 255), (24, 24), (30, 20), (290, 220), 0, 39),   # D: diagonal, leaves at 39
]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("tracking")
    images, truth = render(MOVERS, FRAMES, SIZE)
    video = write_video(folder / "clip.avi", images)
    onnx_path = export_detector(ColourBoxDetector(colours_rgb(MOVERS)), (256, 320), ["shape"],
                                folder / "colour_boxes.onnx")
    return {"video": video, "truth": truth, "onnx": onnx_path, "images": images}


def ids_per_object(results, truth) -> dict[int, list[int]]:
    """For each mover, the track id matched to it (IoU > 0.5) in each frame it is visible; -1 when untracked.
    Every tracked box must match a visible mover."""
    found: dict[int, list[int]] = {i: [] for i in range(len(MOVERS))}
    for result, boxes in zip(results, truth):
        objects = sorted(boxes)
        overlap = iou(np.array([boxes[i] for i in objects], np.float64).reshape(-1, 4), result.boxes.xyxy)
        assert len(result) == 0 or (overlap.max(0) > 0.5).all(), f"frame {result.frame}: a box matches no object"
        for row, i in enumerate(objects):
            best = overlap[row].argmax() if len(result) else -1
            found[i].append(int(result.boxes.id[best]) if len(result) and overlap[row, best] > 0.5 else -1)
    return found


def test_every_object_keeps_one_id_through_crossings(scene, tmp_path):
    results = YOLOv9(scene["onnx"]).track(scene["video"], save_dir=tmp_path, progress=False)
    assert len(results) == FRAMES and [r.frame for r in results] == list(range(FRAMES))
    found = ids_per_object(results, scene["truth"])
    for i, mover in enumerate(MOVERS):
        assert len(found[i]) == mover.last - mover.first + 1
        untracked = [mover.first + k for k, track in enumerate(found[i]) if track < 0]
        assert not untracked, f"object {i} untracked in frames {untracked}"
        assert len(set(found[i])) == 1, f"object {i}: id switches {found[i]}"
    assert len({ids[0] for ids in found.values()}) == len(MOVERS)  # distinct objects, distinct ids

    lines = [line.split(",") for line in (tmp_path / "mot" / "clip.txt").read_text().splitlines()]
    assert len(lines) == sum(len(r) for r in results)
    assert all(line[7:] == ["-1", "-1", "-1"] for line in lines)
    first = results[0]
    rows = [line for line in lines if line[0] == "1"]
    assert sorted(int(r[1]) for r in rows) == sorted(first.boxes.id.tolist())
    one = next(r for r in rows if int(r[1]) == first.boxes.id[0])
    x1, y1, x2, y2 = first.boxes.xyxy[0]
    assert [float(v) for v in one[2:6]] == pytest.approx([x1, y1, x2 - x1, y2 - y1], abs=0.01)

    video = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    video.release()


def test_results_carry_ids_and_trails_drawn_on_the_plot(scene, tmp_path):
    results = YOLOv9(scene["onnx"]).track(scene["video"], progress=False)
    last = results[40]
    a = int(iou(MOVERS[0].box(40)[None].astype(np.float64), last.boxes.xyxy).argmax())
    trail = last.trails[a]
    assert len(trail) == 30 and (np.diff(trail[:, 0]) > 0).all()  # A moves right, one point per frame
    np.testing.assert_allclose(trail[-1], last.boxes.xywh[a, :2], atol=1e-4)
    assert last.to_list()[a]["track_id"] == int(last.boxes.id[a])
    plotted = last.plot()
    x, y = np.round(trail[0]).astype(int)  # 29 frames back: A is gone from there, its trail is drawn
    assert not np.array_equal(plotted[y, x], last.orig_img[y, x])
    assert last.speed["track"] >= 0 and {"preprocess", "inference", "postprocess"} <= set(last.speed)


def test_cli_track_writes_video_and_mot(scene, tmp_path):
    args = ["track", "--weights", str(scene["onnx"]), "--source", str(scene["video"]), "--project",
            str(tmp_path), "--vid-stride", "2"]
    assert main(args) == 0
    lines = (tmp_path / "exp" / "mot" / "clip.txt").read_text().splitlines()
    frames = sorted({int(line.split(",")[0]) for line in lines})
    assert frames == list(range(1, FRAMES + 1, 2))  # MOT frames are the video's (1-based), every second one
    assert (tmp_path / "exp" / "clip.mp4").is_file()


def detections(*boxes_conf) -> np.ndarray:
    return np.array([[*box, conf, 0] for *box, conf in boxes_conf], np.float64).reshape(-1, 6)


def test_bytetrack_rounds():
    """Round 2 keeps a track on a low-confidence box; a lost track is found again after a gap; an unmatched
    low-confidence box starts nothing; confirm_frames 2 reports a track from its second frame."""
    tracker = ByteTracker(ByteTrackOptions(lost_frames=5))
    ids = []
    for f in range(12):
        box = (10 + 4 * f, 10, 40 + 4 * f, 40)
        conf = 0.15 if 3 <= f <= 4 else 0.9  # weak for two frames (occluded): round 2
        frame = detections((*box, conf)) if not 6 <= f <= 8 else detections()  # gone for three frames
        frame = np.concatenate((frame, detections((200, 200, 230, 230, 0.15))))  # a weak box nobody tracks
        tracked, rows = tracker.update(frame)
        ids.append(tracked[:, 6].tolist())
        assert (tracked[:, :6] == frame[rows].astype(np.float32)).all()
    assert ids == [[1]] * 6 + [[]] * 3 + [[1]] * 3

    late = ByteTracker(ByteTrackOptions(confirm_frames=2))
    reported = [late.update(detections((50 + f, 50, 80 + f, 80, 0.9)))[0][:, 6].tolist() for f in range(3)]
    assert reported == [[], [1], [1]]


def test_head_on_pass_keeps_ids_by_motion():
    """Two boxes pass through each other on one lane (IoU up to 0.36): matched on position alone, they would swap
    ids after the crossing (measured with the Kalman transition set to identity); the velocities keep them."""
    tracker = ByteTracker()
    for f in range(20):
        frame = detections((10 + 10 * f, 50, 40 + 10 * f, 80, 0.9), (200 - 10 * f, 56, 230 - 10 * f, 86, 0.8))
        tracked, rows = tracker.update(frame)
        assert dict(zip(rows.tolist(), tracked[:, 6].tolist())) == {0: 1, 1: 2}, f"frame {f}"


def test_lost_track_is_dropped_after_its_buffer():
    tracker = ByteTracker(ByteTrackOptions(lost_frames=3))
    tracker.update(detections((10, 10, 40, 40, 0.9)))
    for _ in range(4):
        tracker.update(detections())
    assert len(tracker) == 0
    assert tracker.update(detections((10, 10, 40, 40, 0.9)))[0][:, 6].tolist() == [2]  # a new id


def test_trails_and_mot_lines():
    trails = Trails(length=3)
    for f in range(5):
        got = trails.update(np.array([[f, 0, f + 2, 2]], np.float32), np.array([7]))
    np.testing.assert_array_equal(got[0], [[3, 1], [4, 1], [5, 1]])
    assert mot_lines(4, np.array([[10, 20, 40, 60, 0.5, 0, 7]])) == "4,7,10.00,20.00,30.00,40.00,0.5000,-1,-1,-1\n"


def test_unknown_tracker_is_a_clear_error(scene):
    from yolov9.errors import YOLOv9Error

    with pytest.raises(YOLOv9Error, match="unknown tracker 'sort'"):
        YOLOv9(scene["onnx"]).track(scene["video"], tracker="sort", progress=False)
