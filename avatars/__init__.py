"""Avatars: portrait assets, their face hints, and renderers that turn speech into mouth motion."""

from avatars.base import Avatar, FaceHints, MouthPose
from avatars.portrait import AvatarError, load_avatar

__all__ = ["Avatar", "AvatarError", "FaceHints", "MouthPose", "load_avatar"]
