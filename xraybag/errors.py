"""User-facing errors.

Every error a user can cause (a bad scene file, an unknown material, a mesh that is not
watertight) is raised as :class:`XraybagError`. The CLI prints ``str(error)`` as one line and
exits with status 2; library callers catch it like any exception.
"""

from __future__ import annotations


class XraybagError(Exception):
    """An error in the user's input, reported as one line: ``where: message``.

    ``where`` is a location such as ``bag.yaml:14:9: objects[2].shape.box.size`` or just a file
    name; it may be ``None`` when the error has no place in a file.
    """

    def __init__(self, message: str, where: str | None = None):
        self.message = " ".join(str(message).split())
        self.where = where
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def at(self, where: str) -> "XraybagError":
        """The same error placed at ``where`` (used when a caller knows the position)."""
        return XraybagError(self.message, where if self.where is None else self.where)
