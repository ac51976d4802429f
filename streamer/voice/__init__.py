"""Voice: text-to-speech engines behind one interface, and speech recognition."""

from streamer.voice.base import TTS, TTSError, create_tts

__all__ = ["TTS", "TTSError", "create_tts"]
