"""Typed errors with messages a clinician can act on.

Pages catch :class:`SgusError` at their boundary and show the message; the command line prints it
on one line and exits non-zero.
"""


class SgusError(Exception):
    """Base class of every error the core raises on purpose."""


class ImageReadError(SgusError):
    """A file could not be read as an ultrasound frame (corrupt, unsupported, too large...)."""


class MaskError(SgusError):
    """A mask does not fit its frame (wrong size, unreadable, not binary)."""


class ImportRowError(SgusError):
    """One row of an import could not be taken; the import goes on with the others."""


class StoreError(SgusError):
    """The labels store refused an operation (unknown id, schema too old, ...)."""


class PermissionDenied(SgusError):
    """The signed-in account may not do this."""


class ModelError(SgusError):
    """A model could not be built, loaded or run."""


class ScoreError(SgusError, ValueError):
    """A grade or Hocevar item outside its range, or a gland scored twice."""


class PromptError(SgusError):
    """A box or click prompt that does not fit its frame, or a prompts CSV row that is malformed."""


class SourceError(SgusError):
    """A live source (a capture device, a stream address, a video file) cannot be opened or read."""
