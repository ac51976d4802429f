"""streamer: an AI live host that lives inside a webcam."""

__version__ = "0.1.0"
