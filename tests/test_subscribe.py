"""The live view: ground truth beside predictions, running accuracy, in-place redraw, a real SUB socket."""

import io
import json
import threading
import time

import pytest

from cosmo_edge.daemon.subscriber import watch
from cosmo_edge.daemon.view import GroundTruth, InPlaceWriter, LiveView
from cosmo_edge.publish import Publisher, window_payload

S = 10**9


def _truth(tmp_path):
    path = tmp_path / "ground_truth.jsonl"
    rows = [
        {"activity": "walk", "label": 0, "start_ns": 10 * S, "end_ns": 20 * S},
        {"activity": "wave", "label": 1, "start_ns": 20 * S, "end_ns": 30 * S},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _window(window_id, end_s, label):
    probs = [0.8, 0.2] if label == "walk" else [0.1, 0.9]
    body = window_payload(window_id, int(end_s * S), probs, ["walk", "wave"], "abc123", 1.5, {"imu": True})
    body.update(window_start_ns=int((end_s - 2) * S), due_ns=int(end_s * S), seq=window_id)
    return body


def test_ground_truth_labels_windows_by_majority(tmp_path):
    truth = GroundTruth(_truth(tmp_path))
    assert truth.refresh()
    assert truth.label_at(15 * S) == "walk" and truth.label_at(35 * S) is None
    assert truth.window_label(19 * S, 21 * S)[1] == pytest.approx(0.5)
    assert truth.window_label(12 * S, 14 * S) == ("walk", 1.0)
    assert truth.window_label(int(19.5 * S), int(21.5 * S))[0] == "wave"


def test_missing_truth_file_is_retried(tmp_path):
    truth = GroundTruth(tmp_path / "later.jsonl")
    assert not truth.refresh()
    (tmp_path / "later.jsonl").write_text(_truth(tmp_path).read_text(), encoding="utf-8")
    assert truth.refresh() and len(truth.segments) == 2


def test_view_scores_predictions_against_the_truth(tmp_path):
    view = LiveView("tcp://127.0.0.1:1", GroundTruth(_truth(tmp_path)))
    view.handle("activity.window", _window(0, 14, "walk"), receipt_ns=int(14.004 * S))
    view.handle(
        "activity.window", _window(1, 21, "walk"), receipt_ns=int(21.004 * S)
    )  # straddles: truth walk
    view.handle("activity.window", _window(3, 25, "walk"), receipt_ns=int(25.004 * S))  # wrong; seq gap of 1
    view.handle("activity.change", {"label": "walk", "window_end_ns": 14 * S, "seq": 0})
    assert view.score.scored == 3 and view.score.correct == 2
    assert view.score.settled == 2 and view.score.settled_correct == 1
    assert view.gaps == 1
    text = "\n".join(view.lines())
    assert "truth wave" in text and "accuracy  : 2/3 windows = 66.7%" in text
    assert "end-to-end 4.0 ms" in text and "model abc123" in text
    assert "walk" in text.splitlines()[1]


def test_in_place_writer_redraws_without_scrolling():
    out = io.StringIO()
    writer = InPlaceWriter(out)
    writer.draw(["a", "b", "c"])
    writer.draw(["d", "e"])
    text = out.getvalue()
    first, second = text.split("\x1b[3F")  # second draw moves up over the first block
    assert first.count("\n") == 3 and second.count("\n") == 3  # and clears the line it no longer uses
    assert second.startswith("\x1b[2Kd\n\x1b[2Ke\n\x1b[2K\n")


def test_watch_receives_from_a_real_publisher(tmp_path):
    publisher = Publisher(
        "tcp://127.0.0.1:0", status_period_s=0.1, status_source=lambda: {"activity": "walk"}
    )
    publisher.start()
    view = LiveView(publisher.bound_endpoint, GroundTruth(_truth(tmp_path)))
    stop = threading.Event()
    draws = []
    thread = threading.Thread(
        target=watch, args=(publisher.bound_endpoint, view, draws.append, stop), daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while view.counts["status"] == 0 and time.monotonic() < deadline:  # slow joiner: wait for status
            time.sleep(0.05)
        publisher.publish("activity.window", _window(0, 14, "walk"))
        while view.counts["activity.window"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(5.0)
        publisher.stop()
    assert not thread.is_alive()
    assert view.counts["activity.window"] == 1 and view.score.correct == 1
    assert view.activity == "walk" and draws and draws[-1] is view
