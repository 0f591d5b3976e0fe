"""The appearance families by name: each renders a synthetic SGUS frame with its exact mask.

Three families, written with different rendering code, so that a network trained on some and
tested on another measures generalisation across appearance, not memorisation of one renderer:

* ``phantom``: the realistic raw-screenshot phantom of the demo data (``phantom.py``);
* ``randomised``: SynthSeg-style random label maps with random appearance per tissue
  (``randomised.py``);
* ``scatter``: point scatterers convolved with an ultrasound point-spread function, envelope
  detected and log compressed (``scatter.py``).

Every family's ``render(seed, *, size=None, devita=None)`` returns a
:class:`~sgus_core.synthesis.family.SynthFrame`; ``size`` is ``(width, height)``.
"""

from __future__ import annotations

from collections.abc import Callable

from sgus_core.synthesis import randomised, scatter
from sgus_core.synthesis.family import SynthFrame
from sgus_core.synthesis.phantom import PhantomConfig, generate_frame

Render = Callable[..., SynthFrame]


def render_phantom(
    seed: int, *, size: tuple[int, int] | None = None, devita: int | None = None
) -> SynthFrame:
    """A realistic phantom screenshot (``phantom.generate_frame``) as a :class:`SynthFrame`."""
    config = PhantomConfig(frame_size=size) if size is not None else None
    frame = generate_frame(seed, devita=devita, config=config)
    return SynthFrame(frame.image, frame.mask, frame.devita, frame.fov, "phantom", int(seed))


FAMILIES: dict[str, Render] = {
    "phantom": render_phantom,
    "randomised": randomised.render,
    "scatter": scatter.render,
}
"""Every appearance family by name."""


def family(name: str) -> Render:
    """The render function of family ``name``.

    Raises:
        ValueError: an unknown family (the message lists them).
    """
    if name not in FAMILIES:
        raise ValueError(f"unknown appearance family {name!r}; choose from {', '.join(FAMILIES)}")
    return FAMILIES[name]
