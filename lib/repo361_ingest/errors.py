"""One exception family for the whole job.

Every message names what was wrong (the config key, the page, the file) so that the one line the
command prints on stderr is enough to act on. Messages never carry secrets: callers pass file names
and redacted URLs, never the signed URL or a token.
"""

from __future__ import annotations


class IngestError(Exception):
    """Base class: anything the job reports as a failed run."""


class ConfigError(IngestError):
    """A configuration key is missing, unknown or has a bad value."""


class AuthError(IngestError):
    """The token endpoint refused the credentials or answered something unusable."""


class ApiError(IngestError):
    """The export API failed or answered something that is not the documented page."""


class PageFormatError(ApiError):
    """A page body is not the documented JSON (or has an unexpected `format`)."""


class DownloadError(IngestError):
    """A file could not be downloaded intact (after retries and URL renewals)."""


class CorruptFileError(IngestError):
    """A downloaded file is not a valid Avro object container."""


class SchemaConflictError(IngestError):
    """Two writer schemas, or the source and the target, disagree on a field's type."""


class ConcurrentRunError(IngestError):
    """Another run committed to the same target or watermark while this one was running."""


class UnsafeInputError(IngestError):
    """A URL or file name from the API breaks a security rule (scheme, host, path escape, size)."""
