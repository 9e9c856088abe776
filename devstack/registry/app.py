"""The HTTP face of the registry: Confluent's REST paths, shapes and content type.

Every handler translates a request into one :class:`RegistryStore` call and its
answer (or :class:`RestError`) into Confluent's JSON. ``/openapi.json`` serves the
description in ``openapi.py``.
"""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devstack.registry.errors import RestError
from devstack.registry.openapi import openapi_document
from devstack.registry.schemas import MAX_ID, RegisteredVersion
from devstack.registry.store import RegistryStore

__all__ = ["CONTENT_TYPE", "create_app"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
# What Confluent answers in (the first is its default), and what it reads.
ANSWER_TYPES = (CONTENT_TYPE, "application/vnd.schemaregistry+json", "application/json")
REQUEST_TYPES = (*ANSWER_TYPES, "application/octet-stream")
MAX_BODY = 16 * 1024 * 1024  # bytes; a schema over 1 MiB is refused with 42209 before this

T = TypeVar("T")


class ConfluentJSON(JSONResponse):
    media_type = CONTENT_TYPE


def _error(status: int, code: int, message: str) -> Response:
    return ConfluentJSON({"error_code": code, "message": message}, status_code=status)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except json.JSONDecodeError as exc:
        raise RestError(400, 400, f"Unrecognized request body: {exc.msg}") from exc
    except (RecursionError, UnicodeDecodeError) as exc:  # nested too deep, or not UTF-8
        raise RestError(400, 400, "Unrecognized request body: unreadable JSON") from exc


def create_app(store: RegistryStore, basic_auth: str | None = None) -> Starlette:
    """The registry as an ASGI app over ``store``; ``basic_auth`` is ``user:password``."""

    async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(fn, *args, **kwargs)

    def subject_of(request: Request) -> str:
        return str(request.path_params["subject"])

    async def root(request: Request) -> Response:
        """Health check."""
        return ConfluentJSON({})

    async def schema_types(request: Request) -> Response:
        """Supported schema types."""
        return ConfluentJSON(["AVRO"])

    def schema_id(request: Request) -> int:
        text = str(request.path_params["id"])
        try:
            number = int(text)
        except ValueError:
            raise RestError(404, 40403, "Schema not found") from None
        if not -MAX_ID <= number <= MAX_ID:  # an id is a Java int; SQLite's would overflow
            raise RestError(404, 40403, f"Schema {text} not found")
        return number

    def schema_string(found: RegisteredVersion, with_subject: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        if with_subject and found.subject:
            answer.update(subject=found.subject, version=found.version)
        return {
            **answer,
            "schemaType": "AVRO",
            **found.extras(),
            "schema": found.schema,
            "guid": found.guid,
        }

    async def get_schema(request: Request) -> Response:
        """Schema by global id, soft-deleted too (with subject and version for ?subject=)."""
        subject = request.query_params.get("subject") or None
        found = await call(store.schema_by_id, schema_id(request), subject)
        return ConfluentJSON(schema_string(found, subject is not None))

    async def get_schema_only(request: Request) -> Response:
        """The raw schema text of a global id."""
        found = await call(store.schema_by_id, schema_id(request))
        return Response(found.schema, media_type=CONTENT_TYPE)

    async def get_schema_by_guid(request: Request) -> Response:
        """Schema by GUID."""
        found = await call(store.schema_by_guid, str(request.path_params["guid"]))
        return ConfluentJSON(schema_string(found, False))

    async def get_schema_versions(request: Request) -> Response:
        """Subject-version pairs that use a schema id."""
        pairs = await call(store.versions_of_id, schema_id(request), _flag(request, "deleted"))
        return ConfluentJSON([{"subject": s, "version": v} for s, v in pairs])

    async def get_schema_subjects(request: Request) -> Response:
        """Subjects that use a schema id."""
        pairs = await call(store.versions_of_id, schema_id(request), _flag(request, "deleted"))
        return ConfluentJSON(sorted({s for s, _ in pairs}))

    async def list_subjects(request: Request) -> Response:
        """Subject names (deleted=true includes soft-deleted ones)."""
        prefix = request.query_params.get("subjectPrefix", "")
        if prefix in (":*:", ":.:"):  # Confluent's "every context" wildcard
            prefix = ""
        found = await call(
            store.subjects, _flag(request, "deleted"), prefix, _flag(request, "deletedOnly")
        )
        return ConfluentJSON(found)

    async def list_versions(request: Request) -> Response:
        """Versions of a subject."""
        versions = await call(
            store.versions,
            subject_of(request),
            _flag(request, "deleted"),
            _flag(request, "deletedOnly"),
        )
        return ConfluentJSON(versions)

    async def register(request: Request) -> Response:
        """Register a schema under a subject (idempotent)."""
        body = await _body(request)
        registered = await call(
            store.register, subject_of(request), body, _flag(request, "normalize")
        )
        return ConfluentJSON(registered.registered_json())

    async def lookup(request: Request) -> Response:
        """Look a schema up under a subject."""
        body = await _body(request)
        found = await call(
            store.lookup,
            subject_of(request),
            body,
            _flag(request, "normalize"),
            _flag(request, "deleted"),
        )
        return ConfluentJSON(found.to_json())

    async def latest_with_metadata(request: Request) -> Response:
        """The newest version of a subject whose metadata has every key=value asked."""
        keys = request.query_params.getlist("key")
        values = request.query_params.getlist("value")
        if len(keys) != len(values):
            raise RestError(422, 42201, "Each metadata key needs one value")
        found = await call(
            store.latest_with_metadata,
            subject_of(request),
            dict(zip(keys, values, strict=True)),
            _flag(request, "deleted"),
        )
        return ConfluentJSON(found.to_json())

    async def list_schemas(request: Request) -> Response:
        """Every subject-version (subjectPrefix, deleted, latestOnly)."""
        found = await call(
            store.every_schema,
            request.query_params.get("subjectPrefix", ""),
            _flag(request, "deleted"),
            _flag(request, "latestOnly"),
        )
        return ConfluentJSON([v.to_json() for v in found])

    async def referenced_by(request: Request) -> Response:
        """Ids of the schemas that reference one version."""
        ids = await call(store.referenced_by, subject_of(request), request.path_params["version"])
        return ConfluentJSON(ids)

    async def delete_subject(request: Request) -> Response:
        """Soft-delete a subject, or hard-delete it with permanent=true."""
        versions = await call(
            store.delete_subject, subject_of(request), _flag(request, "permanent")
        )
        return ConfluentJSON(versions)

    async def get_version(request: Request) -> Response:
        """One version of a subject (a number, latest or -1)."""
        found = await call(
            store.get_version,
            subject_of(request),
            request.path_params["version"],
            _flag(request, "deleted"),
        )
        return ConfluentJSON(found.to_json())

    async def get_version_schema(request: Request) -> Response:
        """The raw schema text of one version."""
        found = await call(
            store.get_version,
            subject_of(request),
            request.path_params["version"],
            _flag(request, "deleted"),
        )
        return Response(found.schema, media_type=CONTENT_TYPE)

    async def delete_version(request: Request) -> Response:
        """Soft-delete one version, or hard-delete it with permanent=true."""
        version = await call(
            store.delete_version,
            subject_of(request),
            request.path_params["version"],
            _flag(request, "permanent"),
        )
        return ConfluentJSON(version)

    async def compatibility(request: Request) -> Response:
        """Test a schema against one version, or against what the level names."""
        body = await _body(request)
        verbose = _flag(request, "verbose")
        try:
            messages = await call(
                store.test_compatibility,
                subject_of(request),
                body,
                request.path_params.get("version"),
                _flag(request, "normalize"),
            )
        except RestError as exc:
            if not (verbose and exc.error_code == 42201):
                raise
            messages = [exc.message]  # Confluent: a verbose check explains, with 200
        answer: dict[str, Any] = {"is_compatible": not messages}
        if verbose:
            answer["messages"] = messages
        return ConfluentJSON(answer)

    def config_subject(request: Request) -> str | None:
        subject = request.path_params.get("subject")
        return str(subject) if subject is not None else None

    async def config(request: Request) -> Response:
        """Global or subject config: compatibility level and normalize (GET, PUT, DELETE)."""
        subject = config_subject(request)
        if request.method == "PUT":
            body = await _body(request)
            return ConfluentJSON(await call(store.set_config, body, subject))
        if request.method == "DELETE":
            return ConfluentJSON(await call(store.delete_config, subject))
        found = await call(store.get_config, subject, _flag(request, "defaultToGlobal"))
        return ConfluentJSON(found)

    async def mode(request: Request) -> Response:
        """Global or subject mode (READWRITE, READONLY, READONLY_OVERRIDE, IMPORT, FORWARD)."""
        subject = config_subject(request)
        if request.method == "PUT":
            body = await _body(request)
            if not isinstance(body, dict):
                raise RestError(422, 42204, "Invalid mode: the body needs a 'mode'")
            changed = await call(store.set_mode, body.get("mode"), subject, _flag(request, "force"))
            return ConfluentJSON({"mode": changed})
        if request.method == "DELETE":
            return ConfluentJSON({"mode": await call(store.delete_mode, subject)})
        current = await call(store.get_mode, subject, _flag(request, "defaultToGlobal"))
        return ConfluentJSON({"mode": current})

    async def contexts(request: Request) -> Response:
        """Contexts (only the default one)."""
        return ConfluentJSON(["."])

    async def associations(request: Request) -> Response:
        """Associations are not kept here, so clients fall back to TopicNameStrategy."""
        return ConfluentJSON([])

    async def openapi(request: Request) -> Response:
        return JSONResponse(openapi_document())

    routes = [
        Route("/", root, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        Route("/schemas", list_schemas, methods=["GET"]),
        Route("/schemas/types", schema_types, methods=["GET"]),
        Route("/schemas/ids/{id}", get_schema, methods=["GET"]),
        Route("/schemas/ids/{id}/schema", get_schema_only, methods=["GET"]),
        Route("/schemas/guids/{guid}", get_schema_by_guid, methods=["GET"]),
        Route("/schemas/ids/{id}/versions", get_schema_versions, methods=["GET"]),
        Route("/schemas/ids/{id}/subjects", get_schema_subjects, methods=["GET"]),
        Route("/subjects", list_subjects, methods=["GET"]),
        Route("/subjects/{subject}", lookup, methods=["POST"]),
        Route("/subjects/{subject}", delete_subject, methods=["DELETE"]),
        Route("/subjects/{subject}/versions", list_versions, methods=["GET"]),
        Route("/subjects/{subject}/versions", register, methods=["POST"]),
        Route("/subjects/{subject}/versions/{version}", get_version, methods=["GET"]),
        Route("/subjects/{subject}/versions/{version}", delete_version, methods=["DELETE"]),
        Route("/subjects/{subject}/versions/{version}/schema", get_version_schema, methods=["GET"]),
        Route(
            "/subjects/{subject}/versions/{version}/referencedby", referenced_by, methods=["GET"]
        ),
        Route("/subjects/{subject}/metadata", latest_with_metadata, methods=["GET"]),
        Route("/compatibility/subjects/{subject}/versions", compatibility, methods=["POST"]),
        Route(
            "/compatibility/subjects/{subject}/versions/{version}", compatibility, methods=["POST"]
        ),
        Route("/config", config, methods=["GET", "PUT", "DELETE"]),
        Route("/config/{subject}", config, methods=["GET", "PUT", "DELETE"]),
        Route("/mode", mode, methods=["GET", "PUT", "DELETE"]),
        Route("/mode/{subject}", mode, methods=["GET", "PUT", "DELETE"]),
        Route("/contexts", contexts, methods=["GET"]),
        Route("/associations/resources/{namespace}/{name}", associations, methods=["GET"]),
    ]

    async def registry_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RestError)
        return _error(exc.http_status, exc.error_code, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, exc.status_code, f"HTTP {exc.status_code} {exc.detail}")

    middleware = [Middleware(ContentNegotiation)]
    if basic_auth:
        middleware.append(Middleware(BasicAuth, credentials=basic_auth))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={RestError: registry_error, HTTPException: http_error},
    )
    return app


class BasicAuth(BaseHTTPMiddleware):
    """HTTP basic auth for every path but the health check.

    A request without the right credentials gets what Confluent's registry answers:
    HTTP 401 and ``{"error_code": 401, "message": "Unauthorized"}`` (its Java client
    reports "Unauthorized; error code: 401"), with a ``WWW-Authenticate`` challenge.
    """

    def __init__(self, app: Any, credentials: str) -> None:
        super().__init__(app)
        self._expected = "Basic " + base64.b64encode(credentials.encode()).decode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path == "/":
            return await call_next(request)
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), self._expected.encode()):
            denied = _error(401, 401, "Unauthorized")
            denied.headers["WWW-Authenticate"] = 'Basic realm="SchemaRegistry"'
            return denied
        return await call_next(request)


def _media_types(header: str) -> list[str]:
    return [part.split(";")[0].strip().lower() for part in header.split(",") if part.strip()]


class ContentNegotiation:
    """Confluent's media types: a body of another type is 415, an ``Accept`` that none of
    its JSON types satisfies is 406, and the answer is in the type that was asked for.
    A body over ``MAX_BODY`` is refused (413) before it is read."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        answer_type = self._answer_type(headers.get("accept", ""))
        problem: tuple[int, str] | None = None
        if answer_type is None:
            problem = (406, "HTTP 406 Not Acceptable")
        elif scope["method"] in ("POST", "PUT"):
            sent = _media_types(headers.get("content-type", ""))
            if sent and sent[0] not in REQUEST_TYPES:
                problem = (415, "HTTP 415 Unsupported Media Type")
            elif int(headers.get("content-length", "0") or 0) > MAX_BODY:
                problem = (413, "HTTP 413 Payload Too Large")
        if problem is not None:
            await _error(problem[0], problem[0], problem[1])(scope, receive, send)
            return
        chosen = (answer_type or CONTENT_TYPE).encode("latin-1")

        async def send_as_asked(message: Any) -> None:
            if message["type"] == "http.response.start" and chosen != CONTENT_TYPE.encode():
                message["headers"] = [
                    (
                        k,
                        chosen
                        if k.lower() == b"content-type" and v == CONTENT_TYPE.encode()
                        else v,
                    )
                    for k, v in message["headers"]
                ]
            await send(message)

        await self.app(scope, receive, send_as_asked)

    @staticmethod
    def _answer_type(accept: str) -> str | None:
        wanted = _media_types(accept)
        if not wanted:
            return CONTENT_TYPE
        for media_type in wanted:
            if media_type in ANSWER_TYPES:
                return media_type
            if media_type in ("*/*", "application/*"):
                return CONTENT_TYPE
        return None
