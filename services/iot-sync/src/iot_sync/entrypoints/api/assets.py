"""Batteries and stations as iot-sync keeps them."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Query

from fleetops_common.problems import PROBLEM_RESPONSES
from iot_sync.app.errors import NotFound
from iot_sync.entrypoints.api.deps import Services, Viewer
from iot_sync.entrypoints.api.schemas import (
    AssetHistoryOut,
    AssetHistoryPage,
    AssetOut,
    StationInventoryOut,
    StationOut,
    StationPage,
)

router = APIRouter(prefix="/v1", tags=["inventory"], responses=PROBLEM_RESPONSES)


@router.get("/assets/{asset_id}", response_model=AssetOut, summary="One battery's state")
def get_asset(asset_id: str, _: Viewer, c: Services) -> AssetOut:
    with c.uow_factory() as uow:
        found = uow.assets.get_many([asset_id]).get(asset_id)
    if found is None:
        raise NotFound(f"no battery {asset_id}")
    return AssetOut.of(found)


@router.get(
    "/assets/{asset_id}/history",
    response_model=AssetHistoryPage,
    summary="Every move of the battery: before, after, station, holder, cause, actor",
)
def asset_history(
    asset_id: str,
    _: Viewer,
    c: Services,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> AssetHistoryPage:
    with c.uow_factory() as uow:
        if not uow.assets.get_many([asset_id]):
            raise NotFound(f"no battery {asset_id}")
        entries = uow.assets.history(asset_id, limit=limit)
    return AssetHistoryPage(asset_id=asset_id, items=[AssetHistoryOut.of(e) for e in entries])


@router.get("/stations", response_model=StationPage, summary="Every station")
def list_stations(_: Viewer, c: Services) -> StationPage:
    with c.uow_factory() as uow:
        stations = uow.stations.all()
    return StationPage(items=[StationOut.of(s) for s in stations])


@router.get(
    "/stations/{station_id}/inventory",
    response_model=StationInventoryOut,
    summary="The batteries in a station's slots, and its free slots",
)
def station_inventory(station_id: str, _: Viewer, c: Services) -> StationInventoryOut:
    with c.uow_factory() as uow:
        station = uow.stations.get_many([station_id]).get(station_id)
        if station is None:
            raise NotFound(f"no station {station_id}")
        batteries = uow.assets.at_station(station_id)
    occupied = {a.slot for a in batteries if a.slot is not None}
    return StationInventoryOut(
        station_id=station_id,
        slot_count=station.slot_count,
        free_slots=[n for n in range(1, station.slot_count + 1) if n not in occupied],
        counts=dict(Counter(a.state.value for a in batteries)),
        items=[AssetOut.of(a) for a in batteries],
    )
