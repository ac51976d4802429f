"""Many rooms from one deployment: a supervisor runs each room (one profile, one ``streamer run``
process) under a Ray actor, and one Ray Serve deployment shares the Wav2Lip generator across rooms.

Layout: ``model`` (the rooms file), ``process`` (one room process, watched and restarted),
``actor`` (that watcher as a Ray actor), ``supervisor`` (every room, the deployment, status),
``api`` (the supervisor's control API and its client), ``cli`` (``streamer rooms ...``),
``wire`` (the lip-sync protocol), ``lipsync`` (a replica's model: face cache, cross-room batches),
``serve_app`` (the Ray Serve deployment). Ray is an optional extra (``pip install
'streamer[rooms]'``) imported only by ``actor``, ``supervisor`` and ``serve_app`` when they run:
importing this package, or running one room, never imports it.
"""
