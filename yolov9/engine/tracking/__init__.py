"""Multi-object tracking of predictions: ByteTrack over a vectorised Kalman filter, track ids and trails in
`Results`, MOT-challenge files. `track` / `track_stream` are `predict` / `stream` with tracking."""
from yolov9.engine.tracking.byte_tracker import ByteTracker, ByteTrackOptions
from yolov9.engine.tracking.mot import MotWriter, mot_lines
from yolov9.engine.tracking.predict import TRACKERS, TrackingCallback, track, track_stream
from yolov9.engine.tracking.trails import Trails

__all__ = ["ByteTrackOptions", "ByteTracker", "MotWriter", "TRACKERS", "Trails", "TrackingCallback", "mot_lines",
           "track", "track_stream"]
