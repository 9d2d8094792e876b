"""Pool risk: the stress library over the whole pool, cascades in the background; who am I."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from crossmargin.service.api.deps import CoreDep, PrincipalDep, require
from crossmargin.service.api.errors import NotFound
from crossmargin.service.api.models import Name, Shock
from crossmargin.service.risk import CascadeJobs, pool_stress

router = APIRouter(prefix="/v1", tags=["risk"])


class CascadeIn(BaseModel):
    """Relative moves that start the cascade, and the liquidation model."""

    model_config = ConfigDict(extra="forbid")

    shocks: Annotated[dict[Name, Shock], Field(min_length=1, max_length=64)]
    model: Literal["engine", "closeout"] = "engine"


def _jobs(request: Request, core: Any) -> CascadeJobs:
    jobs: CascadeJobs | None = getattr(request.app.state, "cascades", None)
    if jobs is None:
        jobs = CascadeJobs(core)
        request.app.state.cascades = jobs
    return jobs


@router.get("/whoami")
def whoami(principal: PrincipalDep) -> dict[str, Any]:
    """The caller behind the key: name, role and (owner keys) the owner."""
    return {"name": principal.name, "role": principal.role, "owner": principal.owner}


@router.get("/risk/stress", dependencies=[require("admin", "auditor")])
def stress_library(core: CoreDep) -> dict[str, Any]:
    """Every scenario of the stress library applied to the whole pool at the live prices."""
    with core.lock:
        return {"scenarios": pool_stress(core)}


@router.post("/risk/cascade", status_code=202, dependencies=[require("admin", "auditor")])
def start_cascade(body: CascadeIn, request: Request, core: CoreDep) -> dict[str, Any]:
    """Start a cascade simulation on a copy of the live book (rounds of liquidation, forced
    flow and price impact); poll ``GET /v1/risk/cascade/{job_id}`` for progress."""
    job = _jobs(request, core).start(dict(body.shocks), body.model)
    return {"job_id": job.job_id}


@router.get("/risk/cascade/{job_id}", dependencies=[require("admin", "auditor")])
def cascade_status(job_id: str, request: Request, core: CoreDep) -> dict[str, Any]:
    """A cascade's state, progress, rounds so far (prices, liquidated notional, bad debt) and,
    when done, its summary."""
    job = _jobs(request, core).get(job_id)
    if job is None:
        raise NotFound("job", job_id)
    return job.view()
