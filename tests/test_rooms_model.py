"""The rooms file: what each room gets from its name, what two rooms may never share, and which
errors stop everything (a contradictory rooms file) versus one room (its invalid profile)."""

import pytest

from streamer.config import load_settings
from streamer.rooms.model import RoomsError, load_rooms
from tests.conftest import REPO

PROFILE = str(REPO / "config" / "default.toml")


def rooms_file(tmp_path, body, name="rooms.toml"):
    p = tmp_path / name
    p.write_text(f'[supervisor]\ndir = "{tmp_path / "rooms"}"\n' + body, encoding="utf-8")
    return p


TWO_ROOMS = f"""
[[room]]
name = "coffee"
profile = "{PROFILE}"

[[room]]
name = "咖啡店"
profile = "{PROFILE}"
set = {{ "persona.name" = "小乔", "stream.language" = "zh" }}
"""


def room_settings(spec):
    """The profile exactly as the room process will load it (its environment applied)."""
    return load_settings(spec.profile, environ=spec.env)


def test_each_room_gets_its_own_ports_folder_database_and_microphone_from_its_name(tmp_path):
    plan = load_rooms(rooms_file(tmp_path, TWO_ROOMS))
    en, zh = plan.get("coffee"), plan.get("咖啡店")
    assert not en.error and not zh.error
    s_en, s_zh = room_settings(en), room_settings(zh)
    # the shared profile says port 8765 and websocket 8766 for both: each room gets its own instead
    assert s_en.control.port == en.control_port != s_zh.control.port == zh.control_port
    ws_en = [c.port for c in s_en.chat if c.type == "websocket"]
    ws_zh = [c.port for c in s_zh.chat if c.type == "websocket"]
    assert ws_en and ws_zh and set(ws_en).isdisjoint(ws_zh) and 8766 not in ws_en + ws_zh
    assert s_en.director.state_db == str(tmp_path / "rooms" / "coffee" / "state" / "streamer.db")
    assert s_zh.director.state_db == str(tmp_path / "rooms" / "咖啡店" / "state" / "streamer.db")
    assert s_en.outputs.recording.dir != s_zh.outputs.recording.dir
    assert s_en.outputs.microphone.sink == "streamer_mic_coffee"
    assert s_zh.outputs.microphone.sink.isascii() and s_zh.outputs.microphone.sink != "streamer_mic"
    assert s_zh.persona.name == "小乔" and s_zh.stream.language == "zh" and s_en.persona.name == "Joe"
    # derived from the name: the same in every run and whatever the order of the rooms in the file
    reordered = TWO_ROOMS.split("[[room]]")
    again = load_rooms(rooms_file(tmp_path, "[[room]]".join([reordered[0], reordered[2], reordered[1]]), "b.toml"))
    assert again.get("coffee").listens == en.listens and again.get("咖啡店").listens == zh.listens


def test_two_rooms_on_one_port_database_or_recording_folder_are_refused(tmp_path):
    same_port = f"""
[[room]]
name = "a"
profile = "{PROFILE}"
control_port = 19001
[[room]]
name = "b"
profile = "{PROFILE}"
set = {{ "chat.1.port" = 19001 }}
"""
    with pytest.raises(RoomsError) as e:
        load_rooms(rooms_file(tmp_path, same_port))
    assert "'a'" in str(e.value) and "'b'" in str(e.value) and "port 19001" in str(e.value)

    db = tmp_path / "shared.db"
    same_db = f"""
[[room]]
name = "a"
profile = "{PROFILE}"
state_db = "{db}"
[[room]]
name = "店铺二"
profile = "{PROFILE}"
set = {{ "director.state_db" = "{db}" }}
"""
    with pytest.raises(RoomsError) as e:
        load_rooms(rooms_file(tmp_path, same_db))
    assert "'a'" in str(e.value) and "'店铺二'" in str(e.value) and f"state database {db}" in str(e.value)

    same_recordings = f"""
[[room]]
name = "a"
profile = "{PROFILE}"
set = {{ "outputs.recording.dir" = "{tmp_path / 'rec'}" }}
[[room]]
name = "b"
profile = "{PROFILE}"
set = {{ "outputs.recording.dir" = "{tmp_path / 'rec'}" }}
"""
    with pytest.raises(RoomsError, match="recording folder"):
        load_rooms(rooms_file(tmp_path, same_recordings))

    on_the_api_port = f"""
[supervisor]
port = 19500
[[room]]
name = "a"
profile = "{PROFILE}"
control_port = 19500
"""
    with pytest.raises(RoomsError, match="rooms control API"):
        _load_without_dir(tmp_path, on_the_api_port)


def _load_without_dir(tmp_path, body):
    p = tmp_path / "plain.toml"
    p.write_text(body, encoding="utf-8")
    return load_rooms(p)


def test_an_invalid_profile_fails_only_its_room_with_the_profile_error(tmp_path):
    body = TWO_ROOMS + f"""
[[room]]
name = "broken"
profile = "{PROFILE}"
set = {{ "stream.fps" = "fast" }}

[[room]]
name = "missing"
profile = "nowhere.toml"
"""
    plan = load_rooms(rooms_file(tmp_path, body))
    assert [r.name for r in plan.valid] == ["coffee", "咖啡店"]
    broken, missing = plan.get("broken"), plan.get("missing")
    assert "stream.fps" in broken.error and "'fast'" in broken.error and "set = {stream.fps}" in broken.error
    assert "nowhere.toml" in missing.error and "not found" in missing.error


@pytest.mark.parametrize("body, expected", [
    ('[[room]]\nname = "a"\nprofile = "x.toml"\n[[room]]\nname = "A"\nprofile = "x.toml"\n', "two rooms are named 'A'"),
    ('[[room]]\nname = "../etc"\nprofile = "x.toml"\n', "room.0.name"),
    ('[[room]]\nname = "a"\nprofile = "x.toml"\nvolume = 3\n', "room.0.volume"),
    ('[[room]]\nname = "a"\nprofile = "x.toml"\nset = { "persona" = { name = "x" } }\n', "room.0.set"),
    ('[lipsync]\nbatch_wait_ms = "soon"\n[[room]]\nname = "a"\nprofile = "x.toml"\n', "lipsync.batch_wait_ms"),
    ("room = []\n", "at least one"),
])
def test_a_malformed_rooms_file_names_the_file_and_the_key(tmp_path, body, expected):
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RoomsError) as e:
        load_rooms(path)
    assert str(path) in str(e.value) and expected in str(e.value)


def test_the_example_rooms_file_loads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = load_rooms(REPO / "config" / "rooms.toml")
    assert plan.rooms and not [r.error for r in plan.rooms if r.error]
    assert any(not r.name.isascii() for r in plan.rooms)  # a Chinese room next to an English one
    zh = next(r for r in plan.rooms if not r.name.isascii())
    assert room_settings(zh).persona.name == "小乔"
