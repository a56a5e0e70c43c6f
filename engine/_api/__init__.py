"""Temporal's API: the shapes server and SDK share (protobuf JSON, durations, SDK flags)."""
