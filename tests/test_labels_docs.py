"""The label client example in docs/protocol.md runs as printed against a live label server."""

import pathlib
import re
import subprocess
import sys

from labels_support import LABEL_NAMES, filled_buffer

from cosmo_edge.labels import LabelServer, LabelStore

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def doc_example() -> str:
    """The python block under the "Ten-line label client" heading."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("### Ten-line label client") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_doc_client_example_labels_the_last_5_s(tmp_path: pathlib.Path) -> None:
    code = doc_example()
    assert len(code.strip().splitlines()) <= 10
    buffer = filled_buffer(12)
    spans = []

    def for_span(start_ns: int, end_ns: int) -> list:
        spans.append(end_ns - start_ns)
        return buffer.by_id([8, 9, 10])

    store = LabelStore(tmp_path / "labels.sqlite3")
    with LabelServer(store, LABEL_NAMES, for_span, buffer.by_id, endpoint="tcp://127.0.0.1:0") as server:
        out = subprocess.run(
            [sys.executable, "-c", code, server.bound_endpoint], capture_output=True, text=True, timeout=30
        )
    assert out.returncode == 0, out.stderr
    assert "'ok': True" in out.stdout and "'window_ids': [8, 9, 10]" in out.stdout
    assert spans == [5_000_000_000]
    assert store.counts() == {"walk": 3}
    store.close()
