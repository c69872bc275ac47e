"""The control server's FastAPI application: :func:`create_app`.

Routes (``/openapi.json`` documents them): ``GET /api/health`` is open; sweep routes need an
admin token, trial routes an agent token (``Authorization: Bearer hg_...``);
``GET /api/sweeps/{name}/ace`` answers ACE's predictions (:mod:`hypergraph.server._ace`).
Bodies are pydantic models and at most ``max_body`` bytes (413 beyond). The dashboard is served
at ``/``.
"""


import asyncio
import contextlib
import math
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hypergraph.logging import get_logger
from hypergraph.server._ace import MAX_TOP, AceReports
from hypergraph.server._auth import Principal, TokenStore
from hypergraph.server._group import FinishGroups
from hypergraph.server._service import FinishRequest, RefusedError, SweepService
from hypergraph.sweeps._store import SweepStore

__all__ = ["FACTORY_ENV", "app_from_env", "create_app"]

#: Environment variable holding :func:`create_app`'s keyword arguments (JSON) for the worker
#: processes of ``hypergraph server --workers N``.
FACTORY_ENV = "HYPERGRAPH_SERVER_OPTIONS"

logger = get_logger(__name__)

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
_LEASE = r"^[0-9a-f]{32}$"
_TRIAL_ID = Path(ge=0, le=2**31 - 1, description="Trial id (from a claim).")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SweepCreate(_Body):
    """A sweep file (W&B syntax) as JSON, and the sweep's name."""

    name: str | None = Field(None, pattern=_NAME, description="Default: the file's name.")
    spec: dict[str, Any] = Field(description="The sweep file's mapping.")


class ClaimRequest(_Body):
    """An agent asks for a trial."""

    agent: str = Field(min_length=1, max_length=200, description="host:pid of the agent.")
    sweep: str | None = Field(None, pattern=_NAME, description="Only this sweep.")


class LeaseBody(_Body):
    """The lease of a held trial (from the claim)."""

    lease: str = Field(pattern=_LEASE)


class ReportBody(LeaseBody):
    """An intermediate value (the validation metric after an epoch)."""

    step: int = Field(ge=0, le=10**9)
    value: float

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("value must be finite")
        return v


class FinishBody(LeaseBody):
    """A trial's result, and (``next``) a claim of the next trial in the same request."""

    state: Literal["complete", "pruned", "fail"]
    value: float | None = None
    error: str | None = Field(None, max_length=2000)
    next: ClaimRequest | None = Field(
        None, description="Also take the next trial: the answer's `next` is what "
        "`POST /api/trials/claim` would answer (asked once the result is recorded).")

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("value must be finite")
        return v


#: An answer of the agents' fast path: ``(status, JSON body)``; ``None``: FastAPI answers.
_Hot = Callable[[dict[str, Any], bytes], Awaitable[tuple[int, bytes] | None]]


class _BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 unread; ``hot``
    may answer a request from its body first (the agents' fast path)."""

    def __init__(self, app: Any, limit: int, hot: _Hot | None = None) -> None:
        self.app = app
        self.limit = limit
        self.hot = hot

    async def __call__(self, scope: Any, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_big = declared is not None and (not declared.isdigit()
                                            or int(declared) > self.limit)
        messages = []
        if not too_big:  # read (at most limit bytes of) the body, then replay it
            size = 0
            while True:
                msg = await receive()
                messages.append(msg)
                if msg["type"] != "http.request":
                    break
                size += len(msg.get("body", b""))
                if size > self.limit:
                    too_big = True
                    break
                if not msg.get("more_body", False):
                    break
        if too_big:
            response = JSONResponse({"detail": f"Request body over {self.limit} bytes."},
                                    status_code=413)
            await response(scope, receive, send)
            return
        if self.hot is not None and scope.get("method") == "POST" and messages and all(
                m["type"] == "http.request" for m in messages):
            answer = await self.hot(scope, b"".join(m.get("body", b"") for m in messages))
            if answer is not None:
                status, content = answer
                await send({"type": "http.response.start", "status": status, "headers": [
                    (b"content-length", str(len(content)).encode()),
                    (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": content})
                return

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _tune_sqlite(store: SweepStore) -> None:
    """SQLite under a server: WAL journal (readers never block the writer) and
    ``synchronous=NORMAL`` (a commit is durable against a crash of the process, fsynced at
    checkpoints rather than at every commit: the default FULL costs one fsync per commit, about
    ten per hand-out). A power loss may drop the last commits: their trials are then retried."""
    import sqlalchemy as sa

    def on_connect(dbapi_conn: Any, record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    with store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # kept by the file
    for engine in (store.engine, store.storage.engine):
        sa.event.listen(engine, "connect", on_connect)
        engine.dispose()  # pooled connections opened before the listener


_HOT_PATH = re.compile(r"^/api/trials/(?:(claim)|([0-9]{1,10})/(finish|heartbeat|report|release))$")


def _hot_routes(service: SweepService, tokens: TokenStore, groups: FinishGroups | None
                ) -> _Hot:
    """The agents' routes answered without FastAPI's routing and dependencies: the same
    models validate the body, the same service answers, the same JSON comes back. Only the
    plain case is taken here (a JSON body that validates, an agent token checked within the
    token cache's time); anything else (no token, a revoked or unknown one, the wrong role, an
    invalid body) goes on to the FastAPI route, which answers 401/403/422 as documented."""
    import json

    from pydantic import ValidationError

    def dumps(content: Any) -> bytes:  # as FastAPI's JSONResponse renders
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8")

    async def hot(scope: dict[str, Any], body: bytes) -> tuple[int, bytes] | None:
        match = _HOT_PATH.match(scope.get("path", ""))
        if match is None:
            return None
        auth = content_type = b""
        for key, value in scope.get("headers") or []:
            if key == b"authorization":
                auth = value
            elif key == b"content-type":
                content_type = value
        if content_type.split(b";")[0].strip() != b"application/json" or not auth:
            return None
        scheme, _, credentials = auth.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return None
        known, who = tokens.cached(credentials.strip())
        if not known or who is None or who.role != "agent":
            return None
        action = match.group(1) or match.group(3)
        trial_id = int(match.group(2)) if match.group(2) else 0
        if trial_id > 2**31 - 1:
            return None
        try:
            raw = json.loads(body)
            call: tuple[Any, ...]
            if action == "claim":
                c = ClaimRequest.model_validate(raw)
                call = (service.claim, f"{who.name}/{c.agent}", who.id, c.sweep)
            elif action == "finish":
                f = FinishBody.model_validate(raw)
                ask = None if f.next is None else (f"{who.name}/{f.next.agent}", f.next.sweep)
                if groups is not None:  # written with the finishes around it
                    try:
                        return 200, dumps(await groups.finish(FinishRequest(
                            trial_id, f.lease, who.id, f.state, f.value, f.error, ask)))
                    except RefusedError as exc:
                        return exc.status, dumps({"detail": str(exc)})
                call = (service.finish, trial_id, f.lease, who.id, f.state, f.value, f.error,
                        ask)
            elif action == "report":
                r = ReportBody.model_validate(raw)
                call = (service.report, trial_id, r.lease, who.id, r.step, r.value)
            else:
                lease = LeaseBody.model_validate(raw).lease
                call = (service.heartbeat if action == "heartbeat" else service.release,
                        trial_id, lease, who.id)
        except (ValueError, ValidationError):  # FastAPI answers 422
            return None
        try:
            return 200, dumps(await asyncio.to_thread(*call))
        except RefusedError as exc:
            return exc.status, dumps({"detail": str(exc)})

    return hot


def create_app(storage_url: str, *, heartbeat_interval: int = 5, grace_period: int = 20,
               maintain_every: float | None = None, max_body: int = 256 * 1024,
               store: SweepStore | None = None, fast: bool = True,
               token_cache_seconds: float = 2.0, prefetch: int = 64,
               group_window: float = 0.0, group_max: int = 32) -> FastAPI:
    """The control server for the sweeps of ``storage_url``.

    Args:
        storage_url: SQLAlchemy URL of the sweep storage (SQLite or PostgreSQL).
        heartbeat_interval: Seconds between an agent's heartbeats (told to agents).
        grace_period: Seconds without a heartbeat after which a trial is failed and retried.
        maintain_every: Seconds between rounds of stale-trial maintenance (default: the
            heartbeat interval); ``0`` turns it off.
        max_body: Largest request body in bytes.
        store: An open storage to use instead of opening ``storage_url``.
        fast: Hand out and finish trials in one transaction each (``False``: the earlier
            path through ``study.ask``/``tell``, kept for the benchmark).
        token_cache_seconds: How long a checked token is trusted without asking the
            database: a token revoked elsewhere stops working within this time.
        prefetch: Trials of a random or grid sweep drawn ahead of the claims (the pool of
            :meth:`~hypergraph.sweeps._handout.HandOutStore.claim`); ``0``: none.
        group_window: Seconds a group of agents' finish requests waits for more before it
            is written (:class:`~hypergraph.server._group.FinishGroups`; ``0``: no wait, the
            requests that arrive while a group is written form the next).
        group_max: Most finish requests written together (PostgreSQL: one statement for
            the results and the next claims); ``0``: every request alone (the path before
            group commit).
    """
    store = store or SweepStore(storage_url, heartbeat_interval=heartbeat_interval,
                                grace_period=grace_period)
    if store.url.startswith("sqlite") and ":memory:" not in store.url:
        _tune_sqlite(store)
    service = SweepService(store, fast=fast, prefetch=prefetch)
    if group_window < 0 or group_max < 0:
        raise ValueError("group_window and group_max must be >= 0.")
    groups = (FinishGroups(service, group_window, group_max)
              if group_max > 0 and service.groupable() else None)
    tokens = TokenStore(engine=store.engine, cache_seconds=token_cache_seconds)
    every = heartbeat_interval if maintain_every is None else maintain_every

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(every):
                try:
                    service.maintain()
                except Exception:  # keep the server up; the next round retries
                    logger.exception("Stale-trial maintenance failed")

        thread = threading.Thread(target=loop, name="maintenance", daemon=True)
        if every > 0:
            thread.start()
        yield
        stop.set()
        if thread.is_alive():
            await asyncio.to_thread(thread.join)
        await asyncio.to_thread(service.close)

    app = FastAPI(title="HyperGraph control server", version="1",
                  description="Sweeps on many machines: agents claim trials, beat, report and "
                  "finish; admins create, cancel and read sweeps.", lifespan=lifespan)
    app.state.service = service
    app.state.tokens = tokens
    app.state.groups = groups
    aces = AceReports(service)
    app.state.ace = aces
    app.add_middleware(_BodyLimit, limit=max_body, hot=_hot_routes(service, tokens, groups))
    bearer = HTTPBearer(auto_error=False, description="A token of `hypergraph token create`.")

    async def principal(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                        ) -> Principal:
        found = None
        if creds is not None:  # a token checked within cache_seconds costs no thread hop
            known, found = tokens.cached(creds.credentials)
            if not known:
                found = await asyncio.to_thread(tokens.check, creds.credentials)
        if found is None:
            raise HTTPException(401, "A valid token is needed (Authorization: Bearer ...).",
                                headers={"WWW-Authenticate": "Bearer"})
        return found

    def role(name: str) -> Callable[[Principal], Awaitable[Principal]]:
        async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
            if who.role != name:
                raise HTTPException(403, f"This route needs an {name} token.")
            return who
        return check

    Admin = Annotated[Principal, Depends(role("admin"))]
    Agent = Annotated[Principal, Depends(role("agent"))]
    errors: dict[int | str, dict[str, Any]] = {
        401: {"description": "No or invalid token"}, 403: {"description": "Wrong role"}}
    trial_errors: dict[int | str, dict[str, Any]] = {
        **errors, 404: {"description": "No such trial"},
        409: {"description": "The lease is gone (failed as stale, retried elsewhere)"}}

    @app.exception_handler(RefusedError)
    async def refused(request: Request, exc: RefusedError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    async def call(fn: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        return await asyncio.to_thread(fn, *args)

    async def hot(fn: Callable[..., dict[str, Any]], *args: Any) -> Response:
        """:func:`call` answered as JSON directly: the agents' routes skip FastAPI's
        validation of the answer against ``dict[str, Any]`` (the service builds it)."""
        return JSONResponse(await asyncio.to_thread(fn, *args))

    hot_routes: dict[str, Any] = {"response_model": dict[str, Any]}

    @app.get("/api/health", tags=["open"])
    async def health() -> dict[str, str]:
        """Liveness: the server answers (no token needed)."""
        return {"status": "ok"}

    @app.get("/api/sweeps", tags=["admin"], responses=errors)
    async def list_sweeps(who: Admin) -> list[dict[str, Any]]:
        """Every sweep with its progress and leaderboard."""
        def run() -> list[dict[str, Any]]:
            return [service.describe(n) for n in service.names()]
        return await asyncio.to_thread(run)

    @app.post("/api/sweeps", tags=["admin"], status_code=201,
              responses={**errors, 409: {"description": "Name taken by another sweep"},
                         422: {"description": "Invalid sweep file"}})
    async def create_sweep(body: SweepCreate, who: Admin) -> dict[str, Any]:
        """Create a sweep (the same file and name again returns it unchanged)."""
        return await call(service.create, body.spec, body.name)

    @app.get("/api/sweeps/{name}", tags=["admin"],
             responses={**errors, 404: {"description": "No such sweep"}})
    async def show_sweep(who: Admin, name: Annotated[str, Path(pattern=_NAME)],
                         top: Annotated[int, Query(ge=1, le=1000)] = 10) -> dict[str, Any]:
        """Progress and leaderboard of one sweep."""
        return await call(service.describe, name, top)

    @app.post("/api/sweeps/{name}/cancel", tags=["admin"],
              responses={**errors, 404: {"description": "No such sweep"}})
    async def cancel_sweep(who: Admin, name: Annotated[str, Path(pattern=_NAME)]
                           ) -> dict[str, Any]:
        """Hand out no more trials of the sweep; running trials are told to stop."""
        return await call(service.cancel, name)

    @app.get("/api/sweeps/{name}/ace", tags=["admin"],
             responses={**errors, 404: {"description": "No such sweep"}})
    async def ace_report(who: Admin, name: Annotated[str, Path(pattern=_NAME)],
                         top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 20) -> dict[str, Any]:
        """ACE's predicted score (mean, std) of the best untried combinations and the
        slot-by-choice effects (``ace: false`` and nothing to draw for other methods). Fitted
        again only when the sweep's count of complete trials changes."""
        return await call(aces.report, name, top)

    @app.get("/api/dashboard", tags=["admin"], responses=errors)
    async def dashboard(who: Admin) -> dict[str, Any]:
        """Everything the dashboard shows: sweeps, queues, running trials and their curves."""
        return await call(service.dashboard)

    @app.post("/api/trials/claim", tags=["agent"], **hot_routes,
              responses={**errors, 404: {"description": "No such sweep"}})
    async def claim(body: ClaimRequest, who: Agent) -> Response:
        """Take a trial (``status: trial``), or learn to ``wait`` or that all is ``done``."""
        return await hot(service.claim, f"{who.name}/{body.agent}", who.id, body.sweep)

    @app.post("/api/trials/{trial_id}/heartbeat", tags=["agent"], responses=trial_errors,
              **hot_routes)
    async def heartbeat(who: Agent, body: LeaseBody,
                        trial_id: Annotated[int, _TRIAL_ID]) -> Response:
        """Renew the lease of a held trial."""
        return await hot(service.heartbeat, trial_id, body.lease, who.id)

    @app.post("/api/trials/{trial_id}/report", tags=["agent"], responses=trial_errors,
              **hot_routes)
    async def report(who: Agent, body: ReportBody,
                     trial_id: Annotated[int, _TRIAL_ID]) -> Response:
        """Report an epoch's validation metric; the answer says whether to prune."""
        return await hot(service.report, trial_id, body.lease, who.id, body.step,
                          body.value)

    @app.post("/api/trials/{trial_id}/finish", tags=["agent"], responses=trial_errors,
              **hot_routes)
    async def finish(who: Agent, body: FinishBody,
                     trial_id: Annotated[int, _TRIAL_ID]) -> Response:
        """Record the trial's result (refused with 409 once its lease is gone); with `next`,
        also hand out the agent's next trial (one round trip per trial instead of two)."""
        ask = None if body.next is None else (f"{who.name}/{body.next.agent}",
                                              body.next.sweep)
        return await hot(service.finish, trial_id, body.lease, who.id, body.state,
                         body.value, body.error, ask)

    @app.post("/api/trials/{trial_id}/release", tags=["agent"], responses=trial_errors,
              **hot_routes)
    async def release(who: Agent, body: LeaseBody,
                      trial_id: Annotated[int, _TRIAL_ID]) -> Response:
        """Give a held trial back unfinished (it is retried)."""
        return await hot(service.release, trial_id, body.lease, who.id)

    static = resources.files("hypergraph.server") / "static"

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text())

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        kinds = {"js": "text/javascript", "css": "text/css"}
        ext = name.rsplit(".", 1)[-1]
        if "/" in name or ext not in kinds or not (static / name).is_file():
            raise HTTPException(404, "Not found.")
        return Response((static / name).read_text(), media_type=kinds[ext])

    return app


def app_from_env() -> FastAPI:
    """:func:`create_app` with the keyword arguments in :data:`FACTORY_ENV` (JSON): the
    application of each process of ``hypergraph server --workers N``."""
    import json
    import os

    return create_app(**json.loads(os.environ[FACTORY_ENV]))
