"""The registry's error answers: Confluent's HTTP status, error code and wording."""

from __future__ import annotations

from producer.contract.compat import CompatibilityLevel

__all__ = ["CONTEXT", "RestError"]

CONTEXT = "."  # the only context served here, as Confluent names it in messages


class RestError(Exception):
    """An error answer of the REST API: HTTP status, Confluent error code and message.

    Raised inside the server only; it becomes the JSON body Confluent answers with.
    (Clients of the registry see ``producer.errors.RegistryError`` instead.)
    """

    def __init__(self, http_status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code
        self.message = message


def subject_not_found(subject: str) -> RestError:
    return RestError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(subject: str, version: object) -> RestError:
    return RestError(404, 40402, f"Version {version} not found for subject '{subject}'.")


def schema_not_found(detail: str = "Schema not found") -> RestError:
    return RestError(404, 40403, detail)


def not_permitted(message: str) -> RestError:
    return RestError(422, 42205, message)


def read_only(subject: str | None) -> RestError:
    if subject is None:
        return not_permitted(f"The registry (context {CONTEXT}) is in read-only mode")
    return not_permitted(f"Subject {subject} in context {CONTEXT} is in read-only mode")


def invalid_schema(problem: str) -> RestError:
    return RestError(422, 42201, f"Invalid schema: {problem}")


def invalid_level(level: object) -> RestError:
    return RestError(
        422,
        42203,
        f"Invalid compatibility level {level!r}. Valid values are "
        + ", ".join(x.value for x in CompatibilityLevel),
    )


def invalid_version(version: str) -> RestError:
    return RestError(
        422,
        42202,
        f"The specified version '{version}' is not a valid version id. Allowed values are "
        'between [1, 2^31-1] and the string "latest"',
    )
