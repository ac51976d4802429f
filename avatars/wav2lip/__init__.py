"""Wav2Lip lip-sync (torch is an optional extra: pip install 'streamer[wav2lip]', CPU wheel torch==2.13.0).

Nothing here imports torch at package import time: the app falls back to the procedural renderer,
with a message saying what to install or where to put the weights, when either is missing.
"""
