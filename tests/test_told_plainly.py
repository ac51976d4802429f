"""What a new user meets is told plainly: an empty `say`, doctor's LLM advice, a profile without chat,
and the setup script waiting for another apt-get instead of dying."""

import re
import subprocess
import sys

import pytest

import streamer.doctor as doctor
from streamer.config import load_settings
from tests.conftest import REPO, write_config


@pytest.mark.parametrize("text", ["", "   ", "\u3000\u200b"], ids=["empty", "spaces", "cjk-space-zero-width"])
def test_say_with_nothing_to_say_fails_and_writes_nothing(tmp_path, text):
    out = tmp_path / "x.mp4"
    proc = subprocess.run([sys.executable, "-m", "streamer", "say", text, "-o", str(out)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    assert "nothing to say" in proc.stderr and "empty" in proc.stderr
    assert not out.exists()


def _doctor_lines(settings, only) -> list[str]:
    lines: list[str] = []
    checks = only(settings)
    for c in checks:
        lines.append(f"{'OK' if c.ok else 'MISSING'} {c.component}: {c.detail} | fix: {c.fix}")
    return lines


def _llm_line(monkeypatch, settings, installed: bool) -> str:
    real = doctor._has
    monkeypatch.setattr(doctor, "_has", lambda m: installed if m == "openai" else real(m))
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    [line] = [x for x in _doctor_lines(settings, doctor.check_llm) if "LLM endpoint" in x]
    return line


def test_doctor_offers_the_llm_extra_only_when_it_is_missing(monkeypatch):
    settings = load_settings(REPO / "config" / "default.toml", environ={})
    with_openai = _llm_line(monkeypatch, settings, installed=True)
    assert "pip install" not in with_openai and "OPENAI_BASE_URL" in with_openai
    without = _llm_line(monkeypatch, settings, installed=False)
    assert "pip install 'streamer[llm]'" in without and "not installed" in without


def test_doctor_says_when_a_profile_has_no_chat_source(tmp_path):
    settings = load_settings(write_config(tmp_path, '[persona]\ncatalogue = "{REPO}/config/products/demo.toml"\n'),
                             environ={})
    out: list[str] = []
    doctor.run_doctor(settings, out=out.append)
    [line] = [x for x in out if "chat sources" in x]
    assert line.split()[0] == "MISSING" and "idle scripts" in line
    assert any("[[chat]]" in x for x in out)


def test_setup_script_waits_for_the_dpkg_lock_on_every_apt_get_call():
    script = (REPO / ".ci" / "setup.sh").read_text(encoding="utf-8")
    calls = [line for line in script.splitlines() if re.search(r"\bapt-get\b", line)
             and not line.lstrip().startswith("#") and "say " not in line and "command -v" not in line]
    assert {"update", "install"} <= {w for line in calls for w in ("update", "install") if w in line}
    for call in calls:
        assert re.search(r"-o\s+DPkg::Lock::Timeout=\d{3,}", call), f"apt-get without a lock timeout: {call.strip()}"
