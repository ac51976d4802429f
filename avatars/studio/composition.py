"""What a lip-sync host picture needs, said to Stable Diffusion.

Wav2Lip and the procedural mouth both want one frontal face, centred, the mouth visible and closed
(it is opened by the renderer), even light and a plain background (neutral, or flat green for the
chroma key). The user's prompt says who the host is; these additions say how the picture is framed,
and the negative prompt pushes away what breaks lip-sync (profiles, hands or microphones over the
mouth, hair over the face, several people, text).

SD 1.x/SDXL read at most 77 tokens per prompt: the user's words come first so the framing is what
gets cut if anything must be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Background = Literal["neutral", "green"]

FRAMING = ("head and shoulders portrait, looking straight at the camera, frontal face, centered, "
           "mouth closed and clearly visible, neutral expression, soft even lighting, sharp focus")
BACKDROP = {
    "neutral": "plain light grey studio background",
    "green": "plain solid bright green background, chroma key green screen",
}
AVOID = ("profile, side view, looking away, tilted head, hand on face, hands, microphone, mask, covered mouth, "
         "hair over face, sunglasses, open mouth, cropped head, out of frame, multiple people, two people, text, "
         "watermark, logo, busy background, blurry, lowres, deformed face, bad anatomy")


@dataclass(frozen=True)
class PortraitRequest:
    prompt: str
    """What the model is given: the user's description plus the framing."""
    negative: str
    width: int
    height: int
    steps: int
    guidance: float
    description: str
    """The user's own words, kept for avatar.toml."""
    background: Background = "neutral"


def compose(description: str, negative: str = "", background: Background = "neutral", *, width: int,
            height: int, steps: int, guidance: float) -> PortraitRequest:
    """The user's description framed as a lip-sync portrait; their negative prompt extends ours."""
    words = " ".join(description.split()).strip(" ,.")
    if not words:
        from avatars.studio import StudioError

        raise StudioError("the prompt is empty: describe the host, e.g. --prompt \"a smiling young woman with short "
                          "black hair, white blouse\"")
    prompt = f"{words}, {FRAMING}, {BACKDROP[background]}"
    avoid = AVOID if background == "neutral" else AVOID.replace("busy background", "busy background, green clothes")
    neg = f"{negative.strip(' ,')}, {avoid}" if negative.strip(" ,") else avoid
    return PortraitRequest(prompt, neg, width, height, steps, guidance, words, background)
