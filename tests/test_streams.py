"""Live sources: http streams served by a thread of this test on 127.0.0.1 (OpenCV's FFMPEG backend reads them),
newest-frame dropping, --vid-stride, .streams lists, and dead streams (nothing listening, a server that stops
sending) as one clear error after the timeout instead of a hang."""
from __future__ import annotations

import functools
import http.server
import socket
import threading
import time

import numpy as np
import pytest

from video_helpers import ColourBoxDetector, Mover, colours_rgb, export_detector, render, write_video
from yolov9.cli import main
from yolov9.engine.predictor import predict
from yolov9.engine.sources import load_source
from yolov9.engine.streams import StreamError, read_streams_file

FRAMES = 40
SIZE = (96, 128)
MOVERS = [Mover((0, 0, 255), (20, 20), (10, 48), (118, 48), 0, FRAMES - 1)]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Two generated videos served over http on 127.0.0.1 by a thread; yields (base URL, rendered frames)."""
    folder = tmp_path_factory.mktemp("served")
    images, _ = render(MOVERS, FRAMES, SIZE)
    write_video(folder / "a.avi", images)
    write_video(folder / "b.avi", images)
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", images, folder
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def frame_number(image: np.ndarray, rendered: list[np.ndarray]) -> int:
    """Which rendered frame a decoded one is (the mover's position differs in every frame)."""
    return int(np.argmin([np.abs(image.astype(np.int16) - r).mean() for r in rendered]))


def test_http_stream_frames_are_the_newest_and_in_order(served):
    base, rendered, _ = served
    source = load_source(f"{base}/a.avi")
    assert len(source) == 0  # a live source has no known length
    seen = []
    for frame in source:
        assert frame.path == f"{base}/a.avi" and frame.image.shape == (*SIZE, 3)
        assert frame_number(frame.image, rendered) == frame.frame  # the index is the picture's
        seen.append(frame.frame)
        time.sleep(0.05)  # a slow consumer: the reader keeps only the newest frame meanwhile
    assert seen == sorted(set(seen)) and seen[-1] == FRAMES - 1
    assert len(seen) < FRAMES  # stale frames were dropped, not queued


def test_vid_stride_and_streams_list(served, tmp_path):
    base, _, _ = served
    listing = tmp_path / "cams.streams"
    listing.write_text(f"# two cameras\n{base}/a.avi\n\n{base}/b.avi\n")
    assert read_streams_file(listing) == [f"{base}/a.avi", f"{base}/b.avi"]
    frames = list(load_source(listing, vid_stride=3))
    assert {f.path for f in frames} == {f"{base}/a.avi", f"{base}/b.avi"}
    assert all(f.frame % 3 == 0 for f in frames)
    (tmp_path / "bad.streams").write_text("video.mp4\n")
    with pytest.raises(StreamError, match="bad.streams: 'video.mp4' is not a stream URL"):
        read_streams_file(tmp_path / "bad.streams")


def test_predict_and_cli_detect_on_a_stream(served, tmp_path):
    base, _, _ = served
    model = export_detector(ColourBoxDetector(colours_rgb(MOVERS)), (96, 128), ["box"], tmp_path / "det.onnx")
    results = predict(model, f"{base}/a.avi", progress=False)
    assert results and all(len(r) == 1 and r.path.endswith("a.avi") for r in results)
    args = ["detect", "--weights", str(model), "--source", f"{base}/b.avi", "--project", str(tmp_path / "runs")]
    assert main(args) == 0 and (tmp_path / "runs" / "exp" / "b.mp4").is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_is_a_clear_error(capsys):
    url = f"http://127.0.0.1:{free_port()}/live.avi"
    started = time.monotonic()
    with pytest.raises(StreamError, match="cannot open the stream"):
        next(iter(load_source(url, stream_timeout=2)))
    assert main(["detect", "--weights", "gelan-t", "--source", url, "--stream-timeout", "2", "--nosave"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("yolov9: error: ") and "cannot open the stream" in error
    assert time.monotonic() - started < 10


def test_server_that_stops_sending_times_out(served):
    _, _, folder = served
    data = (folder / "a.avi").read_bytes()
    release = threading.Event()

    def stall(listener: socket.socket) -> None:
        connection, _ = listener.accept()
        connection.recv(4096)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/x-msvideo\r\nContent-Length: %d\r\n\r\n"
                           % len(data) + data[: len(data) // 3])
        release.wait(20)
        connection.close()

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        threading.Thread(target=stall, args=(listener,), daemon=True).start()
        started = time.monotonic()
        frames = []
        with pytest.raises(StreamError, match="stopped sending"):
            for frame in load_source(f"http://127.0.0.1:{listener.getsockname()[1]}/a.avi", stream_timeout=1.5):
                frames.append(frame.frame)
        waited = time.monotonic() - started
        release.set()
    assert frames and 1.4 < waited < 6
