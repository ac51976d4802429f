"""Voice: text-to-speech engines behind one interface, the per-persona chain, and speech recognition."""

from streamer.voice.base import TTS, NothingToSay, Speech, SpeechChunk, TTSError, WordBoundary, create_tts

__all__ = ["TTS", "NothingToSay", "Speech", "SpeechChunk", "TTSError", "WordBoundary", "create_tts"]
