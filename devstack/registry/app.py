"""The HTTP face of the registry: Confluent's REST paths, shapes and content type.

Every handler translates a request into one :class:`RegistryStore` call and its
answer (or :class:`RestError`) into Confluent's JSON. The OpenAPI description at
``/openapi.json`` is generated from the handlers' docstrings.
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
from starlette.schemas import SchemaGenerator

from devstack.registry.store import RegistryStore, RestError

__all__ = ["CONTENT_TYPE", "create_app"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"

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


def create_app(store: RegistryStore, basic_auth: str | None = None) -> Starlette:
    """The registry as an ASGI app over ``store``; ``basic_auth`` is ``user:password``."""

    async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await run_in_threadpool(fn, *args, **kwargs)

    def subject_of(request: Request) -> str:
        return str(request.path_params["subject"])

    async def root(request: Request) -> Response:
        """
        summary: Health check
        responses:
          200: {description: "{}"}
        """
        return ConfluentJSON({})

    async def schema_types(request: Request) -> Response:
        """
        summary: Supported schema types
        responses:
          200: {description: '["AVRO"]'}
        """
        return ConfluentJSON(["AVRO"])

    def schema_id(request: Request) -> int:
        try:
            return int(request.path_params["id"])
        except ValueError:
            raise RestError(404, 40403, "Schema not found") from None

    async def get_schema(request: Request) -> Response:
        """
        summary: Schema text by global id
        responses:
          200: {description: '{"schema": "..."}'}
          404: {description: 40403 schema not found}
        """
        return ConfluentJSON({"schema": await call(store.schema_by_id, schema_id(request))})

    async def get_schema_versions(request: Request) -> Response:
        """
        summary: Subject-version pairs that use a schema id
        responses:
          200: {description: '[{"subject": "...", "version": 1}]'}
          404: {description: 40403 schema not found}
        """
        pairs = await call(store.versions_of_id, schema_id(request), _flag(request, "deleted"))
        return ConfluentJSON([{"subject": s, "version": v} for s, v in pairs])

    async def get_schema_subjects(request: Request) -> Response:
        """
        summary: Subjects that use a schema id
        responses:
          200: {description: '["subject"]'}
          404: {description: 40403 schema not found}
        """
        pairs = await call(store.versions_of_id, schema_id(request), _flag(request, "deleted"))
        return ConfluentJSON(sorted({s for s, _ in pairs}))

    async def list_subjects(request: Request) -> Response:
        """
        summary: Subject names (deleted=true includes soft-deleted ones)
        responses:
          200: {description: '["subject"]'}
        """
        prefix = request.query_params.get("subjectPrefix", "")
        if prefix in (":*:", ":.:"):  # Confluent's "every context" wildcard
            prefix = ""
        return ConfluentJSON(await call(store.subjects, _flag(request, "deleted"), prefix))

    async def list_versions(request: Request) -> Response:
        """
        summary: Versions of a subject
        responses:
          200: {description: "[1, 2]"}
          404: {description: 40401 subject not found}
        """
        versions = await call(store.versions, subject_of(request), _flag(request, "deleted"))
        return ConfluentJSON(versions)

    async def register(request: Request) -> Response:
        """
        summary: Register a schema under a subject (idempotent)
        responses:
          200: {description: '{"id": 1}'}
          409: {description: incompatible with an earlier version}
          422: {description: 42201 invalid schema, 42205 read-only mode}
        """
        body = await _body(request)
        registered = await call(
            store.register, subject_of(request), body, _flag(request, "normalize")
        )
        return ConfluentJSON({"id": registered.schema_id})

    async def lookup(request: Request) -> Response:
        """
        summary: Look a schema up under a subject
        responses:
          200: {description: '{"subject", "id", "version", "schema"}'}
          404: {description: 40401 subject not found, 40403 schema not found}
        """
        body = await _body(request)
        found = await call(
            store.lookup,
            subject_of(request),
            body,
            _flag(request, "normalize"),
            _flag(request, "deleted"),
        )
        return ConfluentJSON(found.to_json())

    async def delete_subject(request: Request) -> Response:
        """
        summary: Soft-delete a subject, or hard-delete it with permanent=true
        responses:
          200: {description: "[1, 2]"}
          404: {description: 40401, 40404 already soft-deleted, 40405 not soft-deleted first}
        """
        versions = await call(
            store.delete_subject, subject_of(request), _flag(request, "permanent")
        )
        return ConfluentJSON(versions)

    async def get_version(request: Request) -> Response:
        """
        summary: One version of a subject (a number, latest or -1)
        responses:
          200: {description: '{"subject", "version", "id", "schema"}'}
          404: {description: 40401 subject not found, 40402 version not found}
          422: {description: 42202 invalid version}
        """
        found = await call(
            store.get_version,
            subject_of(request),
            request.path_params["version"],
            _flag(request, "deleted"),
        )
        return ConfluentJSON(found.to_json())

    async def get_version_schema(request: Request) -> Response:
        """
        summary: The raw schema text of one version
        responses:
          200: {description: the schema JSON}
          404: {description: 40401, 40402}
        """
        found = await call(
            store.get_version, subject_of(request), request.path_params["version"], False
        )
        return Response(found.schema, media_type=CONTENT_TYPE)

    async def delete_version(request: Request) -> Response:
        """
        summary: Soft-delete one version, or hard-delete it with permanent=true
        responses:
          200: {description: the version number}
          404: {description: 40401, 40402, 40406 already soft-deleted, 40407 not soft-deleted}
        """
        version = await call(
            store.delete_version,
            subject_of(request),
            request.path_params["version"],
            _flag(request, "permanent"),
        )
        return ConfluentJSON(version)

    async def compatibility(request: Request) -> Response:
        """
        summary: Test a schema against one version, or against what the level names
        responses:
          200: {description: '{"is_compatible": true} (+ "messages" with verbose=true)'}
          404: {description: 40401, 40402}
          422: {description: 42201 invalid schema, 42202 invalid version}
        """
        body = await _body(request)
        messages = await call(
            store.test_compatibility,
            subject_of(request),
            body,
            request.path_params.get("version"),
            _flag(request, "normalize"),
        )
        answer: dict[str, Any] = {"is_compatible": not messages}
        if _flag(request, "verbose"):
            answer["messages"] = messages
        return ConfluentJSON(answer)

    def config_subject(request: Request) -> str | None:
        subject = request.path_params.get("subject")
        return str(subject) if subject is not None else None

    async def config(request: Request) -> Response:
        """
        summary: Global or subject compatibility level (GET, PUT, DELETE)
        responses:
          200: {description: '{"compatibilityLevel": "BACKWARD"} or {"compatibility": "FULL"}'}
          404: {description: 40408 no subject-level compatibility}
          422: {description: 42203 invalid compatibility level}
        """
        subject = config_subject(request)
        if request.method == "PUT":
            body = await _body(request)
            level = body.get("compatibility") if isinstance(body, dict) else None
            return ConfluentJSON({"compatibility": await call(store.set_config, level, subject)})
        if request.method == "DELETE":
            return ConfluentJSON({"compatibilityLevel": await call(store.delete_config, subject)})
        level = await call(store.get_config, subject, _flag(request, "defaultToGlobal"))
        return ConfluentJSON({"compatibilityLevel": level})

    async def mode(request: Request) -> Response:
        """
        summary: Global or subject mode (READWRITE, READONLY, IMPORT)
        responses:
          200: {description: '{"mode": "READWRITE"}'}
          422: {description: 42204 invalid mode}
        """
        subject = config_subject(request)
        if request.method == "PUT":
            body = await _body(request)
            wanted = body.get("mode") if isinstance(body, dict) else None
            return ConfluentJSON({"mode": await call(store.set_mode, wanted, subject)})
        return ConfluentJSON({"mode": await call(store.get_mode, subject)})

    async def contexts(request: Request) -> Response:
        """
        summary: Contexts (only the default one)
        responses:
          200: {description: '["."]'}
        """
        return ConfluentJSON(["."])

    async def associations(request: Request) -> Response:
        """
        summary: Associations are not kept here, so clients fall back to TopicNameStrategy
        responses:
          404: {description: 40401 no association}
        """
        name = request.path_params["name"]
        return _error(404, 40401, f"No associations found for resource '{name}'")

    async def openapi(request: Request) -> Response:
        return JSONResponse(generator.get_schema(routes=app.routes))

    routes = [
        Route("/", root, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        Route("/schemas/types", schema_types, methods=["GET"]),
        Route("/schemas/ids/{id}", get_schema, methods=["GET"]),
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
        Route("/compatibility/subjects/{subject}/versions", compatibility, methods=["POST"]),
        Route(
            "/compatibility/subjects/{subject}/versions/{version}", compatibility, methods=["POST"]
        ),
        Route("/config", config, methods=["GET", "PUT", "DELETE"]),
        Route("/config/{subject}", config, methods=["GET", "PUT", "DELETE"]),
        Route("/mode", mode, methods=["GET", "PUT"]),
        Route("/mode/{subject}", mode, methods=["GET", "PUT"]),
        Route("/contexts", contexts, methods=["GET"]),
        Route("/associations/resources/{namespace}/{name}", associations, methods=["GET"]),
    ]

    async def registry_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RestError)
        return _error(exc.http_status, exc.error_code, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, exc.status_code, f"HTTP {exc.status_code} {exc.detail}")

    middleware = []
    if basic_auth:
        middleware.append(Middleware(BasicAuth, credentials=basic_auth))
    generator = SchemaGenerator(
        {
            "openapi": "3.0.0",
            "info": {"title": "flashsale devstack Schema Registry", "version": "1"},
        }
    )
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
