"""The package's exceptions; each maps once to a one-line CLI error or to the reference error envelope."""

from __future__ import annotations


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (a driver's original error when wrapped), for one-line errors."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class LearnaggError(Exception):
    """Base class: a failure with a one-line message meant for the user."""


class ConfigurationError(LearnaggError):
    """A setting is invalid or a configured backend cannot be loaded."""


class StoreUnavailable(LearnaggError):
    """The database cannot be reached or used."""


class InputError(LearnaggError):
    """A file or argument given by the user is invalid."""


class NotFound(LearnaggError):
    """A requested object does not exist."""


# The reference error codes and messages, spelled exactly as the reference platform does (docs/api.md#errors,
# docs/reference/compatibility.md#14).
ERROR_CODES: dict[str, tuple[int, str]] = {
    "INVALID_REQUESTED_DATA": (400, "Requested data for this operation is not valid."),
    "GROUP_ID_MISSING": (400, "GroupId is mandatory."),
    "ACTIVITY_ID_MISSING": (400, "ActivityId is mandatory."),
    "ACTIVITY_TYPE_MISSING": (400, "ActivityType is mandatory."),
    "MANDATORY_PARAMETER_MISSING": (400, "Mandatory parameter {name} is missing."),
    "DATA_TYPE_ERROR": (400, "Data type of {name} should be {type}"),
    "INVALID_PARAMETER_VALUE": (400, "Invalid value {value} for parameter {name}. Please provide a valid value."),
    "DATE_FORMAT_ERRROR": (400, "Date format error."),
    "COURSE_ID_REQUIRED_ERROR": (400, "Course id is mandatory."),
    "CONTENT_ID_REQUIRED_ERROR": (400, "Content id is mandatory."),
    "CONTENT_STATUS_MISSING_ERROR": (400, "content status is required ."),
    "ATTEMPTED_DATE_REQUIRED": (400, "Attempted data is required."),
    "COURSE_BATCH_ID_MISSING": (400, "Course batch Id required"),
    "USERID_MISSING": (400, "UserId is mandatory."),
    "ATTEMPT_ID_REQUIRED_ERROR": (400, "Please provide attempt id."),
    "EVENTS_DATA_MISSING": (400, "Events array is mandatory"),
    "USER_ALREADY_ENROLLED_COURSE": (400, "User has already enrolled this course."),
    "USER_NOT_ENROLLED_COURSE": (400, "User is not enrolled in this course."),
    "USER_ALREADY_COMPLETED_COURSE": (400, "User has already completed this course."),
    "BATCH_ENDED": (400, "Batch has ended."),
    "ENROLLMENT_ENDED": (400, "Enrollment period has ended."),
    "UNAUTHORIZED_USER": (403, "You are not authorized."),
    "GROUP_NOT_FOUND": (404, "Group does not exist."),
    "COURSE_NOT_FOUND": (404, "Course does not exist."),
    "BATCH_NOT_FOUND": (404, "Batch does not exist."),
    "USER_NOT_FOUND": (404, "User does not exist."),
    "RESOURCE_NOT_FOUND": (404, "Requested resource is not found."),
    "METHOD_NOT_ALLOWED": (405, "Method is not allowed for this resource."),
    "REQUEST_TOO_LARGE": (413, "Request body exceeds {limit} bytes."),
    "ERR_CALLING_GROUOP_API": (500, "Error while calling group api."),
    "INTERNAL_ERROR": (500, "Process failed,please try again later."),
}


class ApiError(LearnaggError):
    """A refusal answered with the reference error envelope (docs/api.md#errors): HTTP status, code and message."""

    def __init__(self, code: str | None, message: str, status: int) -> None:
        """Use :func:`api_error` to build one from the code table."""
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def api_error(code: str, status: int | None = None, **params: object) -> ApiError:
    """The error for a reference code, its message filled with ``params`` (``name``, ``type``, ``value``).

    Args:
        code: a key of :data:`ERROR_CODES`.
        status: overrides the code's HTTP status (``UNAUTHORIZED_USER`` is 401 without identity, 403 otherwise).
        **params: values for the message placeholders.
    """
    default_status, template = ERROR_CODES[code]
    return ApiError(code, template.format(**params), status or default_status)


def unauthorized(status: int = 403) -> ApiError:
    """``UNAUTHORIZED_USER``: 401 when the caller has no valid identity, 403 when the identity may not do this."""
    return api_error("UNAUTHORIZED_USER", status)
