"""User labels for on-device fine-tuning: wire protocol, durable store, ZeroMQ intake, client.

``LabelServer`` answers label requests (docs/protocol.md, "Labels") by looking up the windows the
model just saw (``RecentWindows``) and writing them to the ``LabelStore`` before it replies.
"""

from cosmo_edge.labels.client import LabelClientError, send_label
from cosmo_edge.labels.protocol import SCHEMA_VERSION, LabelRequest, ProtocolError
from cosmo_edge.labels.recent import RecentWindows, capacity_for
from cosmo_edge.labels.records import AddResult, LabeledWindow, LabelMessage, stack_windows
from cosmo_edge.labels.server import DEFAULT_ENDPOINT, LabelServer, LabelServerError
from cosmo_edge.labels.store import LabelConflictError, LabelStore, LabelStoreError, store_path

__all__ = [
    "DEFAULT_ENDPOINT",
    "SCHEMA_VERSION",
    "AddResult",
    "LabelClientError",
    "LabelConflictError",
    "LabelMessage",
    "LabelRequest",
    "LabelServer",
    "LabelServerError",
    "LabelStore",
    "LabelStoreError",
    "LabeledWindow",
    "ProtocolError",
    "RecentWindows",
    "capacity_for",
    "send_label",
    "stack_windows",
    "store_path",
]
