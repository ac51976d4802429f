"""Personas: what the host says. The scripted persona is the offline default and the LLM fallback."""

from streamer.persona.catalogue import Catalogue, Product, load_catalogue
from streamer.persona.scripted import ScriptedPersona

__all__ = ["Catalogue", "Product", "ScriptedPersona", "load_catalogue"]
