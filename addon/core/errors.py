"""Domain exceptions. Each failure the user can cause has its own class; the
CLI and Blender operators turn any `UpliftError` into a one-line message."""


class UpliftError(Exception):
    """Base of every error Uplift reports to the user (never a traceback)."""


class SplatFormatError(UpliftError):
    """A splat file (.ply, .splat, .spz) that cannot be read or written as 3D Gaussians."""


class PlyFormatError(SplatFormatError):
    """A PLY file that is not a readable 3DGS splat file."""


class MeshFormatError(UpliftError):
    """A mesh file that cannot be lifted: unreadable, empty, degenerate, non-finite or too large."""


class ImageFormatError(UpliftError):
    """An image that cannot be decoded, is truncated, empty or too large."""


class ImageTooLargeError(ImageFormatError):
    """An upload or image over the byte or pixel limit (`core.image_io.check_pixel_count`)."""


class MaskError(UpliftError):
    """A mask of the wrong size, or an empty mask."""


class CameraError(UpliftError):
    """A malformed camera record or unusable camera settings."""


class ControlError(UpliftError):
    """Bad deformation controls: no drags, a drag far from the object, …"""


class RenderBackendError(UpliftError):
    """A renderer backend was requested that cannot run here."""


class BackendUnavailableError(UpliftError):
    """A model backend cannot load: package missing, weights path wrong, …"""


class BackendFailedError(UpliftError):
    """A model backend failed while running (out of memory, bad output, …)."""


class ConfigError(UpliftError):
    """A configuration value out of its valid range."""


class OutputWriteError(UpliftError):
    """An output file that cannot be written (missing folder, no permission, disk full, ...)."""


class DependencyError(UpliftError):
    """Python packages that cannot be installed or imported here (pip failed, offline, wrong Python)."""


class CancelledError(UpliftError):
    """The user cancelled a long step (Esc) before it wrote anything."""
