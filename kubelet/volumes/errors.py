"""The one exception volume set-up raises; its text is what the upstream kubelet's FailedMount says."""

from __future__ import annotations


class VolumeError(Exception):
    """A volume could not be set up or torn down.

    ``str(e)`` is the upstream FailedMount event message when raised by ``VolumeManager``
    (``MountVolume.SetUp failed for volume "cfg" : configmap "x" not found``); ``detail`` is the
    part after the colon (``configmap "x" not found``) and ``volume`` the volume's name.
    """

    reason = "FailedMount"

    def __init__(self, message: str, *, volume: str = "", detail: str | None = None) -> None:
        super().__init__(message)
        self.volume = volume
        self.detail = message if detail is None else detail
