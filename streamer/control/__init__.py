"""The operator's seat: the control API, the panel it serves, the status stream, global hotkeys and
the OBS client. The panel, hotkeys and OBS are clients of the API: they send commands and read the
status stream; none of them reaches into the runtime's objects."""

from streamer.control.api import TOKEN_ENV, ControlServer, control_token

__all__ = ["TOKEN_ENV", "ControlServer", "control_token"]
