import subprocess
import sys

from streamer.config import load_settings
from streamer.control import control_token
from streamer.doctor import run_doctor
from tests.conftest import REPO, write_config


def test_doctor_reports_each_component_with_a_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    lines = []
    rc = run_doctor(load_settings(REPO / "config" / "default.toml", environ={}), lines.append)
    text = "\n".join(lines)
    for component in ("chat[0] replay", "chat[1] websocket", "LLM endpoint", "voice: piper", "voice: espeak-ng",
                      "ASR: faster-whisper", "Wav2Lip weights", "virtual camera", "virtual microphone", "CJK font"):
        assert component in text, component
    # no kernel camera device exists here: it must say how to get one
    assert "MISSING  virtual camera" in text and "modprobe v4l2loopback" in text
    assert f"put the official wav2lip_gan.pth at {tmp_path}" in text
    assert rc == 0 and text.endswith("ready to run")


def test_doctor_flags_a_missing_replay_file_and_the_cli_exits_nonzero_on_bad_config(tmp_path):
    cfg = write_config(tmp_path, '[[chat]]\ntype = "replay"\npath = "nope.jsonl"\n')
    lines = []
    run_doctor(load_settings(cfg, environ={}), lines.append)
    assert any(line.startswith("  MISSING  chat[0] replay") for line in lines)
    bad = write_config(tmp_path, "[voice]\nengine = \"sam\"\n")
    proc = subprocess.run([sys.executable, "-m", "streamer", "doctor", "-c", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "voice.engine" in proc.stderr and str(bad) in proc.stderr


def test_control_token_from_environment_or_generated(monkeypatch):
    monkeypatch.setenv("STREAMER_CONTROL_TOKEN", "from-env")
    assert control_token() == ("from-env", False)
    monkeypatch.delenv("STREAMER_CONTROL_TOKEN")
    a, generated = control_token()
    assert generated and len(a) >= 20 and control_token()[0] != a


def test_doctor_checks_platform_reachability(tmp_path):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    cfg = write_config(tmp_path, f'[[chat]]\ntype = "twitch"\nchannel = "xqc"\nurl = "ws://127.0.0.1:{port}"\n'
                                 f'[[chat]]\ntype = "bilibili"\nroom = 1\nurl = "ws://127.0.0.1:{dead_port}/sub"\n')
    lines = []
    try:
        run_doctor(load_settings(cfg, environ={}), lines.append)
    finally:
        listener.close()
    assert any(line.startswith("  OK       chat[0] twitch") and "reachable" in line for line in lines)
    assert any(line.startswith("  MISSING  chat[1] bilibili") and "unreachable" in line for line in lines)


def _cli(*args, env=None):
    import os

    return subprocess.run([sys.executable, "-m", "streamer", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def _help(capsys, *args):
    import pytest

    from streamer.cli import main

    with pytest.raises(SystemExit) as e:
        main([*args])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_version_and_every_subcommand_describes_each_argument_with_an_example(capsys):
    from streamer import __version__

    assert _help(capsys, "--version").strip() == f"streamer {__version__}"
    for command in (["run"], ["say"], ["listen"], ["avatar", "prepare"], ["doctor"], ["panel"]):
        out = _help(capsys, *command, "--help")
        assert "example: " in out and "streamer " + command[0] in out.split("example: ")[1], command
        options = out.split("options:")[-1]
        positionals = out.split("positional arguments:")[-1].split("options:")[0] if "positional" in out else ""
        for block in (positionals, options):
            entries = [line for line in block.splitlines() if line.startswith("  ") and not line.startswith("   ")]
            for entry in entries:
                name = entry.split()[0]
                if name in ("-h,",):
                    continue
                # a described argument has text after its name (on the same or the next, deeper-indented line)
                described = len(entry.split("  ")) > 2 or block.split(entry, 1)[1].startswith("\n      ")
                assert described, (command, entry)
    say = _help(capsys, "say", "--help")
    assert "e.g. -o hello.mp4" in say and "欢迎来到直播间" in say and "--no-subtitles" in say


def test_panel_command_puts_the_token_in_the_fragment_never_the_query():
    proc = _cli("panel", "--print", "--port", "9123", env={"STREAMER_CONTROL_TOKEN": "s3cret/+令牌"})
    url = proc.stdout.strip()
    assert proc.returncode == 0 and url.startswith("http://127.0.0.1:9123/#token=")
    assert "?" not in url and url.endswith("s3cret%2F%2B%E4%BB%A4%E7%89%8C")


def test_doctor_lists_the_operator_outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    cfg = write_config(tmp_path, '[outputs.rtmp]\nenabled = true\nurl = "rtmp://127.0.0.1:9/live/{key}"\n'
                                 'key_env = "OPERATOR_TEST_KEY"\n[outputs.audio_device]\nenabled = true\n'
                                 'device = "CABLE Input"\n')
    lines = []
    run_doctor(load_settings(cfg, environ={}), lines.append)
    text = "\n".join(lines)
    assert "global hotkeys" in text and "[control.hotkeys] enabled = true" in text
    assert "MISSING  RTMP push" in text and "OPERATOR_TEST_KEY" in text
    assert "OK       stage page (WebRTC)" in text and "OBS websocket" in text
    assert "MISSING  sound output device" in text and "VB-Cable" in text
