import pytest

from streamer.config import ConfigError, load_settings
from tests.conftest import REPO, write_config


def test_default_profile_loads_and_needs_nothing():
    s = load_settings(REPO / "config" / "default.toml", environ={})
    assert s.stream.fps == 25 and s.persona.kind == "scripted"
    assert [c.type for c in s.chat] == ["replay", "websocket"]
    assert s.resolve(s.chat[0].path).is_file()
    assert s.control.host == "127.0.0.1"


def test_wrong_value_names_file_key_and_expectation(tmp_path):
    path = write_config(tmp_path, "[stream]\nfps = \"fast\"\n")
    with pytest.raises(ConfigError) as e:
        load_settings(path, environ={})
    msg = str(e.value)
    assert str(path) in msg and "stream.fps" in msg and "integer" in msg and "'fast'" in msg


def test_unknown_key_and_bad_source_type_are_reported(tmp_path):
    path = write_config(tmp_path, "[stream]\nfsp = 30\n[[chat]]\ntype = \"myspace\"\n")
    with pytest.raises(ConfigError) as e:
        load_settings(path, environ={})
    msg = str(e.value)
    assert "stream.fsp" in msg and "Extra inputs are not permitted" in msg
    assert "chat.0" in msg and "'myspace'" in msg


def test_toml_syntax_error_names_file(tmp_path):
    path = write_config(tmp_path, "[stream\nfps = 25\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_settings(path, environ={})


def test_control_api_cannot_bind_beyond_loopback(tmp_path):
    path = write_config(tmp_path, "[control]\nhost = \"0.0.0.0\"\n")
    with pytest.raises(ConfigError, match="control.host"):
        load_settings(path, environ={})


def test_environment_overrides(tmp_path):
    path = write_config(tmp_path, "[[chat]]\ntype = \"websocket\"\nport = 1\n")
    s = load_settings(path, environ={"STREAMER__CONTROL__PORT": "9123", "STREAMER__CHAT__0__PORT": "4444",
                                     "STREAMER__VOICE__ESPEAK_VOICE": "cmn-latn-pinyin"})
    assert s.control.port == 9123 and s.chat[0].port == 4444 and s.voice.espeak_voice == "cmn-latn-pinyin"
    with pytest.raises(ConfigError, match="STREAMER__STREAM__FPS.*|stream.fps"):
        load_settings(path, environ={"STREAMER__STREAM__FPS": "0"})
